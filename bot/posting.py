"""The Discord poster: claim due posts, DMs and notices from the outbox, send, settle.

A post may take several messages; each one sent is recorded (`Delivery.progress`), so a
retry after a crash goes on from the first message not sent, and the one in flight carries
the same nonce, which Discord uses to refuse a repeat. A channel Discord refuses for good
disables its feed (and queues one notice to whoever added it); closed DMs turn DMs off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import Session

from bot.embeds import messages
from bot.transports import Gone, PostTransport, Target
from newsletter.db import writing
from newsletter.feeds import POST_KINDS, PostContent, contents, disable_feed
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
SENDERS = 50


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


async def _deliver(
    engine: Engine,
    transport: PostTransport,
    worker: str,
    delivery: Delivery,
    content: PostContent | str,
    clock: Callable[[], datetime],
) -> Outcome:
    assert delivery.id is not None
    if isinstance(content, str):
        return Outcome(delivery.id, Result.SKIPPED, content)
    target = Target(content.channel_id, content.user_id)
    parts = messages(content)
    try:
        for number in range(delivery.progress, len(parts)):
            await transport.send(target, parts[number], f"{delivery.key}.{number}")
            if not record_progress(engine, worker, delivery.id, number + 1):
                return Outcome(delivery.id, Result.RETRY, "lease lost mid-post")
    except Gone as err:
        _refused(engine, delivery, str(err), clock())
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
    senders: int = SENDERS,
) -> Summary:
    """Send every due post, DM and notice; returns what happened to them.

    `senders` deliveries go out at once, each taking the next claimed one as soon as it is
    done, so one busy channel (which Discord lets take 5 messages per 5 seconds) holds up
    only its own sender, not a batch. Each delivery is settled when its last message is sent.
    """
    worker = worker or worker_name()
    summary = Summary()

    async def one(delivery: Delivery, content: PostContent | str) -> None:
        outcome = await _deliver(engine, transport, worker, delivery, content, clock)
        settle(engine, worker, [outcome], clock())
        summary.add(outcome.result)
        if outcome.result in (Result.RETRY, Result.FAILED):
            log.info("delivery %s %s: %s", outcome.delivery_id, outcome.result, outcome.error)
        if progress is not None:
            progress(1)

    claimed: list[tuple[Delivery, PostContent | str]] = []
    claiming = asyncio.Lock()

    async def take() -> tuple[Delivery, PostContent | str] | None:
        async with claiming:
            if not claimed:
                rows = claim(engine, POST_KINDS, worker, clock(), batch, lease)
                with Session(engine) as session:
                    found = contents(session, rows)
                claimed.extend((row, found[row.id]) for row in rows if row.id is not None)
            return claimed.pop(0) if claimed else None

    async def work() -> None:
        while (item := await take()) is not None:
            await one(*item)

    await asyncio.gather(*(work() for _ in range(senders)))
    return summary
