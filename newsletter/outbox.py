"""The outbox: queue each delivery once, let senders claim, send and settle it.

Kind-agnostic on purpose: a daily mail, a confirmation mail and a Discord post are all rows
here, and whatever sends them only claims rows and reports outcomes. Claims hold a lease; a
sender that dies mid-send leaves a lease that runs out, and the row is claimed again, so a
crash repeats at most what was in flight and never loses it. On PostgreSQL the claim query
skips rows other senders hold (`FOR UPDATE SKIP LOCKED`), so any number of senders can run;
SQLite serialises claims with BEGIN IMMEDIATE.
"""

from __future__ import annotations

import functools
import os
import random
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, Update, and_, bindparam, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.models import Delivery

LEASE = timedelta(minutes=5)
# 30 s doubling to 6 h: the last of 12 attempts comes 7-15 hours after the first.
MAX_ATTEMPTS = 12
FIRST_RETRY = timedelta(seconds=30)
LONGEST_RETRY = timedelta(hours=6)
HOLD = timedelta(minutes=5)


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
    # Not sent, through no fault of the delivery (the server refused the session): back to
    # the queue for `HOLD`, its attempt given back.
    HELD = "held"


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    result: Result
    error: str | None = None
    # A failure that was the recipient's own refusal (counts against their address).
    blames_reader: bool = False


@dataclass
class Summary:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    skipped: int = 0
    held: int = 0
    suspended: list[str] = field(default_factory=list)
    paused: str | None = None
    """Why sending paused (the server refused the session), if it did."""

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
    # One executemany takes rows of one shape: a post (channel_feed_id) and a DM (person_id)
    # queued together would leave a bind parameter unset. Rows are grouped by their columns
    # instead of padded with None, which would override the columns' defaults.
    shapes: dict[frozenset[str], list[dict[str, Any]]] = {}
    for row in rows:
        shapes.setdefault(frozenset(row), []).append(dict(row))
    connection = session.connection()
    # RETURNING counts what went in on both databases, where rowcount does not.
    return sum(len(connection.execute(statement, group).all()) for group in shapes.values())


def due(kinds: Iterable[str], now: datetime) -> Any:
    """Rows ready to send: pending and due, or claimed by a sender whose lease ran out."""
    return and_(
        col(Delivery.kind).in_(list(kinds)),
        or_(
            and_(col(Delivery.status) == Status.PENDING, col(Delivery.next_attempt_at) <= now),
            and_(col(Delivery.status) == Status.SENDING, col(Delivery.claimed_until) < now),
        ),
    )


_TABLE = Delivery.__table__  # type: ignore[attr-defined]
_CLAIMING = (
    update(_TABLE)
    .where(_TABLE.c.id.in_(bindparam("ids", expanding=True)))
    .values(attempts=_TABLE.c.attempts + 1)
)


def claim(
    engine: Engine,
    kinds: Iterable[str],
    worker: str,
    now: datetime,
    limit: int,
    lease: timedelta = LEASE,
) -> list[Delivery]:
    """Take up to `limit` due deliveries for this worker; each claim counts as an attempt.

    One UPDATE for the batch rather than the ORM's one per changed object; the objects
    returned are given the same values as loaded ones, without a second write.
    """
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
        claimed = {"status": Status.SENDING, "claimed_by": worker, "claimed_until": now + lease}
        session.execute(_CLAIMING.values(claimed), {"ids": [row.id for row in rows]})
        for row in rows:
            for name, value in claimed.items():
                set_committed_value(row, name, value)
            set_committed_value(row, "attempts", row.attempts + 1)
        return rows


def renew(
    engine: Engine, worker: str, ids: Iterable[int], now: datetime, lease: timedelta = LEASE
) -> set[int]:
    """Extend this worker's lease on the rows `ids` it still holds; returns those it holds.

    A batch can take longer to send than one lease (a rate limit, a slow relay): renewed
    while it is worked, no other sender takes its rows. A row missing from the answer was
    taken over (its lease ran out first) and must not be sent again by this worker.
    """
    wanted = [row for row in ids if row is not None]
    if not wanted:
        return set()
    statement = (
        update(_TABLE)
        .where(
            _TABLE.c.id.in_(bindparam("ids", expanding=True)),
            _TABLE.c.claimed_by == worker,
            _TABLE.c.status == Status.SENDING,
        )
        .values(claimed_until=now + lease)
        .returning(_TABLE.c.id)
    )
    with writing(engine).begin() as connection:
        return set(connection.execute(statement, {"ids": wanted}).scalars())


def backoff(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Exponential, capped, with jitter so senders retrying together spread out."""
    ceiling = min(LONGEST_RETRY, FIRST_RETRY * 2 ** max(0, attempts - 1))
    return ceiling * (rng or random).uniform(0.5, 1.0)


# Built once: making a statement costs as much as running it, and settle runs all the time.
# Whether this worker still holds a row is checked on the rows read, not in the query: there,
# SQLite (without statistics) searched the due index for every row being sent and filtered
# the ids out of them, a third of a settle's time; by ids alone it looks up primary keys.
_HELD = select(
    _TABLE.c.id,
    _TABLE.c.attempts,
    _TABLE.c.subscriber_id,
    (_TABLE.c.claimed_by == bindparam("worker")) & (_TABLE.c.status == Status.SENDING),
).where(_TABLE.c.id.in_(bindparam("ids", expanding=True)))


@functools.cache
def _settling(names: tuple[str, ...]) -> Update:
    """The update that sets `names` (besides releasing the claim) on the row `row`."""
    return (
        update(_TABLE)
        .where(_TABLE.c.id == bindparam("row"))
        .values(
            claimed_by=None,
            claimed_until=None,
            **{name: bindparam(name) for name in names if name != "row"},
        )
    )


def settle(
    engine: Engine,
    worker: str,
    outcomes: Sequence[Outcome],
    now: datetime,
    then: Callable[[Connection, list[tuple[int | None, Outcome]]], None] | None = None,
) -> None:
    """Record outcomes, only for rows this worker still holds (a lease may have been lost).

    `then` runs in the same transaction with (subscriber id, outcome) of each settled row, for
    what a kind of delivery records beside its status (an address's bounce count, say). Plain
    statements on a connection, not an ORM session (whose bookkeeping cost as much as the
    statements), and one executemany per kind of change: this runs for every mail sent, a
    group of them at a time.
    """
    if not outcomes:
        return
    by_id = {o.delivery_id: o for o in outcomes}
    with writing(engine).begin() as connection:
        held = connection.execute(_HELD, {"ids": list(by_id), "worker": worker}).all()
        changes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        settled = []
        for delivery_id, attempts, subscriber_id, still_held in held:
            if not still_held:
                continue
            outcome = by_id[delivery_id]
            values: dict[str, Any] = {"row": delivery_id, "last_error": outcome.error}
            if outcome.result is Result.SENT:
                values |= {"status": Status.SENT, "sent_at": now}
            elif outcome.result is Result.SKIPPED:
                values["status"] = Status.SKIPPED
            elif outcome.result is Result.HELD:
                values |= {
                    "status": Status.PENDING,
                    "attempts": attempts - 1,
                    "next_attempt_at": now + HOLD,
                }
            elif outcome.result is Result.RETRY and attempts < MAX_ATTEMPTS:
                values |= {"status": Status.PENDING, "next_attempt_at": now + backoff(attempts)}
            else:
                values["status"] = Status.FAILED
            changes.setdefault(tuple(values), []).append(values)
            settled.append((subscriber_id, outcome))
        for names, rows in changes.items():
            connection.execute(_settling(names), rows)
        if then is not None:
            then(connection, settled)


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
