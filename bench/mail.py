"""Sending the daily mail: rendered and sent over SMTP to a sink in another process.

Builds a SQLite database with one generated digest, topics that matched exactly
`--papers-per-mail` papers each, and confirmed subscribers who each follow one topic; queues
the day's mails (`queue_daily`) and times `send_due` (claim, build, send, settle) through
`SmtpTransport` with `--connections` connections to an aiosmtpd server on 127.0.0.1 that runs
in its own process and only counts what it receives. Two sizes, a fifth of `--subscribers`
and all of it, each timed, then sent again under tracemalloc for peak Python memory: the
peak should not grow with the number of subscribers.

Then, on `--naive-sample` of the same mails, a naive sender: the same batched reads and
composer (so it gains from every speed-up there), but the template rendered as written (CSS
in a <style> block) and CSS-inlined for every mail, then one SMTP connection per mail
(connect, aiosmtplib's `sendmail`, quit), one mail after another; timed twice, with no
outbox bookkeeping at all (the issue's wording, which flatters it: it could send a mail twice
or never), and marking each mail sent in a transaction of its own (the simplest loop that
does the same job as `send_due`); and, for scale, the SMTP leg alone (one mail sent over
and over through `SmtpTransport` on `--connections` connections, no database, no
rendering), with `send_due`'s share of it (the goal: >= 0.7 in the same run). Last,
`send_due` with and without the web copies and the size budget (patched out), in turns:
what the two cost. Both sides' CPU use is printed: a side near 100% is the limit. Run by hand:

    python bench/mail.py [--subscribers 10000] [--papers-per-mail 10] [--connections 16]
                          [--naive-sample 300] [--profile] [--stock-sink]

16 connections by default: the sender commits outcomes once half its connections wait on
one, so more connections make fewer, larger commits (8 connections: about 15% slower).

`--profile` adds a cProfile of one more `send_due` at full size (top functions by own time,
then paperboy's and the mail libraries' by cumulative time); `--stock-sink` runs aiosmtpd
unchanged (see `sink`).
"""

# ruff: noqa: E402 - the import path must be fixed before the imports below (see ROOT).
from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import argparse
import asyncio
import cProfile
import io
import multiprocessing
import pstats
import random
import socket
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from multiprocessing.synchronize import Event
from typing import Any

import aiosmtplib
import css_inline
from ingest import capture, generate
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy import Engine, insert, update
from sqlmodel import Session, col, select

from newsletter.config import Settings
from newsletter.db import open_database
from newsletter.ingest import ingest_bytes
from newsletter.mail import webcopy
from newsletter.mail.compose import Composer, Mail
from newsletter.mail.daily import queue_daily
from newsletter.mail.links import Links
from newsletter.mail.send import build, send_due
from newsletter.mail.templates import BUILTIN, environment, wrap
from newsletter.mail.transports import SmtpTransport
from newsletter.models import Delivery, DigestPaper, PaperMatch, Subscriber, Subscription, Topic
from newsletter.optin import EmailStatus
from newsletter.outbox import Status, Summary
from newsletter.sections import Section

