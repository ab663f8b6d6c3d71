"""Links in a real mail, followed over real HTTP against the aiohttp app: confirm, one-click
unsubscribe, manage topics, view in the browser; forged or expired links change nothing."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
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
from newsletter.models import Delivery, Subscriber, Subscription
from newsletter.optin import unsubscribe_address
from newsletter.subscriptions import Who, list_subscriptions, subscribe
from newsletter.web import make_app
from tests.mailing import CLOCK, Clock, composer, readers_with_papers

BASE = "http://paperboy.test"
SECRET = "test-secret-key-of-32-characters"
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


async def test_the_confirmation_link_opens_a_page_whose_button_confirms(
    engine: Engine, site: Site
) -> None:
    server, client = site
    subscribe(engine, Who(email="new@example.org"), "agents", now=CLOCK)
    url = local(server, Links(SECRET, BASE).confirm_url(1, "new@example.org"))
    async with client.get(url) as reply:
        page = await reply.text()
    assert reply.status == 200 and page.count("<button") == 1 and 'method="post"' in page
    assert status(engine) == "pending"
    async with client.post(url) as reply:
        assert reply.status == 200 and "You are in" in await reply.text()
    assert status(engine) == "confirmed"


async def test_a_link_scanner_opening_every_link_changes_nothing(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    """A mail security scanner GETs (or HEADs) every link of every mail: the confirmation
    mail's and the daily mail's, List-Unsubscribe's too."""
    server, client = site
    await mailed(engine, tmp_path)
    subscribe(engine, Who(email="new@example.org"), "agents", now=CLOCK)
    links = Links(SECRET, BASE)
    urls = [links.confirm_url(2, "new@example.org")]
    for path in tmp_path.glob("*.eml"):
        mail = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        html = mail.get_body(("html",)).get_content()
        urls += [u.replace("&amp;", "&") for u in re.findall(r'href="(http[^"]+)"', html)]
        urls += re.findall(r"<(http[^>]+)>", str(mail["List-Unsubscribe"]))
    assert any("/unsubscribe?" in u for u in urls) and any("/manage?" in u for u in urls)
    before = _states(engine)
    for url in urls:
        if url.startswith(BASE):
            for method in (client.get, client.head):
                async with method(local(server, url)) as reply:
                    assert reply.status == 200, url
    assert _states(engine) == before


def _states(engine: Engine) -> list[tuple[object, ...]]:
    with Session(engine) as session:
        readers = session.exec(select(Subscriber.email, Subscriber.email_status)).all()
        topics = session.exec(select(Subscription.subscriber_id, Subscription.topic_id)).all()
        return sorted(map(tuple, readers)) + sorted(map(tuple, topics))


async def test_a_confirmation_link_is_void_once_its_reader_unsubscribed(
    engine: Engine, site: Site
) -> None:
    server, client = site
    subscribe(engine, Who(email="new@example.org"), "agents", now=CLOCK)
    links = Links(SECRET, BASE)
    url = local(server, links.confirm_url(1, "new@example.org"))
    unsubscribe_address(engine, 1, "new@example.org")
    async with client.post(url) as reply:
        assert reply.status == 410 and "unsubscribed" in await reply.text()
    assert status(engine) == "unsubscribed"


