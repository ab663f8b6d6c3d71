"""The outbox: queue each delivery once, let senders claim, send and settle it.

Kind-agnostic on purpose: a daily mail, a confirmation mail and a Discord post are all rows
here, and whatever sends them only claims rows and reports outcomes. Claims hold a lease; a
sender that dies mid-send leaves a lease that runs out, and the row is claimed again, so a
crash repeats at most what was in flight and never loses it. On PostgreSQL the claim query
skips rows other senders hold (`FOR UPDATE SKIP LOCKED`), so any number of senders can run;
SQLite serialises claims with BEGIN IMMEDIATE.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, and_, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.models import Delivery

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=6)


class Status(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    SKIPPED = "skipped"


class Result(StrEnum):
    SENT = "sent"
    RETRY = "retry"  # a temporary failure: try again later
    FAILED = "failed"  # a permanent failure: do not try again
    SKIPPED = "skipped"  # nothing to send any more (no papers, or the reader left)


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    result: Result
    error: str | None = None


@dataclass
class Summary:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    suspended: list[str] = field(default_factory=list)

    def add(self, result: Result) -> None:
        name = {Result.RETRY: "retried"}.get(result, result.value)
        setattr(self, name, getattr(self, name) + 1)


def worker_name() -> str:
    """Who holds a claim: host and process, so a stuck lease can be traced to its sender."""
    return f"{socket.gethostname()}:{os.getpid()}"


def enqueue(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert deliveries whose key is new; an existing key is left alone. Returns how many."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = (
        insert(Delivery.__table__)  # type: ignore[arg-type]
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Delivery.__table__.c.id)  # type: ignore[attr-defined]
    )
    # RETURNING counts what went in on both databases, where rowcount does not.
    return len(session.connection().execute(statement, list(rows)).all())


def due(kinds: Iterable[str], now: datetime) -> Any:
    """Rows ready to send: pending and due, or claimed by a sender whose lease ran out."""
    return and_(
        col(Delivery.kind).in_(list(kinds)),
        or_(
            and_(col(Delivery.status) == Status.PENDING, col(Delivery.next_attempt_at) <= now),
            and_(col(Delivery.status) == Status.SENDING, col(Delivery.claimed_until) < now),
        ),
    )


def claim(
    engine: Engine,
    kinds: Iterable[str],
    worker: str,
    now: datetime,
    limit: int,
    lease: timedelta = LEASE,
) -> list[Delivery]:
    """Take up to `limit` due deliveries for this worker; each claim counts as an attempt."""
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        query = (
            select(Delivery)
            .where(due(kinds, now))
            .order_by(col(Delivery.next_attempt_at), col(Delivery.id))
            .limit(limit)
        )
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = list(session.exec(query))
        for row in rows:
            row.status, row.claimed_by = Status.SENDING, worker
            row.claimed_until, row.attempts = now + lease, row.attempts + 1
        session.flush()
        return rows


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential, capped, with jitter so senders retrying together spread out."""
    ceiling = min(LONGEST_RETRY, FIRST_RETRY * 2 ** max(0, attempts - 1))
    return ceiling * (rng or random).uniform(0.5, 1.0)


def settle(
    engine: Engine,
    worker: str,
    outcomes: Sequence[Outcome],
    now: datetime,
    then: Callable[[Session, list[tuple[int | None, Outcome]]], None] | None = None,
) -> None:
    """Record outcomes, only for rows this worker still holds (a lease may have been lost).

    `then` runs in the same transaction with (subscriber id, outcome) of each settled row, for
    what a kind of delivery records beside its status (an address's bounce count, say). Plain
    statements, not ORM objects: this runs once per mail sent.
    """
    if not outcomes:
        return
    table = Delivery.__table__  # type: ignore[attr-defined]
    by_id = {o.delivery_id: o for o in outcomes}
    with Session(writing(engine)) as session, session.begin():
        held = session.execute(
            select(table.c.id, table.c.attempts, table.c.subscriber_id).where(
                table.c.id.in_(list(by_id)),
                table.c.claimed_by == worker,
                table.c.status == Status.SENDING,
            )
        ).all()
        settled = []
        for delivery_id, attempts, subscriber_id in held:
            outcome = by_id[delivery_id]
            values: dict[str, Any] = {
                "claimed_by": None,
                "claimed_until": None,
                "last_error": outcome.error,
            }
            if outcome.result is Result.SENT:
                values |= {"status": Status.SENT, "sent_at": now}
            elif outcome.result is Result.SKIPPED:
                values["status"] = Status.SKIPPED
            elif outcome.result is Result.RETRY and attempts < MAX_ATTEMPTS:
                values |= {"status": Status.PENDING, "next_attempt_at": now + backoff(attempts)}
            else:
                values["status"] = Status.FAILED
            session.execute(update(table).where(table.c.id == delivery_id).values(**values))
            settled.append((subscriber_id, outcome))
        if then is not None:
            then(session, settled)


def release(engine: Engine, worker: str) -> None:
    """Give back what this worker holds (on shutdown) so another sender takes it at once."""
    with Session(writing(engine)) as session, session.begin():
        session.execute(
            update(Delivery)
            .where(col(Delivery.claimed_by) == worker, col(Delivery.status) == Status.SENDING)
            .values(status=Status.PENDING, claimed_by=None, claimed_until=None)
        )


def record_progress(engine: Engine, worker: str, delivery_id: int, progress: int) -> bool:
    """Note that the first `progress` messages of a delivery went out, so a retry after a
    crash goes on from the next one. False when this worker no longer holds the row."""
    with Session(writing(engine)) as session, session.begin():
        return bool(
            session.execute(
                update(Delivery)
                .where(
                    col(Delivery.id) == delivery_id,
                    col(Delivery.claimed_by) == worker,
                    col(Delivery.status) == Status.SENDING,
                )
                .values(progress=progress)
            ).rowcount
        )
