"""Double opt-in: an address gets mail only after its owner confirmed it, and can always leave.

States of `Subscriber.email_status`: `pending` (asked, not confirmed: only confirmation mails
go there, at most one an hour), `confirmed`, `unsubscribed` (the owner left: nothing goes
there until they confirm again), `suspended` (the address bounced hard three times in a row).
"""

from __future__ import annotations

import csv
import hmac
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path

from sqlalchemy import Engine, update
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.models import Delivery, Subscriber
from newsletter.outbox import Status, enqueue

CONFIRM_EVERY = timedelta(hours=1)
MAX_HARD_FAILURES = 3


class EmailStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    UNSUBSCRIBED = "unsubscribed"
    SUSPENDED = "suspended"


class OptInError(ValueError):
    """A request about an address that cannot be carried out; nothing was written."""


def request_confirmation(session: Session, subscriber: Subscriber, now: datetime) -> bool:
    """Queue a confirmation mail unless one went out within the hour; True if queued."""
    if subscriber.email is None or subscriber.email_status == EmailStatus.CONFIRMED:
        return False
    sent = subscriber.confirmation_sent_at
    if sent is not None and now - sent < CONFIRM_EVERY:
        return False
    subscriber.email_status = EmailStatus.PENDING
    subscriber.confirmation_sent_at = now
    subscriber.code_attempts = 0
    session.add(subscriber)
    session.flush()
    row = {
        "key": f"confirm:{subscriber.id}:{now.isoformat(timespec='seconds')}",
        "kind": "confirm",
        "subscriber_id": subscriber.id,
        "status": Status.PENDING,
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }
    return enqueue(session, [row]) == 1


def _confirm(subscriber: Subscriber, now: datetime) -> None:
    subscriber.email_status = EmailStatus.CONFIRMED
    subscriber.email_confirmed_at = subscriber.email_confirmed_at or now
    subscriber.hard_failures = 0


def confirm(
    engine: Engine,
    subscriber_id: int,
    email: str,
    now: datetime,
    issued_at: datetime | None = None,
) -> Subscriber:
    """The owner followed the link (made at `issued_at`): the address may get mail.
    Following it twice is fine; a link is void once its reader unsubscribed, and after they
    asked again only the newest confirmation mail's link (or code) confirms."""
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.email != email:
            raise OptInError("this link is for an address paperboy no longer has")
        if subscriber.email_status == EmailStatus.UNSUBSCRIBED:
            raise OptInError(
                f"{email} has unsubscribed since this link was sent: sign up again to get mail"
            )
        asked = subscriber.confirmation_sent_at
        # Tokens carry whole seconds; the mail is made after it was asked for.
        if issued_at is not None and asked is not None and issued_at < asked.replace(microsecond=0):
            raise OptInError("a newer confirmation mail was sent since: use the link in that one")
        _confirm(subscriber, now)
        session.add(subscriber)
        return subscriber


# Wrong codes allowed per confirmation mail: with at most one mail an hour, guessing a
# six-digit code takes years.
MAX_CODE_ATTEMPTS = 5


def confirm_with_code(
    engine: Engine,
    email: str,
    code: str,
    code_of: Callable[[int, str, datetime], str],
    now: datetime,
) -> Subscriber:
    """The owner typed the code from the latest confirmation mail (`code_of` is
    `Links.code`: the code for a subscriber id, address and the time that mail was queued)."""
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        subscriber = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if subscriber is None or subscriber.id is None:
            raise OptInError(f"{email} has not asked for mail")
        sent = subscriber.confirmation_sent_at
        if sent is None:
            raise OptInError(f"no confirmation mail has been sent to {email}")
        if subscriber.code_attempts >= MAX_CODE_ATTEMPTS:
            raise OptInError(
                "too many wrong codes: ask for a new confirmation mail and type its code"
            )
        right = hmac.compare_digest(code.strip(), code_of(subscriber.id, email, sent))
        if right:
            _confirm(subscriber, now)
        else:
            subscriber.code_attempts += 1  # kept: the refusal below must not roll it back
        session.add(subscriber)
    if not right:
        raise OptInError("that code is not the one in the latest confirmation mail")
    return subscriber


def unsubscribe_address(engine: Engine, subscriber_id: int, email: str) -> None:
    """Stop all mail to the address; mail queued for it is dropped."""
    with Session(writing(engine)) as session, session.begin():
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.email != email:
            raise OptInError("this link is for an address paperboy no longer has")
        subscriber.email_status = EmailStatus.UNSUBSCRIBED
        session.add(subscriber)
        session.execute(
            update(Delivery)
            .where(
                col(Delivery.subscriber_id) == subscriber_id,
                col(Delivery.status) == Status.PENDING,
            )
            .values(status=Status.SKIPPED, last_error="unsubscribed")
        )


def vouch(engine: Engine, email: str, now: datetime) -> Subscriber:
    """An admin confirms an address they know consented (moving an existing list)."""
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        subscriber = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if subscriber is None:
            raise OptInError(f"{email} is not a subscriber")
        _confirm(subscriber, now)
        session.add(subscriber)
        return subscriber


def count_hard_failure(session: Session, subscriber: Subscriber) -> bool:
    """One more hard failure in a row (a sent mail resets the count); True when this one
    suspended the address."""
    subscriber.hard_failures += 1
    suspended = (
        subscriber.hard_failures >= MAX_HARD_FAILURES
        and subscriber.email_status != EmailStatus.SUSPENDED
    )
    if suspended:
        subscriber.email_status = EmailStatus.SUSPENDED
    session.add(subscriber)
    return suspended


@dataclass(frozen=True)
class ImportRow:
    email: str
    topics: list[str]
    timezone: str | None
    hour: int | None


def read_import(path: Path) -> list[ImportRow]:
    """Rows of `email,topics,timezone,hour` (topics `;`-separated); errors name the line."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as err:
        raise OptInError(f"{path}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise OptInError(f"{path}: not UTF-8 text (byte {err.start})") from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "email" not in reader.fieldnames:
        raise OptInError(f"{path}: line 1: the header must name an 'email' column")
    rows = []
    for line, record in enumerate(reader, start=2):
        hour_text = (record.get("hour") or "").strip()
        if hour_text and not hour_text.isdigit():
            raise OptInError(f"{path}: line {line}: hour {hour_text!r} is not a number")
        topics = [t.strip() for t in (record.get("topics") or "").split(";") if t.strip()]
        if not topics:
            raise OptInError(f"{path}: line {line}: no topics")
        rows.append(
            ImportRow(
                email=(record.get("email") or "").strip(),
                topics=topics,
                timezone=(record.get("timezone") or "").strip() or None,
                hour=int(hour_text) if hour_text else None,
            )
        )
    if not rows:
        raise OptInError(f"{path}: no subscribers after the header line")
    return rows
