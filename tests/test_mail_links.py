"""Links in a real mail, followed over real HTTP against the aiohttp app: confirm, one-click
unsubscribe, manage topics, view in the browser; forged or expired links change nothing."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from itsdangerous import URLSafeSerializer, URLSafeTimedSerializer
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.mail.daily import queue_daily
from newsletter.mail.links import BadLink, Links
from newsletter.mail.send import send_due
from newsletter.mail.transports import FileTransport
from newsletter.models import Delivery, Subscriber
from newsletter.subscriptions import Who, list_subscriptions, subscribe
from newsletter.web import make_app
from tests.mailing import CLOCK, Clock, composer, readers_with_papers

BASE = "http://paperboy.test"
Site = tuple[TestServer, aiohttp.ClientSession]


@pytest.fixture
async def site(engine: Engine) -> AsyncIterator[Site]:
    server = TestServer(make_app(engine, composer(), Clock()))
    await server.start_server()
    async with aiohttp.ClientSession() as client:
        yield server, client
    await server.close()


def local(server: TestServer, url: str) -> str:
    """A link from a mail, pointed at the test server instead of the public base URL."""
    return url.replace(BASE, str(server.make_url("")).rstrip("/"))


async def mailed(engine: Engine, tmp_path: Path, address: str = "ann@example.org") -> EmailMessage:
    """The reader's daily mail, sent through the file transport and read back."""
    readers_with_papers(engine, [address])
    queue_daily(engine, CLOCK)
    transport = FileTransport(tmp_path)
    await send_due(engine, transport, composer(), clock=Clock())
    (path,) = [p for p in tmp_path.iterdir() if p.name.startswith(address)]
    return email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def status(engine: Engine) -> str | None:
    with Session(engine) as session:
        return session.exec(select(Subscriber.email_status)).first()


async def test_one_click_unsubscribe_from_the_mail_header_stops_mail(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    server, client = site
    mail = await mailed(engine, tmp_path)
    https = re.findall(r"<([^>]+)>", mail["List-Unsubscribe"])[0]

    async with client.post(local(server, https), data={"List-Unsubscribe": "One-Click"}) as reply:
        assert reply.status == 200
    assert status(engine) == "unsubscribed"
    assert queue_daily(engine, CLOCK + timedelta(days=1)) == 0


async def test_opening_the_unsubscribe_link_only_asks(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    server, client = site
    mail = await mailed(engine, tmp_path)
    html = mail.get_body(("html",)).get_content()
    link = re.search(r'href="([^"]*/unsubscribe\?[^"]*)"', html).group(1).replace("&amp;", "&")
    async with client.get(local(server, link)) as reply:
        page = await reply.text()
    assert reply.status == 200 and 'method="post"' in page and "ann@example.org" in page
    assert status(engine) == "confirmed"


async def test_the_confirmation_link_confirms_a_pending_address(engine: Engine, site: Site) -> None:
    server, client = site
    subscribe(engine, Who(email="new@example.org"), "agents", now=CLOCK)
    url = Links("test-secret-key-of-32-characters", BASE).confirm_url(1, "new@example.org")
    assert status(engine) == "pending"
    async with client.get(local(server, url)) as reply:
        assert reply.status == 200
    assert status(engine) == "confirmed"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: Links("another-secret", BASE).unsubscribe_token(1, "ann@example.org"),
        lambda t: "",
    ],
    ids=["altered", "other-key", "missing"],
)
async def test_a_forged_unsubscribe_link_is_refused_and_changes_nothing(
    engine: Engine, site: Site, tmp_path: Path, tamper: Any
) -> None:
    server, client = site
    await mailed(engine, tmp_path)
    token = tamper(
        Links("test-secret-key-of-32-characters", BASE).unsubscribe_token(1, "ann@example.org")
    )
    async with client.post(server.make_url(f"/unsubscribe?token={token}")) as reply:
        assert reply.status == 403
    assert status(engine) == "confirmed"


def test_links_in_mails_sent_before_still_work_and_new_tokens_are_the_same() -> None:
    """Tokens are made without itsdangerous's compression attempt: stock tokens, as older
    mails carry (one compressed, for a long repetitive address), still read, and a new token
    for an id and an address is the stock one."""
    links = Links("test-secret-key-of-32-characters", BASE)
    long = "a" * 200 + "@example.org"
    for address in ("ann@example.org", long):
        stock = URLSafeSerializer("test-secret-key-of-32-characters", salt="unsubscribe").dumps(
            [1, address]
        )
        assert links.read_unsubscribe(stock) == links.read_unsubscribe(
            links.unsubscribe_token(1, address)
        )
        manage = URLSafeTimedSerializer("test-secret-key-of-32-characters", salt="manage").dumps(
            [1, address]
        )
        assert links.read_manage(manage).email == address
    assert (
        URLSafeSerializer("test-secret-key-of-32-characters", salt="unsubscribe")
        .dumps([1, long])
        .startswith(".")
    )
    stock = URLSafeSerializer("test-secret-key-of-32-characters", salt="unsubscribe").dumps(
        [1, "ann@example.org"]
    )
    assert links.unsubscribe_token(1, "ann@example.org") == stock
    with pytest.raises(BadLink):  # still bound to its salt
        links.read_manage(links.unsubscribe_token(1, "ann@example.org"))


async def test_an_expired_confirmation_link_is_refused(
    engine: Engine, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, client = site
    subscribe(engine, Who(email="new@example.org"), "agents", now=CLOCK)
    url = Links("test-secret-key-of-32-characters", BASE).confirm_url(1, "new@example.org")
    later = time.time() + 49 * 3600
    monkeypatch.setattr(time, "time", lambda: later)  # itsdangerous reads the wall clock
    async with client.get(local(server, url)) as reply:
        assert reply.status == 403
        assert "expired" in await reply.text()
    assert status(engine) == "pending"


async def test_the_manage_page_adds_and_removes_topics(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    server, client = site
    mail = await mailed(engine, tmp_path)
    html = mail.get_body(("html",)).get_content()
    manage = local(server, re.search(r'href="([^"]*/manage\?[^"]*)"', html).group(1))

    async with client.post(manage, data={"add": '"world models" OR WM'}) as reply:
        assert reply.status == 200 and "Added" in await reply.text()
    async with client.post(manage, data={"remove": "continual-learning"}) as reply:
        assert reply.status == 200
    async with client.post(manage, data={"add": "agents (tools"}) as reply:
        assert reply.status == 400 and "column 8" in await reply.text()
    topics = [row.topic.query for row in list_subscriptions(engine, Who(email="ann@example.org"))]
    assert topics == ['"world models" OR WM']


async def test_view_in_browser_shows_the_mail(engine: Engine, site: Site, tmp_path: Path) -> None:
    server, client = site
    mail = await mailed(engine, tmp_path)
    html = mail.get_body(("html",)).get_content()
    view = local(server, re.search(r'href="([^"]*/view\?[^"]*)"', html).group(1))
    async with client.get(view) as reply:
        assert reply.status == 200
        assert "A Comprehensive Survey of Continual Learning" in await reply.text()
    with Session(engine) as session:
        assert session.exec(select(Delivery.status).where(Delivery.kind == "daily")).one() == "sent"


async def test_healthz_says_ok_when_the_database_answers(site: Site) -> None:
    server, client = site
    async with client.get(server.make_url("/healthz")) as reply:
        assert (reply.status, await reply.text()) == (200, "ok")
