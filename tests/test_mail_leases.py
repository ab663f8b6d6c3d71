"""Two senders under a rate limit, each batch taking longer to send than one lease: the lease
is renewed while the batch is worked, so no reader gets the day's mail twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta

from aiosmtpd.controller import Controller
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.ingest import ingest_bytes
from newsletter.mail.daily import queue_daily
from newsletter.models import Delivery
from newsletter.optin import ImportRow
from newsletter.outbox import claim, renew
from newsletter.pipeline import match_digest
from newsletter.subscriptions import import_subscribers
from tests.conftest import NOW, ROOT, SEED
from tests.mailing import CLOCK, Handler, free_port, readers_with_papers

READERS = 240
RATE = 40  # mails per second and sender: a batch of 120 takes 3 s
BATCH = 120
# Shorter than a batch takes, so without renewal the other sender takes rows over; long
# enough that a renewal (every third of it) is in time on a loaded machine.
LEASE_SECONDS = 2.0

SENDER = """
import asyncio, sys
from datetime import timedelta
from newsletter.db import open_database
from newsletter.mail.send import configured, send_due

async def main():
    engine = open_database(sys.argv[1])
    transport, composer = configured(engine)
    try:
        summary = await send_due(
            engine, transport, composer,
            lease=timedelta(seconds=float(sys.argv[2])), batch=int(sys.argv[3]),
        )
    finally:
        await transport.close()
    print(summary.sent)

asyncio.run(main())
"""


def _queued(engine: Engine, readers: int) -> None:
    """`readers` confirmed readers with a daily mail due (in the past: the senders are
    processes on the real clock)."""
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW - timedelta(days=2))
    rows = [
        ImportRow(f"reader{n}@example.org", ["continual-learning"], None, 0) for n in range(readers)
    ]
    import_subscribers(engine, rows, confirmed=True, now=CLOCK - timedelta(days=3))
    match_digest(engine, digest.digest_id)
    assert queue_daily(engine, CLOCK - timedelta(days=1)) == readers


def test_two_rate_limited_senders_with_short_leases_send_each_mail_once(
    engine: Engine, database_url: str
) -> None:
    _queued(engine, READERS)
    handler = Handler()
    server = Controller(handler, hostname="127.0.0.1", port=free_port())
    server.start()
    environment = {
        **os.environ,
        "PAPERBOY_SMTP_HOST": "127.0.0.1",
        "PAPERBOY_SMTP_PORT": str(server.port),
        "PAPERBOY_SMTP_SECURITY": "none",
        "PAPERBOY_SMTP_CONNECTIONS": "2",
        "PAPERBOY_SMTP_RATE": str(RATE),
        "PAPERBOY_SECRET_KEY": "lease-test-" + "x" * 32,
    }
    command = [sys.executable, "-c", SENDER, database_url, str(LEASE_SECONDS), str(BATCH)]
    started = time.perf_counter()
    try:
        senders = [
            subprocess.Popen(command, env=environment, cwd=ROOT, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        sent = [int(sender.communicate(timeout=120)[0].split()[-1]) for sender in senders]
    finally:
        server.stop()
    print(f"two senders, {READERS} mails at {RATE}/s each: {time.perf_counter() - started:.1f} s")

    per_reader = Counter((str(m["To"]), str(m["Message-ID"])) for m in handler.received)
    assert len(per_reader) == READERS
    assert max(per_reader.values()) == 1, "a reader got the same mail twice"
    assert all(sent), "both senders took part"
    assert sum(sent) == READERS
    with Session(engine) as session:
        assert set(session.exec(select(Delivery.status).where(Delivery.kind == "daily"))) == {
            "sent"
        }


def test_a_renewed_lease_keeps_the_rows_from_another_sender(engine: Engine) -> None:
    readers_with_papers(engine, ["ada@example.org", "bob@example.org"])
    queue_daily(engine, CLOCK)
    first = claim(engine, ["daily"], "a", CLOCK, 10, timedelta(seconds=30))
    later = CLOCK + timedelta(seconds=20)
    assert renew(engine, "a", [d.id for d in first], later, timedelta(seconds=30)) == {
        d.id for d in first
    }
    assert claim(engine, ["daily"], "b", CLOCK + timedelta(seconds=40), 10) == []


def test_renewal_reports_rows_another_sender_took_over(engine: Engine) -> None:
    readers_with_papers(engine, ["ada@example.org", "bob@example.org"])
    queue_daily(engine, CLOCK)
    first = claim(engine, ["daily"], "a", CLOCK, 10, timedelta(seconds=30))
    taken = claim(engine, ["daily"], "b", CLOCK + timedelta(seconds=31), 1)
    kept = renew(engine, "a", [d.id for d in first], CLOCK + timedelta(seconds=32))
    assert kept == {d.id for d in first} - {d.id for d in taken}
    assert len(kept) == 1
