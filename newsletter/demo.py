"""`paperboy demo`: the whole flow on the seed digests, in a folder of its own.

A fresh SQLite database every run (so running it twice gives the same result), a few demo
readers in four time zones and two channel feeds on catalogue topics, then one cycle through
the same jobs the service runs: ingest, match, queue, deliver. Mails land as `.eml` files
and Discord messages as JSON, whatever the settings say: a demo never mails anyone.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import Engine
from sqlmodel import Session, col, func, select

from newsletter.db import open_database
from newsletter.feeds import add_feed
from newsletter.inbox import Inbox, digest_files, read_digest
from newsletter.intake import take_digest
from newsletter.mail.compose import Composer
from newsletter.mail.links import SECRET_SETTING, links_for
from newsletter.mail.templates import environment
from newsletter.mail.transports import FileTransport
from newsletter.models import AppSetting, DigestPaper, PaperMatch, Topic, utcnow
from newsletter.optin import ImportRow
from newsletter.outbox import Summary
from newsletter.scheduler import Jobs
from newsletter.service import Wiring, assemble
from newsletter.subscriptions import import_subscribers

READERS = (
    ImportRow("ada@example.org", ["reinforcement-learning", "reasoning-llms"], "Europe/London", 0),
    ImportRow("grace@example.com", ["continual-learning"], "America/New_York", 0),
    ImportRow("srinivasa@example.net", ["math-reasoning", "llm-pretraining"], "Asia/Kolkata", 0),
    ImportRow("mary@example.org", ["fine-tuning", "interpretability"], "Australia/Sydney", 0),
)
"""Delivery hour 0: each reader's mail is due at once, wherever the demo runs."""
GUILD = 1
FEEDS = ((101, "reinforcement-learning"), (102, "reasoning-llms"))


@dataclass
class DemoResult:
    folder: Path
    papers: int
    matches: list[tuple[str, int]]
    mails: list[Path]
    preview: Path | None
    posts: list[Path]
    summaries: dict[str, Summary]
    refused: list[str]
    """Seed files that did not go in, each with why."""


def _fresh(folder: Path) -> Engine:
    """An empty database and outbox in `folder`, whatever an earlier run left there."""
    for name in ("paperboy.db", "paperboy.db-wal", "paperboy.db-shm", "preview.html"):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "outbox", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    return open_database(f"sqlite:///{folder / 'paperboy.db'}")


def _matches(engine: Engine) -> tuple[int, list[tuple[str, int]]]:
    with Session(engine) as session:
        papers = session.exec(select(func.count(func.distinct(DigestPaper.paper_id)))).one()
        counts = session.exec(
            select(Topic.name, func.count())
            .join(PaperMatch, col(PaperMatch.topic_id) == col(Topic.id))
            .group_by(col(Topic.name))
            .order_by(func.count().desc(), col(Topic.name))
        ).all()
    return papers, [(name, count) for name, count in counts]


def _html(eml: Path) -> str:
    message = message_from_bytes(eml.read_bytes(), _class=EmailMessage, policy=policy.default)
    part = message.get_body(("html",))
    return part.get_content() if part is not None else ""


async def run_demo(
    folder: Path, seeds: Path, step: Callable[[str], None] = lambda _: None
) -> DemoResult:
    """One full cycle; `step` hears each stage's name as it starts (for a progress display)."""
    step("fresh database")
    engine = _fresh(folder)
    outbox = folder / "outbox"
    import_subscribers(engine, list(READERS), confirmed=True, now=utcnow())
    for channel, topic in FEEDS:
        add_feed(engine, GUILD, channel, topic)
    with Session(engine) as session:
        # A fixed key (unless one is configured): Message-IDs, and so the mail files' names,
        # are keyed with it, and a demo run again must give the same result.
        session.add(AppSetting(name=SECRET_SETTING, value="paperboy demo: nothing is mailed"))
        session.commit()
    composer = Composer(environment(), links_for(engine), "paperboy demo <paperboy@localhost>")
    mails = FileTransport(outbox / "mail")
    plugin = assemble(Wiring(engine, outbox, discord_token=None), mails, composer)
    jobs = Jobs(engine, plugin.senders, Inbox(folder / "inbox"))
    step("ingest and match the seed digests")
    # Straight in, not through the inbox: its settling wait would skip seeds written a moment
    # ago (a fresh copy or download) and the demo would show nothing.
    refused = []
    for name in digest_files([str(seeds)]):
        try:
            data = read_digest(name)
        except OSError as problem:
            refused.append(f"{name}: cannot read: {problem.strerror}")
            continue
        taken = await asyncio.to_thread(
            take_digest, engine, data, name, utcnow(), retry_now=True, quiet=True
        )
        if taken.error is not None:
            refused.append(f"{name}: {taken.error}")
    step("queue the daily mails")
    await jobs.queue()
    step("deliver")
    summaries = await jobs.send()
    for sender in plugin.senders:
        await sender.close()
    papers, matches = _matches(engine)
    written = sorted((outbox / "mail").glob("*.eml"))
    preview = None
    if written:
        preview = folder / "preview.html"
        preview.write_text(_html(written[0]), encoding="utf-8")
    posts = sorted((outbox / "discord").glob("*.json"))
    engine.dispose()
    return DemoResult(folder, papers, matches, written, preview, posts, summaries, refused)
