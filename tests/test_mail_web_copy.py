""" "View in your browser" shows the mail as it was sent, over real HTTP: what the reader
did since (a topic added, unsubscribing) changes nothing, until the copy's time is up."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from newsletter.mail.daily import queue_daily
from newsletter.mail.send import send_due
from newsletter.mail.transports import FileTransport
from newsletter.mail.webcopy import KEPT_FOR
from newsletter.models import Delivery, WebCopy
from newsletter.optin import unsubscribe_address
from newsletter.sections import Window, followed_topics, sections_for
from newsletter.subscriptions import Who, subscribe
from newsletter.web import make_app
from tests.mailing import CLOCK, Clock, composer, readers_with_papers

BASE = "http://paperboy.test"
TITLE = re.compile(r'class="title" href="[^"]*"[^>]*>([^<]+)</a>')


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(
    engine: Engine, clock: Clock
) -> AsyncIterator[tuple[TestServer, aiohttp.ClientSession]]:
    server = TestServer(make_app(engine, composer(), clock))
    await server.start_server()
    async with aiohttp.ClientSession() as session:
        yield server, session
    await server.close()


async def sent(engine: Engine, tmp_path: Path, addresses: list[str]) -> list[EmailMessage]:
    readers_with_papers(engine, addresses)
    queue_daily(engine, CLOCK)
    await send_due(engine, FileTransport(tmp_path), composer(), clock=Clock())
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(tmp_path.glob("*.eml"))
    ]


def html_of(mail: EmailMessage) -> str:
    return mail.get_body(("html",)).get_content()  # type: ignore[union-attr]


async def view(
    site: tuple[TestServer, aiohttp.ClientSession], mail: EmailMessage
) -> tuple[int, str]:
    server, session = site
    link = re.search(r'href="([^"]*/view\?[^"]*)"', html_of(mail)).group(1)  # type: ignore[union-attr]
    url = link.replace(BASE, str(server.make_url("")).rstrip("/"))
    async with session.get(url) as reply:
        return reply.status, await reply.text()


async def test_the_web_copy_shows_the_papers_of_the_mail(
    engine: Engine, tmp_path: Path, client: tuple[TestServer, aiohttp.ClientSession]
) -> None:
    """Every paper the mail held, the ones its size budget left out too."""
    (mail,) = await sent(engine, tmp_path, ["ann@example.org"])
    status, page = await view(client, mail)
    in_mail = TITLE.findall(html_of(mail))
    more = int(re.search(r">(\d+) more papers on this topic<", html_of(mail)).group(1))  # type: ignore[union-attr]
    assert status == 200
    assert TITLE.findall(page) == in_mail + TITLE.findall(page)[len(in_mail) :]
    assert len(TITLE.findall(page)) == len(in_mail) + more
    assert "more papers on this topic" not in page


async def test_a_topic_added_after_the_mail_went_out_leaves_the_web_copy_unchanged(
    engine: Engine, tmp_path: Path, client: tuple[TestServer, aiohttp.ClientSession]
) -> None:
    (mail,) = await sent(engine, tmp_path, ["ann@example.org"])
    _, before = await view(client, mail)
    subscribe(engine, Who(email="ann@example.org"), "agents", now=CLOCK)
    with Session(engine) as session:  # rebuilt today, that mail would hold more
        delivery = session.exec(select(Delivery).where(Delivery.kind == "daily")).one()
        topics = followed_topics(session, [1])[1]
        window = Window(0, topics, delivery.after_digest_id or 0, delivery.digest_id or 0)
        rebuilt = sections_for(session, [window])[0]
    assert len(topics) == 2 and len(rebuilt) == 2
    status, page = await view(client, mail)
    assert status == 200
    assert TITLE.findall(page) == TITLE.findall(before)
    assert page.count("<h2") == html_of(mail).count("<h2") == 1


async def test_after_unsubscribing_the_web_copy_is_shown_for_the_stated_time(
    engine: Engine,
    tmp_path: Path,
    clock: Clock,
    client: tuple[TestServer, aiohttp.ClientSession],
) -> None:
    (mail,) = await sent(engine, tmp_path, ["ann@example.org"])
    _, before = await view(client, mail)
    unsubscribe_address(engine, 1, "ann@example.org")
    clock.advance(KEPT_FOR)
    status, page = await view(client, mail)
    assert status == 200 and TITLE.findall(page) == TITLE.findall(before) != []
    clock.advance(KEPT_FOR / 30)
    status, page = await view(client, mail)
    assert status == 404 and f"kept {KEPT_FOR.days} days" in page


async def test_readers_of_the_same_topics_share_one_stored_copy(
    engine: Engine, tmp_path: Path
) -> None:
    mails = await sent(engine, tmp_path, ["ann@example.org", "bo@example.org"])
    assert len(mails) == 2
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(WebCopy)).one() == 1
        copies = session.exec(select(Delivery.web_copy).where(Delivery.kind == "daily")).all()
    assert len(set(copies)) == 1 and None not in copies
