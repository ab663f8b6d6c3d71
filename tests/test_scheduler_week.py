"""One simulated week of the service's jobs, on a fake clock, mailing a real SMTP server.

A real digest lands in the inbox every night; four readers in four time zones expect one
mail a day at their own hour. The service is down for 24 hours in the middle of the week.
The jobs are the ones `paperboy run` schedules, driven every 15 simulated minutes.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from newsletter.inbox import Inbox
from newsletter.mail.transports import SmtpTransport
from newsletter.models import Delivery, Digest, Subscriber
from newsletter.optin import ImportRow
from newsletter.scheduler import Jobs
from newsletter.service import MailSender
from newsletter.subscriptions import import_subscribers
from tests.conftest import DATA, SEED
from tests.mailing import Clock, SmtpServer, composer, smtp_server

START = datetime(2026, 11, 23)  # a Monday, 00:00 UTC
TICK = timedelta(minutes=15)
DOWN = (START + timedelta(days=3, hours=2), START + timedelta(days=4, hours=2))
# Real captures, one a night at 01:00 UTC: the seed page, four days of the Hugging Face API,
# an arXiv RSS listing and an arXiv Atom query.
DIGESTS = [
    SEED,
    DATA / "2024-05-27.json",
    DATA / "2025-03-03.json",
    DATA / "2025-09-09.json",
    DATA / "2026-08-21.json",
    DATA / "arxiv-rss-cs.LG.xml",
    DATA / "arxiv-atom-query.xml",
]
BROAD = "learning OR model OR models OR language OR data"
READERS = {
    "ny@example.com": ("America/New_York", 7),
    "berlin@example.org": ("Europe/Berlin", 8),
    "tokyo@example.jp": ("Asia/Tokyo", 12),
    "sydney@example.net": ("Australia/Sydney", 18),
}


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    yield from smtp_server()


async def run_week(engine: Engine, server: SmtpServer, inbox: Path) -> Clock:
    clock = Clock(START)
    inbox.mkdir()
    rows = [ImportRow(a, [BROAD], zone, hour) for a, (zone, hour) in READERS.items()]
    import_subscribers(engine, rows, confirmed=True, now=START - timedelta(hours=1))
    sender = MailSender(engine, SmtpTransport(server.settings()), composer(), clock)
    jobs = Jobs(engine, [sender], Inbox(inbox), clock=clock)
    waiting = list(enumerate(DIGESTS))
    while clock.now < START + timedelta(days=7):
        while waiting and START + timedelta(days=waiting[0][0], hours=1) <= clock.now:
            _, path = waiting.pop(0)
            copy = Path(shutil.copy(path, inbox))
            os.utime(copy, (0, 0))  # long settled: the inbox reads it at once
        if not DOWN[0] <= clock.now < DOWN[1]:
            await jobs.poll()
            await jobs.queue()
            await jobs.send()
        clock.advance(TICK)
    await sender.close()
    return clock


def mails(engine: Engine) -> list[tuple[str, Delivery]]:
    with Session(engine) as session:
        rows = session.exec(
            select(Subscriber.email, Delivery)
            .join(Delivery, col(Delivery.subscriber_id) == col(Subscriber.id))
            .where(Delivery.kind == "daily")
            .order_by(col(Delivery.sent_at))
        ).all()
    return [(address or "", delivery) for address, delivery in rows]


def local(moment: datetime, zone: str) -> datetime:
    return moment.replace(tzinfo=UTC).astimezone(ZoneInfo(zone))


async def test_each_reader_gets_one_mail_a_day_at_their_hour_and_catches_up_after_downtime(
    engine: Engine, server: SmtpServer, tmp_path: Path
) -> None:
    await run_week(engine, server, tmp_path / "inbox")
    sent = mails(engine)
    assert all(d.status == "sent" for _, d in sent)
    assert len(server.handler.received) == len(sent)
    assert len({m["Message-ID"] for m in server.handler.received}) == len(sent)
    per_day = Counter((address, d.day) for address, d in sent)
    assert max(per_day.values()) == 1
    first_digest = START + timedelta(hours=1)
    for address, delivery in sent:
        zone, hour = READERS[address]
        assert delivery.sent_at is not None
        at = local(delivery.sent_at, zone)
        assert at.date() == delivery.day
        if delivery.after_digest_id == 0:  # a new reader's first mail goes once there is one
            assert delivery.sent_at == first_digest or (at.hour, at.minute) == (hour, 0)
        elif delivery.sent_at == DOWN[1]:
            assert at.hour >= hour  # caught up when the service came back
        else:
            assert (at.hour, at.minute) == (hour, 0)  # on the first tick of their hour
    # Down from Thursday 02:00 to Friday 02:00 UTC. New York's Thursday hour (12:00 UTC) passed
    # in the downtime but its Thursday had not ended at the restart (21:00 there): that mail
    # goes out late, once. Berlin, Tokyo and Sydney were already in their Friday by then, before
    # their hour: Thursday's papers come in Friday's mail, and nobody gets two mails in a day.
    assert Counter(address for address, _ in sent) == dict.fromkeys(READERS, 6)
    late = [(address, d.day) for address, d in sent if d.sent_at == DOWN[1]]
    assert late == [("ny@example.com", (START + timedelta(days=3)).date())]


async def test_every_digest_reaches_every_reader_in_exactly_one_mail(
    engine: Engine, server: SmtpServer, tmp_path: Path
) -> None:
    await run_week(engine, server, tmp_path / "inbox")
    with Session(engine) as session:
        digests = list(session.exec(select(Digest.id).order_by(col(Digest.id))))
    assert len(digests) == len(DIGESTS)
    for address in READERS:
        windows = [(d.after_digest_id, d.digest_id) for a, d in mails(engine) if a == address]
        assert windows[0][0] < digests[0]
        for (_, end), (start, _) in pairwise(windows):
            assert start == end  # each mail starts where the last one ended: no gap, no overlap
        assert windows[-1][1] == digests[-1]
