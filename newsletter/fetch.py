"""Digests polled over HTTP: each source URL fetched with a conditional GET and ingested.

What each URL last answered lives in `source_state`, so a poll downloads a document only when
the server says it changed. The validators (ETag, Last-Modified) are saved only once the body
was ingested: a body that failed to parse or store is fetched again next poll instead of being
hidden behind a 304 for good.

One source failing (refused, slow, an HTTP error, too big, malformed) is logged, kept in
`last_error` for `paperboy status`, and never stops the others. A body that fails to go in,
for any reason, is also a digest failure (`intake`): tried again after its backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from importlib.metadata import version

import aiohttp
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from newsletter.db import writing
from newsletter.ingest import IngestResult, Outcome
from newsletter.intake import take_digest
from newsletter.models import SourceState
from newsletter.sources import DigestError

log = logging.getLogger(__name__)

DATE_PLACEHOLDER = "{date}"
# A real day is under 1 MB; the cap keeps a runaway or hostile server from filling memory.
MAX_BODY_BYTES = 20 * 1024 * 1024
USER_AGENT = f"paperboy/{version('paperboy')} (research-paper digest service)"
# Each poll in flight may hold a whole body in memory; four keeps that bounded and is plenty
# for a handful of feeds.
_PARALLEL_POLLS = 4
_CHUNK_BYTES = 64 * 1024
_MAX_REASON_CHARS = 500


class FetchError(Exception):
    """A source that did not give us a digest to ingest; the message is the reason."""


@dataclass(frozen=True)
class _Target:
    url: str
    date_hint: date | None


@dataclass(frozen=True)
class _Validators:
    etag: str | None
    last_modified: str | None


@dataclass(frozen=True)
class _Fetched:
    body: bytes | None
    """None: not modified since the validators we sent."""
    validators: _Validators


def _expand(url: str, now: datetime) -> _Target:
    """The URL to request at `now`: `{date}` becomes the UTC date, which then also dates the
    digest (the HF API's `?date=` reply may hold papers submitted on other days)."""
    if DATE_PLACEHOLDER not in url:
        return _Target(url, None)
    day = now.date()
    return _Target(url.replace(DATE_PLACEHOLDER, day.isoformat()), day)


async def poll_urls(
    engine: Engine,
    urls: Sequence[str],
    now: datetime,
    *,
    http: aiohttp.ClientSession | None = None,
    timeout: float = 30.0,
) -> list[IngestResult]:
    """Poll every URL once (`now` is naive UTC) and ingest what changed.

    Returns the results of the URLs that answered 200 and were ingested, in the order given;
    a 304 or a failure gives nothing. An unexpected error (a bug, or the database failing even
    to record a failure) is raised, but only once every other URL has been polled.
    """
    targets = list({t.url: t for t in (_expand(url, now) for url in urls)}.values())
    limit = asyncio.Semaphore(_PARALLEL_POLLS)
    session = http or aiohttp.ClientSession()
    try:
        outcomes = await asyncio.gather(
            *(_poll(engine, session, target, now, timeout, limit) for target in targets),
            return_exceptions=True,
        )
    finally:
        if http is None:
            await session.close()
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return [outcome for outcome in outcomes if isinstance(outcome, IngestResult)]


async def _poll(
    engine: Engine,
    session: aiohttp.ClientSession,
    target: _Target,
    now: datetime,
    timeout: float,
    limit: asyncio.Semaphore,
) -> IngestResult | None:
    # The slot is held through the ingest too: that is what bounds the bodies held in memory.
    async with limit:
        try:
            known = await asyncio.to_thread(_validators, engine, target.url)
            fetched = await _get(session, target.url, known, timeout)
            if fetched.body is None:
                log.info("source %s: not modified", target.url)
                await asyncio.to_thread(
                    _record, engine, target.url, now, fetched.validators, changed=False
                )
                return None
            taken = await asyncio.to_thread(
                take_digest, engine, fetched.body, target.url, now, target.date_hint
            )
        except (FetchError, DigestError, aiohttp.ClientError, TimeoutError, SQLAlchemyError) as err:
            reason = _reason(err, timeout)
            log.warning("source %s failed: %s", target.url, reason)
            await asyncio.to_thread(_record_error, engine, target.url, now, reason)
            return None
        if taken.result is None:
            # take_digest has logged and recorded why; the source's row says it too.
            reason = taken.error or "failed"
            if taken.waiting is not None:
                again = taken.waiting.next_retry_at
                reason += f" (failed before: tried again after {again:%Y-%m-%d %H:%M} UTC)"
            await asyncio.to_thread(_record_error, engine, target.url, now, reason)
            return None
        result = taken.result
        changed = result.outcome is not Outcome.ALREADY
        # ingest_bytes has logged what the digest was; this only remembers the validators.
        await asyncio.to_thread(
            _record, engine, target.url, now, fetched.validators, changed=changed
        )
        return result


async def _get(
    session: aiohttp.ClientSession, url: str, known: _Validators, timeout: float
) -> _Fetched:
    headers = {"User-Agent": USER_AGENT}
    if known.etag:
        headers["If-None-Match"] = known.etag
    if known.last_modified:
        headers["If-Modified-Since"] = known.last_modified
    async with session.get(
        url, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
    ) as response:
        if response.status == 304:
            # A 304 may carry fresher validators; the old ones stand where it does not.
            fresher = _Validators(
                response.headers.get("ETag", known.etag),
                response.headers.get("Last-Modified", known.last_modified),
            )
            return _Fetched(None, fresher)
        if response.status != 200:
            raise FetchError(f"HTTP {response.status} {response.reason or ''}".rstrip())
        if (response.content_length or 0) > MAX_BODY_BYTES:
            raise FetchError(_too_big(f"{response.content_length:,} bytes"))
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise FetchError(_too_big("the body"))
        validators = _Validators(
            response.headers.get("ETag"), response.headers.get("Last-Modified")
        )
        return _Fetched(bytes(body), validators)


def _too_big(what: str) -> str:
    return f"{what} is over the {MAX_BODY_BYTES:,}-byte limit for a polled digest"


def _reason(err: Exception, timeout: float) -> str:
    """One line for the log and `last_error`; the URL is said by whoever prints it."""
    if isinstance(err, DigestError):
        return f"{err.where}: {err.message}"
    if isinstance(err, TimeoutError):
        return f"no complete answer within {timeout:g} s"
    text = " ".join(str(err).split())
    if not isinstance(err, FetchError):
        text = f"{type(err).__name__}: {text}"
    # Database errors quote their SQL and parameters: the gist is enough for a status line.
    return text if len(text) <= _MAX_REASON_CHARS else text[: _MAX_REASON_CHARS - 1] + "…"


def _validators(engine: Engine, url: str) -> _Validators:
    with Session(engine) as session:
        state = session.get(SourceState, url)
    if state is None:
        return _Validators(None, None)
    return _Validators(state.etag, state.last_modified)


def _state(session: Session, url: str) -> SourceState:
    return session.get(SourceState, url) or SourceState(url=url)


def _record(
    engine: Engine, url: str, now: datetime, validators: _Validators, *, changed: bool
) -> None:
    """A successful poll; `changed_at` moves only when the source gave a digest not seen
    before, so a server that ignores conditional GETs does not look ever-changing."""
    with Session(writing(engine)) as session, session.begin():
        state = _state(session, url)
        state.etag, state.last_modified = validators.etag, validators.last_modified
        state.checked_at, state.last_error = now, None
        if changed:
            state.changed_at = now
        session.add(state)


def _record_error(engine: Engine, url: str, now: datetime, reason: str) -> None:
    with Session(writing(engine)) as session, session.begin():
        state = _state(session, url)
        state.checked_at, state.last_error = now, reason
        session.add(state)
