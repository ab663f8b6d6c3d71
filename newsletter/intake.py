"""One digest in, whatever happens: the steps every entry point runs on a digest (the inbox,
the URL poller, `paperboy ingest`, the demo), each digest standing alone.

Parse and store (`ingest`), then match and queue its posts (`pipeline.take_in`). Whatever
one digest raises, a refusal or a bug, is caught here, logged in one line and recorded in
`digest_failure`; the caller goes on with the next digest, so one poison digest never stops
the others, their matching, or the sources polled after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from newsletter import failures
from newsletter.ingest import IngestResult, Outcome, content_hash, ingest_bytes
from newsletter.models import DigestFailure
from newsletter.pipeline import TakenIn, take_in
from newsletter.sources import DigestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Intake:
    """What became of one digest: a result, or the one-line reason it failed."""

    origin: str
    result: IngestResult | None = None
    taken: TakenIn | None = None
    """Matched and queued: a newly stored digest, or one whose matching failed before."""
    error: str | None = None
    refused: bool = False
    """The error is the digest's (bad input, `DigestError`), not a fault of paperboy's."""
    unavailable: bool = False
    """The database could not be used (read-only, locked, full): nothing about the digest."""
    waiting: DigestFailure | None = None
    """Not tried: these bytes failed before and their next try is not due yet."""

    @property
    def stored(self) -> bool:
        return self.result is not None and self.result.outcome is Outcome.STORED


def take_digest(
    engine: Engine,
    data: bytes,
    origin: str,
    now: datetime,
    date_hint: date | None = None,
    *,
    retry_now: bool = False,
    quiet: bool = False,
) -> Intake:
    """Ingest, match and queue one digest; never raises for anything the digest causes.

    Bytes that failed before wait for their backoff unless `retry_now` (someone asked, as
    `paperboy ingest` does). A failure is logged unless `quiet` (a command that prints it
    itself). `now` may be naive (UTC) or aware.
    """
    digest_hash = content_hash(data)
    try:
        if not retry_now and (waiting := failures.pending(engine, digest_hash, now)):
            return Intake(origin, error=waiting.error, waiting=waiting)
        result = ingest_bytes(engine, data, origin, now, date_hint)
        taken = None
        if result.digest_id is not None and (
            result.outcome is Outcome.STORED or failures.known(engine, digest_hash)
        ):
            taken = take_in(engine, result.digest_id)
            log.info(
                "digest %d from %s: %d papers, %d topics matched, %d Discord deliveries queued",
                result.digest_id,
                origin,
                result.papers,
                taken.topics,
                taken.deliveries,
            )
        failures.clear(engine, origin, digest_hash)
        return Intake(origin, result, taken)
    except Exception as problem:
        return _failed(engine, origin, digest_hash, problem, now, quiet)


def _failed(
    engine: Engine, origin: str, digest_hash: str, problem: Exception, now: datetime, quiet: bool
) -> Intake:
    error = failures.one_line(problem)
    refused = isinstance(problem, DigestError)
    try:
        row = failures.record(engine, origin, digest_hash, error, now)
        again = f"try {row.attempts}, next after {row.next_retry_at:%Y-%m-%d %H:%M} UTC"
    except Exception as also:
        again = f"not recorded: {failures.one_line(also)}"
    what = "refused" if refused else "failed"
    (log.info if quiet else log.error)("digest %s %s: %s (%s)", origin, what, error, again)
    if not refused:
        log.debug("digest %s failed here", origin, exc_info=problem)
    unavailable = isinstance(problem, OperationalError)
    return Intake(origin, error=error, refused=refused, unavailable=unavailable)