async def test_after_asking_again_only_the_newest_confirmation_link_confirms(
    engine: Engine, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, client = site
    subscribe(engine, Who(email="new@example.org"), "agents", now=CLOCK)
    old = local(server, Links(SECRET, BASE).confirm_url(1, "new@example.org"))
    with Session(engine) as session:  # they asked again a minute after the first mail
        reader = session.get(Subscriber, 1)
        reader.confirmation_sent_at = datetime.fromtimestamp(time.time() + 60, UTC).replace(
            tzinfo=None
        )
        session.add(reader)
        session.commit()
    async with client.post(old) as reply:
        assert reply.status == 410 and "newer confirmation mail" in await reply.text()
    assert status(engine) == "pending"
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    new = local(server, Links(SECRET, BASE).confirm_url(1, "new@example.org"))
    async with client.post(new) as reply:
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
    token = tamper(Links(SECRET, BASE).unsubscribe_token(1, "ann@example.org"))
    async with client.post(server.make_url(f"/unsubscribe?token={token}")) as reply:
        assert reply.status == 403
    assert status(engine) == "confirmed"


async def test_a_bad_link_gets_a_page_like_the_others_with_a_next_step(site: Site) -> None:
    server, client = site
    async with client.get(server.make_url("/manage?token=forged")) as reply:
        page = await reply.text()
    assert reply.status == 403 and reply.content_type == "text/html"
    assert '<p class="brand">paperboy</p>' in page and "<h1>This link does not work</h1>" in page
    assert "This link is not valid." in page and "most recent mail" in page


def test_links_in_mails_sent_before_still_work_and_new_tokens_are_the_same() -> None:
    """Tokens are made without itsdangerous's compression attempt: stock tokens, as older
    mails carry (one compressed, for a long repetitive address), still read, and a new token
    for an id and an address is the stock one."""
    links = Links(SECRET, BASE)
    long = "a" * 200 + "@example.org"
    for address in ("ann@example.org", long):
        stock = URLSafeSerializer(SECRET, salt="unsubscribe").dumps([1, address])
        assert links.read_unsubscribe(stock) == links.read_unsubscribe(
            links.unsubscribe_token(1, address)
        )
        manage = URLSafeTimedSerializer(SECRET, salt="manage").dumps([1, address])
        assert links.read_manage(manage).email == address
    assert URLSafeSerializer(SECRET, salt="unsubscribe").dumps([1, long]).startswith(".")
    stock = URLSafeSerializer(SECRET, salt="unsubscribe").dumps([1, "ann@example.org"])
    assert links.unsubscribe_token(1, "ann@example.org") == stock
    with pytest.raises(BadLink):  # still bound to its salt
        links.read_manage(links.unsubscribe_token(1, "ann@example.org"))


async def test_an_expired_confirmation_link_is_refused(
    engine: Engine, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, client = site
    subscribe(engine, Who(email="new@example.org"), "agents", now=CLOCK)
    url = Links(SECRET, BASE).confirm_url(1, "new@example.org")
    later = time.time() + 49 * 3600
    monkeypatch.setattr(time, "time", lambda: later)  # itsdangerous reads the wall clock
    async with client.post(local(server, url)) as reply:
        assert reply.status == 403
        assert "expired" in await reply.text()
    assert status(engine) == "pending"


async def test_the_manage_page_adds_and_removes_topics(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    server, client = site
    manage = await manage_link(engine, server, tmp_path)

    async with client.post(manage, data={"add": '"world models" OR WM'}) as reply:
        assert reply.status == 200 and "Topic added." in await reply.text()
    async with client.post(manage, data={"remove": "continual-learning"}) as reply:
        assert reply.status == 200 and "Topic removed." in await reply.text()
    topics = [row.topic.query for row in list_subscriptions(engine, Who(email="ann@example.org"))]
    assert topics == ['"world models" OR WM']


async def test_a_manage_change_redirects_so_a_reload_sends_nothing_again(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    server, client = site
    manage = await manage_link(engine, server, tmp_path)
    async with client.post(manage, data={"add": "agents"}) as reply:
        assert [r.status for r in reply.history] == [303]
        assert reply.method == "GET" and "done=added" in str(reply.url)
        reloaded = str(reply.url)
    async with client.get(reloaded) as reply:  # what the browser's reload does
        assert reply.status == 200 and "Topic added." in await reply.text()
    assert len(list_subscriptions(engine, Who(email="ann@example.org"))) == 2


async def test_a_refused_manage_change_keeps_what_was_typed(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    server, client = site
    manage = await manage_link(engine, server, tmp_path)
    async with client.post(manage, data={"add": "agents (tools"}) as reply:
        page = await reply.text()
    assert reply.status == 400 and "column 8" in page
    assert 'name="add" list="catalogue" value="agents (tools"' in page
    assert len(list_subscriptions(engine, Who(email="ann@example.org"))) == 1


async def test_the_manage_page_sets_the_delivery_hour_and_time_zone(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    server, client = site
    manage = await manage_link(engine, server, tmp_path)
    async with client.get(manage) as reply:
        page = await reply.text()
    assert 'name="hour" min="0" max="23" value="8"' in page and 'value="UTC"' in page
    async with client.post(manage, data={"hour": "7", "timezone": "Europe/Paris"}) as reply:
        page = await reply.text()
    assert reply.status == 200 and "Delivery time saved." in page
    assert 'value="7"' in page and 'value="Europe/Paris"' in page
    async with client.post(manage, data={"hour": "7", "timezone": "Mars/Olympus"}) as reply:
        page = await reply.text()
    assert reply.status == 400 and "is not a time zone" in page and 'value="Mars/Olympus"' in page
    with Session(engine) as session:
        reader = session.exec(select(Subscriber)).one()
    assert (reader.delivery_hour, reader.timezone) == (7, "Europe/Paris")


async def test_a_head_request_is_answered_like_a_get(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
    server, client = site
    manage = await manage_link(engine, server, tmp_path)
    async with client.get(manage) as got, client.head(manage) as head:
        assert (
            (head.status, head.content_type)
            == (got.status, got.content_type)
            == (
                200,
                "text/html",
            )
        )
        assert await head.read() == b""


async def manage_link(engine: Engine, server: TestServer, tmp_path: Path) -> str:
    mail = await mailed(engine, tmp_path)
    html = mail.get_body(("html",)).get_content()
    return local(server, re.search(r'href="([^"]*/manage\?[^"]*)"', html).group(1))


async def test_view_in_browser_shows_the_mails_papers(
    engine: Engine, site: Site, tmp_path: Path
) -> None:
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
