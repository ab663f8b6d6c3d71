"""A sender killed with SIGKILL in the middle of a 1,000-mail run, then restarted: everyone
gets the day's mail exactly once, except mails on the wire at the kill, which may arrive
twice, with the same Message-ID."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.ingest import ingest_bytes
from newsletter.mail.compose import Mail
from newsletter.mail.daily import queue_daily
from newsletter.mail.send import send_due
from newsletter.models import Delivery
from newsletter.optin import ImportRow
from newsletter.pipeline import match_digest
from newsletter.subscriptions import import_subscribers
from tests.conftest import NOW, ROOT, SEED
from tests.mailing import CLOCK, Clock, Handler, composer, free_port, readers_with_papers

READERS = 1_000
CONNECTIONS = 2

SENDER = """
import asyncio, sys
from datetime import timedelta
from newsletter.db import open_database
from newsletter.mail.send import configured, send_due

async def main():
    engine = open_database(sys.argv[1])
    transport, composer = configured(engine)
    try:
        await send_due(engine, transport, composer, lease=timedelta(seconds=1), batch=100)
    finally:
        await transport.close()

asyncio.run(main())
"""


class SlowHandler(Handler):
    """Takes a few milliseconds a mail, like a real server, so the kill lands mid-run."""

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        await asyncio.sleep(0.003)
        return await super().handle_DATA(server, session, envelope)


def test_a_killed_sender_restarted_sends_each_mail_once_but_what_was_in_flight(
    engine: Engine, database_url: str
) -> None:
    # In the past, so the sender (a process on the real clock) finds the mails due.
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW - timedelta(days=2))
    rows = [
        ImportRow(f"reader{n}@example.org", ["continual-learning"], None, 0) for n in range(READERS)
    ]
    import_subscribers(engine, rows, confirmed=True, now=CLOCK - timedelta(days=3))
    match_digest(engine, digest.digest_id)
    assert queue_daily(engine, CLOCK - timedelta(days=1)) == READERS

    handler = SlowHandler()
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    environment = {
        **os.environ,
        "PAPERBOY_SMTP_HOST": "127.0.0.1",
        "PAPERBOY_SMTP_PORT": str(server.port),
        "PAPERBOY_SMTP_SECURITY": "none",
        "PAPERBOY_SMTP_CONNECTIONS": str(CONNECTIONS),
        "PAPERBOY_SECRET_KEY": "crash-test-secret-key-32-characters",
    }
    command = [sys.executable, "-c", SENDER, database_url]
    try:
        sender = subprocess.Popen(command, env=environment, cwd=ROOT)
        while len(handler.received) < READERS // 3 and sender.poll() is None:
            time.sleep(0.005)
        sender.send_signal(signal.SIGKILL)
        sender.wait()
        killed_at = len(handler.received)
        time.sleep(1.2)  # the dead sender's lease runs out
        subprocess.run(command, env=environment, cwd=ROOT, check=True, timeout=120)
    finally:
        server.stop()

    assert 0 < killed_at < READERS, "the kill must land mid-run"
    per_reader = Counter(str(m["To"]) for m in handler.received)
    assert len(per_reader) == READERS
    twice = [reader for reader, n in per_reader.items() if n > 1]
    assert len(twice) <= CONNECTIONS
    assert max(per_reader.values()) <= 2
    for reader in twice:
        ids = {m["Message-ID"] for m in handler.received if m["To"] == reader}
        assert len(ids) == 1
    with Session(engine) as session:
        assert set(session.exec(select(Delivery.status).where(Delivery.kind == "daily"))) == {
            "sent"
        }


class Watching:
    """A transport that, as each mail reaches the server, counts it and the mails sent before
    whose outcome the outbox has not recorded yet: what a kill at that moment sends twice."""

    description = "watching"

    def __init__(self, engine: Engine, concurrency: int) -> None:
        self.engine = engine
        self.concurrency = concurrency
        self.composer = composer()
        self.sent: set[str] = set()
        self.worst = 0

    async def send(self, mail: Mail) -> None:
        # On the wire a while, unevenly, so the lanes fall out of step.
        await asyncio.sleep(0.001 * (1 + int(mail.message_id[1:3], 16) % 4))
        with Session(self.engine) as session:
            sending = session.exec(select(Delivery.key).where(Delivery.status == "sending"))
            unsettled = {self.composer.message_id(key) for key in sending} & self.sent
        self.worst = max(self.worst, len(unsettled) + 1)
        self.sent.add(mail.message_id)

    async def close(self) -> None:
        return None


async def test_at_most_one_mail_per_connection_is_sent_but_not_recorded(engine: Engine) -> None:
    readers_with_papers(engine, [f"reader{n}@example.org" for n in range(60)])
    assert queue_daily(engine, CLOCK) == 60
    transport = Watching(engine, concurrency=4)

    summary = await send_due(engine, transport, composer(), clock=Clock(), batch=25)

    assert summary.sent == len(transport.sent) == 60
    assert 1 < transport.worst <= transport.concurrency  # outcomes are grouped, within bounds
