"""The mail sender: claim due mails from the outbox, build them, send them, settle them.

Mails are claimed and settled in batches (one transaction each) and sent concurrently within
a batch, as many at once as the transport allows. A 5xx reply fails the delivery and counts
against the address (suspended after three in a row); a 4xx reply or a lost connection is
retried with backoff. Between claim and settle a crash loses nothing: the claim's lease
runs out and the mail is sent again, with the same Message-ID.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import Message

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from newsletter.config import get_settings
from newsletter.mail.compose import Composer, Recipient, body
from newsletter.mail.links import links_for
from newsletter.mail.templates import environment
from newsletter.mail.transports import (
    PermanentFailure,
    TemporaryFailure,
    Transport,
    transport_from,
)
from newsletter.models import Delivery, Subscriber, utcnow
from newsletter.optin import EmailStatus, count_hard_failure
from newsletter.outbox import (
    LEASE,
    Outcome,
    Result,
    Summary,
    claim,
    due,
    settle,
    worker_name,
)
from newsletter.sections import Window, followed_topics, sections_for

log = logging.getLogger(__name__)

MAIL_KINDS = ("daily", "confirm")
BATCH = 500


@dataclass(frozen=True)
class Draft:
    """A claimed delivery made into a message, or the reason there is nothing to send."""

    delivery: Delivery
    message: Message | None
    skip: str | None = None


def build(engine: Engine, composer: Composer, deliveries: list[Delivery]) -> list[Draft]:
    """Messages for a batch of deliveries, reading what they need in a few queries."""
    with Session(engine) as session:
        ids = {d.subscriber_id for d in deliveries if d.subscriber_id is not None}
        readers = {
            s.id: s for s in session.exec(select(Subscriber).where(col(Subscriber.id).in_(ids)))
        }
        topics = followed_topics(session, ids)
        windows = [
            Window(d.id, topics.get(d.subscriber_id, ()), d.after_digest_id or 0, d.digest_id)
            for d in deliveries
            if d.kind == "daily" and d.id is not None and d.digest_id is not None
        ]
        sections = sections_for(session, windows)
    drafts = []
    for delivery in deliveries:
        reader = readers.get(delivery.subscriber_id)
        if reader is None or reader.email is None:
            drafts.append(Draft(delivery, None, "the subscriber is gone"))
            continue
        to = Recipient(reader.id, reader.email)
        if delivery.kind == "confirm":
            if reader.email_status == EmailStatus.CONFIRMED:
                drafts.append(Draft(delivery, None, "already confirmed"))
            else:
                code = composer.links.code(reader.id, reader.email, reader.confirmation_sent_at)
                drafts.append(Draft(delivery, composer.confirmation(delivery.key, to, code)))
            continue
        if reader.email_status != EmailStatus.CONFIRMED:
            drafts.append(Draft(delivery, None, f"address is {reader.email_status}"))
            continue
        found = sections.get(delivery.id, [])
        if not found:
            drafts.append(Draft(delivery, None, "no matched papers"))
            continue
        message = composer.daily(delivery.key, delivery.id, to, delivery.day, found)
        drafts.append(Draft(delivery, message))
    return drafts


async def _send(transport: Transport, draft: Draft) -> Outcome:
    delivery_id = draft.delivery.id
    if draft.message is None:
        return Outcome(delivery_id, Result.SKIPPED, draft.skip)
    try:
        await transport.send(draft.message)
    except PermanentFailure as err:
        return Outcome(delivery_id, Result.FAILED, str(err))
    except TemporaryFailure as err:
        return Outcome(delivery_id, Result.RETRY, str(err))
    return Outcome(delivery_id, Result.SENT)


def _bounces(suspended: list[str]) -> Callable[[Session, list[tuple[int | None, Outcome]]], None]:
    """Count hard failures in a row per address, in the transaction that settles the mail."""
    table = Subscriber.__table__  # type: ignore[attr-defined]

    def record(session: Session, settled: list[tuple[int | None, Outcome]]) -> None:
        for subscriber_id, outcome in settled:
            if subscriber_id is None:
                continue
            if outcome.result is Result.SENT:  # the common case, kept to one cheap statement
                session.execute(
                    update(table)
                    .where(table.c.id == subscriber_id, table.c.hard_failures != 0)
                    .values(hard_failures=0)
                )
            elif outcome.result is Result.FAILED:
                reader = session.get(Subscriber, subscriber_id)
                if reader is not None and count_hard_failure(session, reader):
                    log.warning("suspended %s after repeated hard bounces", reader.email)
                    suspended.append(reader.email or "")

    return record


async def send_due(
    engine: Engine,
    transport: Transport,
    composer: Composer,
    *,
    worker: str | None = None,
    clock: Callable[[], datetime] = utcnow,
    batch: int = BATCH,
    lease: timedelta = LEASE,
    progress: Callable[[int], None] | None = None,
) -> Summary:
    """Send every mail that is due now; returns what happened to them.

    Each mail is settled as soon as its send returns, so a crash repeats only the mails that
    were on the wire at that moment (at most one per connection), never a whole batch.
    """
    worker = worker or worker_name()
    summary = Summary()
    record = _bounces(summary.suspended)

    async def one(draft: Draft) -> None:
        outcome = await _send(transport, draft)
        settle(engine, worker, [outcome], clock(), record)
        summary.add(outcome.result)
        if outcome.result in (Result.RETRY, Result.FAILED):
            log.info("delivery %s %s: %s", outcome.delivery_id, outcome.result, outcome.error)
        if progress is not None:
            progress(1)

    while True:
        claimed = claim(engine, MAIL_KINDS, worker, clock(), batch, lease)
        if not claimed:
            return summary
        await asyncio.gather(*(one(draft) for draft in build(engine, composer, claimed)))


def preview_due(engine: Engine, composer: Composer, now: datetime) -> list[Draft]:
    """What `send_due` would send now, built but neither claimed nor sent (for --dry-run)."""
    with Session(engine) as session:
        rows = list(session.exec(select(Delivery).where(due(MAIL_KINDS, now))))
    return build(engine, composer, rows)


def configured(engine: Engine) -> tuple[Transport, Composer]:
    """The transport and composer the settings ask for (SMTP, or files in the outbox)."""
    settings = get_settings()
    composer = Composer(environment(), links_for(engine), settings.mail_from)
    return transport_from(settings), composer


def view_html(engine: Engine, composer: Composer, delivery_id: int) -> str | None:
    """A daily mail as a web page ("view in your browser"), rebuilt from the outbox row."""
    with Session(engine) as session:
        delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.kind != "daily":
        return None
    (draft,) = build(engine, composer, [delivery])
    if draft.message is None:
        return None
    return body(draft.message, "html")
