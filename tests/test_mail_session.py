"""Refusals of paperboy's session, not of a reader's address: a strict server's HELO check,
a relay that will not relay, a server that refuses at the greeting. Sending pauses, one log
line says why, `paperboy status` shows it, and no reader's hard-failure count moves; only a
recipient's own refusal counts against them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.mail import pause
from newsletter.mail.daily import queue_daily
from newsletter.mail.send import send_due
from newsletter.mail.transports import SmtpTransport, helo_name
from newsletter.models import Delivery, Subscriber
from newsletter.outbox import Summary
from newsletter.status import gather
from tests.mailing import CLOCK, Clock, SmtpServer, composer, readers_with_papers, smtp_server

READERS = [f"reader{n}@example.org" for n in range(12)]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    yield from smtp_server()


async def send(engine: Engine, server: SmtpServer, clock: Clock, **settings: object) -> Summary:
    transport = SmtpTransport(server.settings(**settings))
    try:
        return await send_due(engine, transport, composer(), clock=clock)
    finally:
        await transport.close()


def rows(engine: Engine) -> list[tuple[str, int]]:
    with Session(engine) as session:
        daily = select(Delivery).where(Delivery.kind == "daily")
        return [(d.status, d.attempts) for d in session.exec(daily)]


def hard_failures(engine: Engine) -> list[int]:
    with Session(engine) as session:
        return [s.hard_failures for s in session.exec(select(Subscriber))]


def test_paperboy_never_greets_as_localhost_by_default(smtp: SmtpServer) -> None:
    name = helo_name(smtp.settings(mail_from="paperboy <news@localhost>"))
    assert name != "localhost" and not name.startswith("localhost.")
    assert helo_name(smtp.settings(smtp_helo="mx.paperboy.example")) == "mx.paperboy.example"


async def test_the_helo_name_reaches_the_server(engine: Engine, smtp: SmtpServer) -> None:
    readers_with_papers(engine, ["ann@example.org"])
    queue_daily(engine, CLOCK)
    smtp.handler.fqdn_helo = True

    summary = await send(engine, smtp, Clock(), smtp_helo="out.paperboy.test")

    assert summary.sent == 1
    assert smtp.handler.greetings == ["out.paperboy.test"]


async def test_a_refused_helo_name_pauses_sending_and_blames_no_reader(
    engine: Engine, smtp: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Postfix answers a bare HELO name with 504 at RCPT: that is about paperboy's greeting."""
    caplog.set_level(logging.INFO)
    readers_with_papers(engine, READERS)
    queue_daily(engine, CLOCK)
    smtp.handler.fqdn_helo = True
    clock = Clock()

    summary = await send(engine, smtp, clock, smtp_helo="localhost")

    assert summary.paused is not None and "Helo command rejected" in summary.paused
    assert (summary.sent, summary.failed, summary.held) == (0, 0, len(READERS))
    assert rows(engine) == [("pending", 0)] * len(READERS)
    assert hard_failures(engine) == [0] * len(READERS)
    # At most one refusal per connection (the test server's settings open 2), then the rest
    # are held unsent.
    assert len(smtp.handler.greetings) <= 2
    assert len([r for r in caplog.records if "paused" in r.getMessage()]) == 1
    shown = gather(engine, clock.now).mail_paused
    assert shown is not None and "Helo command rejected" in shown.reason


async def test_a_relay_refusing_every_recipient_fails_no_mail(
    engine: Engine, smtp: SmtpServer
) -> None:
    """Without the SMTP login a relay answers 554 5.7.1 to every RCPT; three such days would
    have suspended the whole list. Once the login is fixed, every mail goes."""
    readers_with_papers(engine, READERS)
    queue_daily(engine, CLOCK)
    smtp.handler.rcpt_always = "554 5.7.1 <reader0@example.org>: Relay access denied"
    clock = Clock()

    for _ in range(3):
        summary = await send(engine, smtp, clock)
        assert summary.paused is not None and "Relay access denied" in summary.paused
        assert (summary.sent, summary.failed) == (0, 0)
        clock.advance(pause.HOLD)

    assert hard_failures(engine) == [0] * len(READERS)
    smtp.handler.rcpt_always = None
    assert (await send(engine, smtp, clock)).sent == len(READERS)
    assert gather(engine, clock.now).mail_paused is None


async def test_a_recipients_own_refusal_still_counts_against_them(
    engine: Engine, smtp: SmtpServer
) -> None:
    readers_with_papers(engine, ["gone@example.org", "bob@example.org"])
    queue_daily(engine, CLOCK)
    smtp.handler.rcpt = ["550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown"]

    summary = await send(engine, smtp, Clock())

    assert (summary.sent, summary.failed, summary.paused) == (1, 1, None)
    assert sorted(hard_failures(engine)) == [0, 1]


@pytest.fixture
async def refusing_greeter() -> AsyncIterator[int]:
    """A server that answers the connection with 554, as one that wants none of us does."""

    async def greet(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"554 5.7.1 mx.example.org: no SMTP service for you\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


async def test_a_554_greeting_pauses_sending_and_blames_no_reader(
    engine: Engine, refusing_greeter: int
) -> None:
    readers_with_papers(engine, ["ann@example.org", "bob@example.org"])
    queue_daily(engine, CLOCK)
    server = SmtpServer(refusing_greeter, handler=None)  # type: ignore[arg-type]

    summary = await send(engine, server, Clock())

    assert summary.paused is not None and "554" in summary.paused
    assert rows(engine) == [("pending", 0)] * 2
    assert hard_failures(engine) == [0, 0]
