"""Digests that failed, kept in `digest_failure`: which input, why, since when, and when the
inbox or the URL poller may try the same bytes again.

Any exception counts, not only a refusal (`DigestError`): a parser bug or a database that
refuses a row is one poison digest, and must cost one row here, not every later digest.
A failure is tried again after 5 minutes, doubling to a day: soon enough for a passing fault
(a locked database) or a fixed paperboy, rare enough that a bad file is not a log line every
poll. Changed bytes are a new digest and are tried at once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, or_
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.models import DigestFailure
from newsletter.sources import DigestError

FIRST_RETRY = timedelta(minutes=5)
LAST_RETRY = timedelta(days=1)
_MAX_ERROR_CHARS = 500


def naive_utc(moment: datetime) -> datetime:
    """The database's form of a time: UTC, no zone (a naive time is taken as UTC already)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def one_line(problem: BaseException) -> str:
    """What went wrong, on one line and short: a database error quotes its SQL and values."""
    if isinstance(problem, DigestError):
        text = f"{problem.where}: {problem.message}"
    elif isinstance(problem, DBAPIError) and problem.orig is not None:
        # The driver's own words, first line: SQLAlchemy's add the statement and its values.
        lines = str(problem.orig).strip().splitlines() or [""]
        text = f"database refused it: {type(problem.orig).__name__}: {lines[0]}"
    else:
        text = f"{type(problem).__name__}: {' '.join(str(problem).split())}".rstrip(": ")
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def backoff(attempts: int) -> timedelta:
    """How long after its `attempts`-th failure a digest waits for the next try."""
    return min(FIRST_RETRY * 2 ** min(attempts - 1, 20), LAST_RETRY)


def pending(engine: Engine, content_hash: str, now: datetime) -> DigestFailure | None:
    """The failure of these bytes, if they failed before and their next try is not due."""
    with Session(engine) as session:
        row = session.exec(
            select(DigestFailure).where(DigestFailure.content_hash == content_hash)
        ).first()
    return row if row is not None and row.next_retry_at > naive_utc(now) else None


def known(engine: Engine, content_hash: str) -> bool:
    with Session(engine) as session:
        query = select(DigestFailure.id).where(DigestFailure.content_hash == content_hash)
        return session.exec(query).first() is not None


def record(
    engine: Engine, origin: str, content_hash: str, error: str, now: datetime
) -> DigestFailure:
    """Count one more failure of these bytes from `origin`; an earlier failure of another
    version of the same input (a file since changed) is dropped, the newest says it all."""
    now = naive_utc(now)
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        session.execute(
            delete(DigestFailure).where(
                col(DigestFailure.origin) == origin, col(DigestFailure.content_hash) != content_hash
            )
        )
        row = session.exec(
            select(DigestFailure).where(DigestFailure.content_hash == content_hash)
        ).first()
        if row is None:
            row = DigestFailure(
                content_hash=content_hash,
                origin=origin,
                error=error,
                first_seen_at=now,
                last_seen_at=now,
                attempts=0,
                next_retry_at=now,
            )
        row.origin, row.error, row.last_seen_at = origin, error, now
        row.attempts += 1
        row.next_retry_at = now + backoff(row.attempts)
        session.add(row)
    return row


def clear(engine: Engine, origin: str, content_hash: str) -> int:
    """Forget the failures of an input that has now gone in; returns how many there were.
    Looked up first: most digests never failed, and a read costs no write lock."""
    matches = or_(
        col(DigestFailure.origin) == origin, col(DigestFailure.content_hash) == content_hash
    )
    with Session(engine) as session:
        if session.exec(select(DigestFailure.id).where(matches)).first() is None:
            return 0
    with Session(writing(engine)) as session, session.begin():
        result = session.execute(delete(DigestFailure).where(matches))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]


def listed(engine: Engine) -> list[DigestFailure]:
    """Every recorded failure, the most recent first."""
    with Session(engine) as session:
        query = select(DigestFailure).order_by(
            col(DigestFailure.last_seen_at).desc(), col(DigestFailure.id)
        )
        return list(session.exec(query))
