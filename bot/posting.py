"""The Discord poster: claim due posts, DMs and notices from the outbox, send, settle.

A post may take several messages; each one sent is recorded (`Delivery.progress`), so a
retry after a crash goes on from the first message not sent, and the one in flight carries
the same nonce, which Discord uses to refuse a repeat. A channel Discord refuses for good
disables its feed (and queues one notice to whoever added it); closed DMs turn DMs off.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from paperboy_bot.embeds import messages
from paperboy_bot.transports import POSTS_PER_SECOND, Gone, PostTransport, Target
from sqlalchemy import Engine, update
from sqlmodel import Session

from newsletter.db import writing
from newsletter.feeds import POST_KINDS, contents, disable_feed
from newsletter.mail.transports import PermanentFailure, TemporaryFailure
from newsletter.models import Delivery, Subscriber, utcnow
from newsletter.outbox import (
    LEASE,
    Outcome,
    Result,
    Summary,
    claim,
    record_progress,
    settle,
    worker_name,
)

log = logging.getLogger(__name__)

BATCH = 50
# Messages claimed and not yet sent, at most: what the pace sends in half a lease.
HELD = int(POSTS_PER_SECOND * LEASE.total_seconds() / 2)


def _refused(engine: Engine, delivery: Delivery, reason: str, now: datetime) -> None:
    """Stop sending where Discord said never: disable the feed, or turn the DMs off."""
    with Session(writing(engine)) as session, session.begin():
        if delivery.kind == "post" and delivery.channel_feed_id is not None:
            if disable_feed(session, delivery.channel_feed_id, reason, now):
                log.warning("feed %s disabled: %s", delivery.channel_feed_id, reason)
        elif delivery.kind == "dm" and delivery.subscriber_id is not None:
            session.execute(
                update(Subscriber)
                .where(Subscriber.id == delivery.subscriber_id)  # type: ignore[arg-type]
                .values(discord_dm=False)
            )
            log.warning("DMs off for subscriber %s: %s", delivery.subscriber_id, reason)


@dataclass
class _Post:
    """A claimed delivery with its messages built, or why it has nothing to send."""

    delivery: Delivery
    target: Target
    parts: list[dict[str, Any]]
    skipped: str | None = None


def _claim(engine: Engine, worker: str, now: datetime, batch: int, lease: timedelta) -> list[_Post]:
    """Claim and build in one go: it reads the database and builds embeds, so it runs in a
    thread, where it does not hold up the messages already going out."""
    rows = claim(engine, POST_KINDS, worker, now, batch, lease)
    with Session(engine) as session:
        found = contents(session, rows)
    posts = []
    for row in rows:
        content = found[row.id or 0]
        if isinstance(content, str):
            posts.append(_Post(row, Target(), [], content))
        else:
            posts.append(_Post(row, Target(content.channel_id, content.user_id), messages(content)))
    return posts


async def _deliver(
    engine: Engine,
    transport: PostTransport,
    worker: str,
    post: _Post,
    clock: Callable[[], datetime],
    sent: Callable[[], None],
) -> Outcome:
    """Send a post's messages in order, each recorded before the next goes, so a restart
    repeats at most the one in flight; `sent` hears of each."""
    delivery, parts = post.delivery, post.parts
    assert delivery.id is not None
    if post.skipped is not None:
        return Outcome(delivery.id, Result.SKIPPED, post.skipped)
    try:
        for number in range(delivery.progress, len(parts)):
            name, left = f"{delivery.key}.{number}", len(parts) - number
            await transport.send(post.target, parts[number], name, left)
            sent()
            if not await asyncio.to_thread(
                record_progress, engine, worker, delivery.id, number + 1
            ):
                return Outcome(delivery.id, Result.RETRY, "lease lost mid-post")
    except Gone as err:
        await asyncio.to_thread(_refused, engine, delivery, str(err), clock())
        return Outcome(delivery.id, Result.FAILED, str(err))
    except PermanentFailure as err:
        return Outcome(delivery.id, Result.FAILED, str(err))
    except TemporaryFailure as err:
        return Outcome(delivery.id, Result.RETRY, str(err))
    return Outcome(delivery.id, Result.SENT)


async def post_due(
    engine: Engine,
    transport: PostTransport,
    *,
    worker: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    batch: int = BATCH,
    lease: timedelta = LEASE,
    progress: Callable[[int], None] | None = None,
    held: int = HELD,
) -> Summary:
    """Send every due post, DM and notice; returns what happened to them.

    Each claimed delivery has a sender of its own: a channel takes 5 messages per 5 seconds,
    so a sender waiting on one channel's window must not keep the others idle; the
    transport's global pace is what bounds them. Claiming pauses while the posts in hand
    hold `held` messages not yet sent, so each is sent well within its lease (and other
    sender processes get the rest), and resumes as they go out. Two posts to one channel
    go one after the other, in the order claimed, so their messages do not interleave.
    Database work runs in threads, so the event loop stays free to keep the pace.
    """
    worker = worker or worker_name()
    summary = Summary()
    unsent = active = 0
    wake = asyncio.Event()
    channels: defaultdict[Target, asyncio.Lock] = defaultdict(asyncio.Lock)

    def ease(count: int) -> None:
        nonlocal unsent
        if unsent >= held > unsent - count:
            wake.set()
        unsent -= count

    async def one(post: _Post) -> None:
        nonlocal active
        left = len(post.parts) - post.delivery.progress

        def sent() -> None:
            nonlocal left
            left -= 1
            ease(1)

        async with channels[post.target]:
            outcome = await _deliver(engine, transport, worker, post, clock, sent)
        ease(left)
        await asyncio.to_thread(settle, engine, worker, [outcome], clock())
        summary.add(outcome.result)
        if outcome.result in (Result.RETRY, Result.FAILED):
            log.info("delivery %s %s: %s", outcome.delivery_id, outcome.result, outcome.error)
        if progress is not None:
            progress(1)
        active -= 1
        if not active:
            wake.set()

    # Claims again once all claimed are done, too: a refused post queues a notice.
    async with asyncio.TaskGroup() as senders:
        while True:
            wake.clear()
            if unsent < held:
                posts = await asyncio.to_thread(_claim, engine, worker, clock(), batch, lease)
                for post in posts:
                    unsent += len(post.parts) - post.delivery.progress
                    active += 1
                    senders.create_task(one(post))
                if len(posts) == batch:
                    continue
                if not posts and not active:
                    break
            await wake.wait()
    return summary
