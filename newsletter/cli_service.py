"""`paperboy run`, `deliver`, `status` and `demo`: the service and its one-shot relatives."""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from newsletter import shipped
from newsletter.cli_common import (
    EXIT_BAD_INPUT,
    EXIT_UNAVAILABLE,
    err,
    fail,
    open_engine,
    out,
    summary_table,
)
from newsletter.cli_mail import configured_mail
from newsletter.config import Settings, get_settings
from newsletter.demo import run_demo
from newsletter.inbox import Inbox
from newsletter.mail.daily import queue_daily
from newsletter.models import DigestFailure, utcnow
from newsletter.outbox import Summary
from newsletter.scheduler import Intervals, Jobs, Service
from newsletter.service import Part, Unavailable, WebPart, Wiring, assemble
from newsletter.status import gather


def _token(settings: Settings) -> str | None:
    return settings.discord_token.get_secret_value() if settings.discord_token else None


def run(
    web: Annotated[
        bool, typer.Option(help="Serve the web pages (confirm, unsubscribe...).")
    ] = True,
    bot: Annotated[
        bool, typer.Option(help="Connect the Discord bot for slash commands (with a token).")
    ] = True,
) -> None:
    """The service: poll, queue, send, serve the web pages and the bot, until SIGTERM.

    The Discord bot runs when PAPERBOY_DISCORD_TOKEN is set; Ctrl-C stops it too.
    """
    settings = get_settings()
    if "log_level" not in settings.model_fields_set:
        logging.getLogger().setLevel(logging.INFO)  # a service logs its events by default
        # ...its own: APScheduler logs every run of every job, alembic every check.
        for chatty in ("apscheduler", "alembic"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    engine = open_engine()
    transport, composer = configured_mail(engine)

    async def main() -> None:
        wiring = Wiring(engine, settings.outbox_dir, _token(settings), gateway=bot)
        assembled = assemble(wiring, transport, composer)
        parts: list[Part] = []
        if web:
            parts.append(WebPart(engine, composer, settings.web_host, settings.web_port))
        parts += assembled.parts
        jobs = Jobs(
            engine,
            assembled.senders,
            Inbox(settings.inbox_dir),
            settings.sources,
            unsubscribe_maildir=settings.unsubscribe_maildir,
        )
        intervals = Intervals(
            poll=settings.poll_seconds,
            queue=settings.queue_seconds,
            send=settings.send_seconds,
            lead=settings.lead_seconds,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        where = ", ".join(f"{s.name} to {s.description}" for s in assembled.senders)
        out.print(f"paperboy running: inbox {settings.inbox_dir}, sending {where}")
        await Service(jobs, parts, intervals).run(stop)

    try:
        asyncio.run(main())
    except Unavailable as problem:
        raise fail(str(problem), EXIT_UNAVAILABLE) from None


def deliver() -> None:
    """One pass over everything due (mails, Discord posts and DMs); says where each went."""
    settings = get_settings()
    engine = open_engine()
    transport, composer = configured_mail(engine)
    queued = queue_daily(engine, utcnow())

    async def main() -> tuple[dict[str, Summary], list[str]]:
        wiring = Wiring(engine, settings.outbox_dir, _token(settings))
        senders = assemble(wiring, transport, composer).senders
        try:
            summaries = await Jobs(engine, senders, Inbox(settings.inbox_dir)).send()
        finally:
            for sender in senders:
                await sender.close()
        return summaries, [f"{s.name} went to {s.description}" for s in senders]

    try:
        summaries, where = asyncio.run(main())
    except Unavailable as problem:
        raise fail(str(problem), EXIT_UNAVAILABLE) from None
    out.print(summary_table(f"deliver: {queued} daily mail(s) queued", summaries))
    out.print("; ".join(where))


SHOWN_FAILURES = 5


def failure_line(failure: DigestFailure) -> str:
    """One failed digest: which input, why, since when, how often, and the next try."""
    return (
        f"{failure.origin}: {failure.error} (since {failure.first_seen_at:%Y-%m-%d %H:%M} UTC, "
        f"{failure.attempts} tr{'y' if failure.attempts == 1 else 'ies'}, "
        f"next after {failure.next_retry_at:%Y-%m-%d %H:%M})"
    )


def _ago(then: datetime | None, now: datetime) -> str:
    if then is None:
        return "never"
    seconds = int((now - then).total_seconds())
    return f"{seconds} s ago" if seconds < 120 else f"{seconds // 60} min ago"


def status() -> None:
    """Digests, subscribers, feeds, deliveries waiting or failed, sources, running processes."""
    engine = open_engine()
    now = utcnow()
    found = gather(engine, now)
    newest = found.newest
    out.print(
        f"digests: {found.digests}"
        + (f" (newest #{newest.id}, {newest.digest_date}, from {newest.origin})" if newest else "")
    )
    people = ", ".join(f"{count} {name}" for name, count in sorted(found.subscribers.items()))
    out.print(f"subscribers: {people or 'none'}")
    out.print(f"channel feeds: {found.feeds[0]} enabled, {found.feeds[1]} disabled")
    if found.deliveries:
        table = Table(title="deliveries not yet sent")
        for name in ("kind", "status", "count"):
            table.add_column(name, justify="right" if name == "count" else "left")
        for (kind, state), count in sorted(found.deliveries.items()):
            table.add_row(kind, state, str(count))
        out.print(table)
    else:
        out.print("deliveries: nothing waiting, nothing failed")
    if paused := found.mail_paused:
        out.print(
            f"mail sending paused since {paused.since:%Y-%m-%d %H:%M} UTC (next try"
            f" {paused.until:%H:%M} UTC; no reader blamed): {paused.reason}"
        )
    if found.failures:
        out.print(f"digests that failed: {len(found.failures)} (`paperboy digests` lists them)")
        for failure in found.failures[:SHOWN_FAILURES]:
            out.print(Text(f"  {failure_line(failure)}"))
    else:
        out.print("digests that failed: none")
    for source in found.sources:
        problem = f", last error: {source.last_error}" if source.last_error else ""
        out.print(f"source {source.url}: checked {_ago(source.checked_at, now)}{problem}")
    if not found.workers:
        out.print("service: not running (`paperboy run` starts it)")
    for worker, alive in found.workers:
        role = "leader" if worker.leader else "sender"
        state = f"{role}, seen {_ago(worker.seen_at, now)}" if alive else "not seen for a while"
        jobs = ", ".join(
            f"{job} at {datetime.fromisoformat(at):%H:%M:%S}"
            for job, at in sorted(worker.next_runs.items())
        )
        out.print(f"process {worker.name}: {state}; next: {jobs} (UTC)")


def demo(
    folder: Annotated[
        Path, typer.Option(help="Where the demo keeps its database and outbox.")
    ] = Path("paperboy-demo"),
    seeds: Annotated[
        Path | None, typer.Option(help="Digests to read (default: the shipped Daily Papers day).")
    ] = None,
) -> None:
    """The whole flow on the seed digests: ingest, match, queue, deliver, in a fresh folder.

    Demo readers and channel feeds are made up; mails and Discord messages are only written
    to files. Running it again starts over and gives the same result.
    """
    if seeds is None:
        seeds = shipped.seeds()
    elif not seeds.is_dir():
        raise fail(f"--seeds {seeds}: not a folder", EXIT_BAD_INPUT)
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=out
    ) as bar:
        task = bar.add_task("starting", total=None)
        result = asyncio.run(
            run_demo(folder, seeds, lambda name: bar.update(task, description=name))
        )
    for line in result.refused:
        err.print(Text(f"error: {line}", style="red"))
    table = Table(title=f"demo: {result.papers} papers, matches per topic")
    table.add_column("topic")
    table.add_column("papers", justify="right")
    for name, count in result.matches:
        table.add_row(name, str(count))
    out.print(table)
    out.print(summary_table("delivered", result.summaries))
    out.print(f"{len(result.mails)} mail(s) written:")
    for path in result.mails:
        out.print(f"  {path}")
    if result.preview is not None:
        out.print(f"HTML preview of the first: {result.preview}")
    out.print(
        f"{len(result.posts)} Discord message(s) written as JSON in {folder / 'outbox' / 'discord'}"
    )
    database = folder / "paperboy.db"
    out.print(f"database: {database} (explore it with PAPERBOY_DATABASE_URL=sqlite:///{database})")


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(deliver)
    app.command()(status)
    app.command()(demo)