NOW = datetime(2026, 11, 25, 12)  # naive UTC, as the database keeps it
TOPICS = 100
MAIL_FROM = "paperboy <news@paperboy.test>"
BASE_URL = "https://paperboy.test"
PROFILED = (
    r"/newsletter/|aiosmtplib/smtp\.py.*\((mail|rcpt|data)\)|aiosmtplib/protocol\.py.*data"
    r"|jinja2/environment\.py.*render|sqlalchemy/orm/session\.py.*(commit|execute)"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Tally:
    """What the sink did, in shared memory: mails received, and its CPU seconds so far."""

    def __init__(self) -> None:
        self._values = multiprocessing.RawArray("d", 2)

    @property
    def mails(self) -> int:
        return int(self._values[0])

    @property
    def cpu(self) -> float:
        return float(self._values[1])

    def count(self) -> None:  # only the sink writes, so no lock
        self._values[0] += 1
        self._values[1] = time.process_time()


def sink(port: int, tally: Tally, ready: Event, stock: bool) -> None:
    """The SMTP server, in its own process: accepts every mail and counts it, nothing else.

    Stock aiosmtpd reads DATA a line at a time in Python (over 400 awaits for a 33 kB mail)
    and is CPU-bound at about 1,200 such mails/s, near the sender's target; so unless `stock`
    is asked for, the server reads DATA in 64 kB chunks up to the end marker. The rest of the
    session (EHLO, MAIL, RCPT, replies, the handler) is aiosmtpd's own.
    """
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import SMTP, syntax

    class Count:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            tally.count()
            return "250 OK"

    class ChunkedData(SMTP):
        @syntax("DATA")
        async def smtp_DATA(self, arg: str) -> None:
            if await self.check_helo_needed():
                return
            if self.envelope is None or not self.envelope.rcpt_tos or arg:
                await self.push("503 Error: need RCPT command, and DATA takes no argument")
                return
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            tail = b"\r\n"  # the data starts a line, so it may be the end marker's dot
            while True:
                chunk = await self._reader.read(1 << 16)
                if not chunk:
                    return  # the client went away
                window = tail + chunk
                if b"\r\n.\r\n" in window:
                    break
                tail = window[-4:]
            await self.push(await self._call_handler_hook("DATA"))
            self._set_post_data_state()

    class Server(Controller):
        def factory(self) -> SMTP:
            return super().factory() if stock else ChunkedData(self.handler, **self.SMTP_kwargs)

    controller = Server(Count(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def populate(engine: Engine, subscribers: int, per_mail: int) -> None:
    """One digest of TOPICS * per_mail papers; topic k matched papers k*per_mail onwards, and
    subscriber n follows topic n % TOPICS, so every mail holds exactly `per_mail` papers."""
    pairs = generate(TOPICS * per_mail, random.Random(7))
    digest = ingest_bytes(engine, capture(pairs), "bench", NOW.replace(tzinfo=UTC))
    with Session(engine) as session, session.begin():
        session.execute(
            insert(Topic),
            [
                {"name": f"Topic {k}", "query": f"t{k}", "canonical": f"t{k}", "created_at": NOW}
                for k in range(TOPICS)
            ],
        )
        topic_ids = list(session.exec(select(Topic.id).order_by(col(Topic.id))))
        paper_ids = list(
            session.exec(
                select(DigestPaper.paper_id)
                .where(DigestPaper.digest_id == digest.digest_id)
                .order_by(col(DigestPaper.position))
            )
        )
        session.execute(
            insert(PaperMatch),
            [
                {
                    "digest_id": digest.digest_id,
                    "topic_id": topic,
                    "paper_id": paper_ids[k * per_mail + i],
                    "score": 3.0 - i / per_mail,
                    "terms": ["learning", "model"],
                }
                for k, topic in enumerate(topic_ids)
                for i in range(per_mail)
            ],
        )
        session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"reader{n}@example.org",
                    "timezone": "UTC",
                    "delivery_hour": 0,
                    "email_status": EmailStatus.CONFIRMED,
                    "email_confirmed_at": NOW - timedelta(hours=1),
                    "hard_failures": 0,
                    "created_at": NOW,
                }
                for n in range(subscribers)
            ],
        )
        people = list(session.exec(select(Subscriber.id).order_by(col(Subscriber.id))))
        session.execute(
            insert(Subscription),
            [
                {"subscriber_id": person, "topic_id": topic_ids[n % TOPICS], "created_at": NOW}
                for n, person in enumerate(people)
            ],
        )


def requeue(engine: Engine) -> None:
    """Every delivery pending again, so the same mails can be sent once more."""
    table = Delivery.__table__  # type: ignore[attr-defined]
    with Session(engine) as session, session.begin():
        session.execute(
            update(table).values(
                status=Status.PENDING, claimed_by=None, claimed_until=None, sent_at=None
            )
        )


def pending(engine: Engine, limit: int | None = None) -> list[Delivery]:
    with Session(engine) as session:
        query = select(Delivery).where(Delivery.status == Status.PENDING).order_by(col(Delivery.id))
        return list(session.exec(query.limit(limit) if limit else query))


def settings_for(port: int, connections: int) -> Settings:
    return Settings(
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_security="none",
        smtp_connections=connections,
        smtp_rate=0.0,
        smtp_username=None,
        smtp_password=None,
    )


async def send_everything(engine: Engine, composer: Composer, settings: Settings) -> Summary:
    transport = SmtpTransport(settings)
    try:
        return await send_due(engine, transport, composer, worker="bench", clock=lambda: NOW)
    finally:
        await transport.close()


class InlinePerMail(Composer):
    """The naive renderer: the template as written, its CSS inlined into every mail."""

    def daily_html(self, context: dict[str, object], *, whole: bool = False) -> str:
        return css_inline.inline(super().daily_html(context, whole=whole))


class Unbudgeted(Composer):
    """The composer without the size budget: every paper, as before it existed."""

    def _cap(self, day: object, sections: tuple[Section, ...]) -> int | None:
        return None


def cost_of_copies_and_budget(
    engine: Engine, args: argparse.Namespace, port: int, tally: Tally
) -> None:
    """`send_due` as it is and without web copies and size budget (patched out), in turns,
    twice each: what the two cost, best run against best run."""
    settings = settings_for(port, args.connections)
    keep = webcopy.keep
    best = {True: 0.0, False: 0.0}
    for full in (True, False, True, False):
        requeue(engine)
        mails = composer() if full else Unbudgeted(environment(), LINKS, MAIL_FROM)
        if not full:
            webcopy.keep = lambda *_: None  # type: ignore[assignment]
        try:
            summary, spent = metered(
                tally, lambda mails=mails: asyncio.run(send_everything(engine, mails, settings))
            )
        finally:
            webcopy.keep = keep
        best[full] = max(best[full], summary.sent / spent.wall)
    print(
        f"send_due with web copies and size budget {best[True]:,.0f} mails/s, without "
        f"{best[False]:,.0f} (best of two each, in turns): they cost "
        f"{1 - best[True] / best[False]:.1%} (target <= 10%)"
    )


def plain_environment() -> Environment:
    """The built-in templates without the inlining loader (same Jinja options and filters)."""
    env = Environment(
        loader=FileSystemLoader(str(BUILTIN)),
        autoescape=lambda name: name is not None and name.endswith(".html"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["wrap"] = wrap
    return env


async def naive(
    engine: Engine, composer: Composer, port: int, sample: int, record: bool = False
) -> int:
    """Builds the sample (CSS inlined per mail), then one connection per mail, in turn;
    with `record`, each mail is then marked sent in a transaction of its own, as a simple
    loop that must not send a mail twice would do."""
    drafts = list(build(engine, composer, pending(engine, sample)))
    for draft in drafts:
        assert draft.mail is not None, draft.skip
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, timeout=30)
        await smtp.connect()
        await smtp.sendmail(draft.mail.sender, [draft.mail.recipient], draft.mail.data)
        await smtp.quit()
        if record:
            with Session(engine) as session:
                delivery = session.get(Delivery, draft.delivery.id)
                assert delivery is not None
                delivery.status, delivery.sent_at = Status.SENT, NOW
                session.commit()
    return len(drafts)


async def smtp_only(settings: Settings, mail: Mail, mails: int) -> None:
    """The same mail `mails` times through `SmtpTransport`, as many at once as it has
    connections: the SMTP leg alone."""
    transport = SmtpTransport(settings)

    async def lane(count: int) -> None:
        for _ in range(count):
            await transport.send(mail)

    try:
        share, extra = divmod(mails, transport.concurrency)
        await asyncio.gather(*(lane(share + (n < extra)) for n in range(transport.concurrency)))
    finally:
        await transport.close()


def timed(action: Callable[[], Any]) -> tuple[Any, float]:
    began = time.perf_counter()
    result = action()
    return result, time.perf_counter() - began


@dataclass(frozen=True)
class Spent:
    wall: float
    cpu: float  # of this process: the sender
    sink_cpu: float
    received: int

    def busy(self) -> str:
        return f"CPU busy: sender {self.cpu / self.wall:.0%}, sink {self.sink_cpu / self.wall:.0%}"


def metered(tally: Tally, action: Callable[[], Any]) -> tuple[Any, Spent]:
    """The action's result, wall and CPU time on both sides, and what the sink received."""
    cpu, sink_cpu, mails = time.process_time(), tally.cpu, tally.mails
    result, wall = timed(action)
    return result, Spent(wall, time.process_time() - cpu, tally.cpu - sink_cpu, tally.mails - mails)


@dataclass(frozen=True)
class Run:
    subscribers: int
    rate: float
    peak: int


LINKS = Links("bench-secret", BASE_URL)


def composer() -> Composer:
    return Composer(environment(), LINKS, MAIL_FROM)


def measure(engine: Engine, size: int, args: argparse.Namespace, port: int, tally: Tally) -> Run:
    _, setup = timed(lambda: populate(engine, size, args.papers_per_mail))
    queued, queueing = timed(lambda: queue_daily(engine, NOW))
    mails = composer()
    (sample,) = list(build(engine, mails, pending(engine, 1)))
    assert sample.mail is not None, sample.skip
    papers = str(message_from_bytes(sample.mail.data)["Subject"]).split(": ")[1]
    print(
        f"{size:,} subscribers: setup {setup:.1f} s, queue_daily {queueing:.2f} s "
        f"({queued:,} mails queued); each mail {papers}, "
        f"{len(sample.mail.data):,} bytes on the wire"
    )
    settings = settings_for(port, args.connections)
    summary, spent = metered(tally, lambda: asyncio.run(send_everything(engine, mails, settings)))
    rate = summary.sent / spent.wall
    print(
        f"  send_due, {args.connections} connections: {summary.sent:,} mails in "
        f"{spent.wall:.2f} s = {rate:,.0f} mails/s; sink received {spent.received:,}; "
        f"{spent.busy()}"
    )
    print(f"  {summary}")
    # Memory on a pass of its own: tracemalloc slows Python several times over.
    requeue(engine)
    tracemalloc.start()
    again = asyncio.run(send_everything(engine, mails, settings))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(
        f"  peak Python memory (tracemalloc) of send_due: {peak / 2**20:.1f} MiB "
        f"(a second pass, {again.sent:,} sent)"
    )
    return Run(size, rate, peak)


def compare(engine: Engine, fast: Run, args: argparse.Namespace, port: int, tally: Tally) -> None:
    """The naive sender and the bare SMTP leg, on the database of the full-size run."""
    slow_mails = InlinePerMail(plain_environment(), Links("bench-secret", BASE_URL), MAIL_FROM)
    rates = []
    for record, what in ((False, "no outbox bookkeeping"), (True, "each mail marked sent")):
        requeue(engine)
        sent, spent = metered(
            tally,
            lambda record=record: asyncio.run(
                naive(engine, slow_mails, port, args.naive_sample, record)
            ),
        )
        rates.append(sent / spent.wall)
        print(
            f"naive sender (CSS inlined per mail, one connection per mail, {what}): "
            f"{sent:,} mails in {spent.wall:.2f} s = {rates[-1]:,.0f} mails/s; "
            f"sink received {spent.received:,}; {spent.busy()}"
        )
    bare, recorded = rates
    (draft,) = list(build(engine, composer(), pending(engine, 1)))
    assert draft.mail is not None, draft.skip
    mail, count = draft.mail, fast.subscribers
    settings = settings_for(port, args.connections)
    _, spent = metered(tally, lambda: asyncio.run(smtp_only(settings, mail, count)))
    print(
        f"SMTP leg alone (one mail's {len(mail.data):,} bytes over {args.connections} connections, "
        f"no database, no rendering): {count:,} mails in {spent.wall:.2f} s = "
        f"{count / spent.wall:,.0f} mails/s; sink received {spent.received:,}; {spent.busy()}"
    )
    leg = count / spent.wall
    print(
        f"send_due: {fast.rate:,.0f} mails/s at {fast.subscribers:,} subscribers, "
        f"{fast.rate / leg:.2f} of the SMTP leg (goal >= 0.7), "
        f"{fast.rate / bare:.1f}x the naive sender without bookkeeping, "
        f"{fast.rate / recorded:.1f}x the one that marks each mail sent"
    )


def profile(engine: Engine, args: argparse.Namespace, port: int) -> None:
    requeue(engine)
    settings = settings_for(port, args.connections)
    mails = composer()
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(send_everything(engine, mails, settings))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(20)
    # Cumulative, for paperboy's own functions and the mail and SMTP libraries' entry points.
    stats.sort_stats("cumulative").print_stats(PROFILED, 25)
    print("cProfile of send_due (under the profiler, which slows it), by own time, then by")
    print("cumulative time for paperboy's and the mail libraries' main functions:")
    for line in out.getvalue().splitlines():
        if line.strip() and not line.lstrip().startswith(("Ordered by", "List reduced")):
            print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--papers-per-mail", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--naive-sample", type=int, default=300)
    parser.add_argument("--profile", action="store_true", help="cProfile send_due once more")
    parser.add_argument(
        "--stock-sink", action="store_true", help="aiosmtpd reading DATA line by line"
    )
    args = parser.parse_args()
    if not 0 < args.naive_sample <= args.subscribers:
        parser.error("--naive-sample must be between 1 and --subscribers")
    sizes = sorted({max(1, args.subscribers // 5), args.subscribers})

    port = free_port()
    tally = Tally()
    ready = multiprocessing.Event()
    server = multiprocessing.Process(
        target=sink, args=(port, tally, ready, args.stock_sink), daemon=True
    )
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("the SMTP sink did not start")
        kind = "stock aiosmtpd" if args.stock_sink else "aiosmtpd reading DATA in chunks"
        print(
            f"SQLite, Python {sys.version.split()[0]}, {multiprocessing.cpu_count()} CPUs; "
            f"SMTP sink: {kind} on 127.0.0.1:{port}, process {server.pid}"
        )
        runs = []
        with tempfile.TemporaryDirectory() as tmp:
            for size in sizes:
                engine = open_database(f"sqlite:///{Path(tmp) / f'email-{size}.db'}")
                runs.append(measure(engine, size, args, port, tally))
                if size == sizes[-1]:
                    compare(engine, runs[-1], args, port, tally)
                    cost_of_copies_and_budget(engine, args, port, tally)
                    if args.profile:
                        profile(engine, args, port)
                engine.dispose()
        print(
            "peak Python memory of send_due: "
            + ", ".join(f"{r.peak / 2**20:.1f} MiB at {r.subscribers:,}" for r in runs)
            + " subscribers"
        )
    finally:
        server.terminate()
        server.join()


if __name__ == "__main__":
    main()
