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

from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.ingest import ingest_bytes
from newsletter.mail.daily import queue_daily
from newsletter.models import Delivery
from newsletter.optin import ImportRow
from newsletter.pipeline import match_digest
from newsletter.subscriptions import import_subscribers
from tests.conftest import NOW, ROOT, SEED
from tests.mailing import CLOCK, Handler, free_port

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
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    rows = [
        ImportRow(f"reader{n}@example.org", ["continual-learning"], None, 0) for n in range(READERS)
    ]
    import_subscribers(engine, rows, confirmed=True, now=CLOCK.replace(year=2000))
    match_digest(engine, digest.digest_id)
    assert queue_daily(engine, CLOCK.replace(year=2000, month=1, day=2)) == READERS

    handler = SlowHandler()
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    environment = {
        **os.environ,
        "PAPERBOY_SMTP_HOST": "127.0.0.1",
        "PAPERBOY_SMTP_PORT": str(server.port),
        "PAPERBOY_SMTP_SECURITY": "none",
        "PAPERBOY_SMTP_CONNECTIONS": str(CONNECTIONS),
        "PAPERBOY_SECRET_KEY": "crash-test",
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
