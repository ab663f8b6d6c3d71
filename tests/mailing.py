"""Test parts for mail: a real SMTP server (aiosmtpd) on 127.0.0.1 that can misbehave on cue,
and a database holding the seed digest, matched, with readers ready for their daily mail."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine

from newsletter.config import Settings, get_settings
from newsletter.ingest import ingest_bytes
from newsletter.mail.compose import Composer
from newsletter.mail.daily import queue_daily
from newsletter.mail.links import Links
from newsletter.mail.send import send_due
from newsletter.mail.templates import environment
from newsletter.mail.transports import SmtpTransport
from newsletter.optin import vouch
from newsletter.pipeline import match_digest
from newsletter.subscriptions import Who, subscribe
from tests.conftest import NOW, SEED

CLOCK = NOW.replace(tzinfo=None)
# The headers of a daily mail, in the order the composer writes them: no others, so no
# paper text ever reaches a header.
DAILY_HEADERS = [
    "Content-Type",
    "MIME-Version",
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "Auto-Submitted",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Handler:
    """Accepts mail, unless told to answer otherwise: `rcpt` and `data` hold scripted replies
    used up one per command (None = accept), `drop_data` closes the connection mid-DATA.
    `greetings` records each transaction's EHLO name; `rcpt_always` answers every RCPT, and
    `fqdn_helo` refuses RCPT after a HELO name without a dot, as Postfix's
    `reject_non_fqdn_helo_hostname` does."""

    received: list[EmailMessage] = field(default_factory=list)
    rcpt: list[str | None] = field(default_factory=list)
    data: list[str | None] = field(default_factory=list)
    drop_data: int = 0
    greetings: list[str] = field(default_factory=list)
    rcpt_always: str | None = None
    fqdn_helo: bool = False

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        self.greetings.append(session.host_name)
        if self.fqdn_helo and "." not in session.host_name:
            return (
                f"504 5.5.2 <{session.host_name}>: Helo command rejected:"
                " need fully-qualified hostname"
            )
        reply = self.rcpt_always or (self.rcpt.pop(0) if self.rcpt else None)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.drop_data:
            self.drop_data -= 1
            server.transport.close()
            return "451 dropped"
        reply = self.data.pop(0) if self.data else None
        if reply:
            return reply
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.received.append(parsed)  # type: ignore[arg-type]
        return "250 OK"


@dataclass
class SmtpServer:
    port: int
    handler: Handler

    def settings(self, **changes: Any) -> Settings:
        values = {
            "smtp_host": "127.0.0.1",
            "smtp_port": self.port,
            "smtp_security": "none",
            "smtp_connections": 2,
            "base_url": "http://paperboy.test",
            "mail_from": "paperboy <news@paperboy.test>",
        }
        values.update(changes)
        return Settings(**values)


def smtp_server() -> Iterator[SmtpServer]:
    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield SmtpServer(controller.port, handler)
    finally:
        controller.stop()


def composer(links: Links | None = None) -> Composer:
    return Composer(
        environment(),
        links or Links("test-secret-key-of-32-characters", "http://paperboy.test"),
        "paperboy <news@paperboy.test>",
    )


LINKS = Links("test-secret-key-of-32-characters", "http://paperboy.test")


async def mailed(engine: Engine, smtp: SmtpServer, addresses: list[str]) -> dict[str, EmailMessage]:
    """Each reader's daily mail, as it arrived at the SMTP server."""
    readers_with_papers(engine, addresses)
    queue_daily(engine, CLOCK)
    transport = SmtpTransport(smtp.settings())
    await send_due(engine, transport, composer(LINKS), clock=Clock())
    await transport.close()
    return {str(m["To"]): m for m in smtp.handler.received}


@pytest.fixture
def signing_key(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The service's settings carry the key that signed the test's mails."""
    monkeypatch.setenv("PAPERBOY_SECRET_KEY", "test-secret-key-of-32-characters")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def readers_with_papers(
    engine: Engine, addresses: list[str], topic: str = "continual-learning"
) -> int:
    """The seed ingested early in the morning and matched; each address confirmed, following
    `topic`, with its mail at 08:00 UTC."""
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW - timedelta(hours=6))
    for address in addresses:
        subscribe(engine, Who(email=address), topic, hour=8, now=CLOCK - timedelta(days=1))
        vouch(engine, address, CLOCK - timedelta(hours=1))
    match_digest(engine, digest.digest_id)
    return digest.digest_id


class Clock:
    """Time the test moves by hand."""

    def __init__(self, now: datetime = CLOCK) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta
