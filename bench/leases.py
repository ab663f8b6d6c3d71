"""Two (or more) rate-limited senders whose batches outlast their lease: duplicates counted.

Queues `--readers` daily mails (the seed digest, every reader following one topic), starts
`--senders` sender processes (`send_due` through `SmtpTransport`) at once with a lease of
`--lease` seconds, batches of `--batch` and `--rate` mails per second each, so a batch takes
longer than a lease to send unless the lease is renewed; an aiosmtpd server on 127.0.0.1
counts the mails each recipient got per Message-ID. Prints mails sent, readers reached,
duplicates (target 0) and the time. On PostgreSQL (`--database postgresql+psycopg://...`)
the run uses a schema of its own, dropped afterwards; default: a SQLite file in a temporary
folder.

    python bench/leases.py [--readers 1000] [--senders 2] [--rate 100] [--lease 1]
                           [--batch 200] [--database URL]
"""

# ruff: noqa: E402 - the import path must be fixed before the imports below (see ROOT).
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import argparse
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Any

from aiosmtpd.controller import Controller
from sqlalchemy import create_engine, make_url, text
from sqlmodel import Session, select

from newsletter.db import open_database
from newsletter.ingest import ingest_bytes
from newsletter.mail.daily import queue_daily
from newsletter.models import Delivery
from newsletter.optin import ImportRow
from newsletter.pipeline import match_digest
from newsletter.subscriptions import import_subscribers

SEED = ROOT / "seeds" / "000_c5e999339737264f.txt"
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


class Counting:
    """Keeps the headers of each mail received; the body is not needed to count."""

    def __init__(self) -> None:
        self.received: list[Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.received.append(BytesHeaderParser().parsebytes(envelope.content))
        return "250 OK"


@contextmanager
def database(url: str | None) -> Iterator[str]:
    """The URL to run on: a fresh SQLite file, or a schema of its own on PostgreSQL."""
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            yield url or f"sqlite:///{Path(folder) / 'bench.db'}"
        return
    schema = f"paperboy_bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        scoped = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def queue(url: str, readers: int) -> None:
    engine = open_database(url)
    now = datetime.now(UTC)
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", now - timedelta(days=2))
    rows = [
        ImportRow(f"reader{n}@example.org", ["continual-learning"], None, 0) for n in range(readers)
    ]
    clock = now.replace(tzinfo=None)
    import_subscribers(engine, rows, confirmed=True, now=clock - timedelta(days=3))
    match_digest(engine, digest.digest_id)
    queued = queue_daily(engine, clock - timedelta(days=1))
    assert queued == readers, f"{queued} mails queued for {readers} readers"
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=2)
    parser.add_argument("--rate", type=float, default=100.0, help="mails/s per sender")
    parser.add_argument("--lease", type=float, default=1.0, help="seconds")
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a new SQLite file)")
    args = parser.parse_args()

    with database(args.database) as url:
        queue(url, args.readers)
        handler = Counting()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = Controller(handler, hostname="127.0.0.1", port=port)
        server.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
        env |= {
            "PAPERBOY_SMTP_HOST": "127.0.0.1",
            "PAPERBOY_SMTP_PORT": str(port),
            "PAPERBOY_SMTP_SECURITY": "none",
            "PAPERBOY_SMTP_CONNECTIONS": "2",
            "PAPERBOY_SMTP_RATE": str(args.rate),
            "PAPERBOY_SECRET_KEY": "bench-leases-secret-key-32-chars",
        }
        command = [sys.executable, "-c", SENDER, url, str(args.lease), str(args.batch)]
        started = time.perf_counter()
        try:
            senders = [
                subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
                for _ in range(args.senders)
            ]
            sent = [int(s.communicate(timeout=600)[0].split()[-1]) for s in senders]
        finally:
            server.stop()
        elapsed = time.perf_counter() - started
        engine = open_database(url)
        with Session(engine) as session:
            statuses = Counter(session.exec(select(Delivery.status)))
        engine.dispose()

    copies = Counter((str(m["To"]), str(m["Message-ID"])) for m in handler.received)
    duplicates = sum(n - 1 for n in copies.values())
    kind = make_url(url).get_backend_name()
    print(
        f"{kind}: {args.senders} senders x {args.rate:g} mails/s, lease {args.lease:g} s, "
        f"batch {args.batch} ({args.batch / args.rate:g} s to send)"
    )
    print(f"mails received: {len(handler.received)} for {len(copies)} of {args.readers} readers")
    print(f"duplicates: {duplicates} (target 0)")
    print(f"sent per sender: {sent}; outbox: {dict(statuses)}; {elapsed:.1f} s")


if __name__ == "__main__":
    main()
