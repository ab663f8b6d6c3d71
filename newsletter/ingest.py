"""Store a digest in one transaction: the digest, its new or updated papers, and their links.

A digest whose content hash is already stored is skipped; a paper already stored (same arXiv
id, or same normalised title where no id is known) is updated in place and linked again.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from newsletter.completeness import fuller, looks_cut
from newsletter.db import writing
from newsletter.limits import check_row
from newsletter.models import Digest, DigestPaper, Paper
from newsletter.sources import DigestError, ParsedDigest, ParsedPaper, parse_digest

log = logging.getLogger(__name__)

_REPLACEMENTS = {"replace", "replace-cross"}
# Formats whose parsers refuse a document cut short (JSON, XML): their last abstract is whole
# whatever its ending looks like. A page capture is plain text and can be cut anywhere.
_STRICT_FORMATS = {"hf-daily-papers-json", "arxiv-rss", "arxiv-atom"}
_LOOKUP_CHUNK = 500


class Outcome(StrEnum):
    STORED = "stored"
    ALREADY = "already ingested"
    EMPTY = "empty"


@dataclass(frozen=True)
class IngestResult:
    origin: str
    outcome: Outcome
    digest_id: int | None = None
    source_format: str | None = None
    digest_date: date | None = None
    date_note: str | None = None
    papers: int = 0
    new: int = 0
    updated: int = 0
    warnings: tuple[str, ...] = ()
    """Stored, but worth a look: e.g. the capture's last abstract looks cut."""


def content_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def ingest_bytes(
    engine: Engine,
    data: bytes,
    origin: str,
    now: datetime | None = None,
    date_hint: date | None = None,
) -> IngestResult:
    """Parse and store one digest. Raises `DigestError` for bad input, having written nothing.

    `now` may be naive: paperboy keeps naive times in UTC (see models), never local time.
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    digest_hash = content_hash(data)
    with Session(engine) as session:
        existing = session.exec(select(Digest).where(Digest.content_hash == digest_hash)).first()
        if existing is not None:
            return _already(origin, existing)
    parsed = parse_digest(data, origin, now, date_hint)
    if not parsed.papers:
        log.info("digest %s is empty (%s): nothing stored", origin, parsed.source_format)
        return IngestResult(origin, Outcome.EMPTY, source_format=parsed.source_format)
    try:
        return _store(engine, parsed, origin, digest_hash, now.astimezone(UTC).replace(tzinfo=None))
    except IntegrityError:
        # Another process stored the same digest between our check and our commit.
        with Session(engine) as session:
            existing = session.exec(
                select(Digest).where(Digest.content_hash == digest_hash)
            ).first()
        if existing is None:
            raise
        return _already(origin, existing)


def _already(origin: str, digest: Digest) -> IngestResult:
    log.info("digest %s already ingested as digest %s", origin, digest.id)
    return IngestResult(
        origin,
        Outcome.ALREADY,
        digest_id=digest.id,
        source_format=digest.source_format,
        digest_date=digest.digest_date,
        date_note=digest.date_note,
        papers=digest.paper_count,
    )


def _unique_in_digest(papers: Iterable[ParsedPaper]) -> list[ParsedPaper]:
    """A digest that lists a paper twice links it once, at its first position."""
    seen: set[str] = set()
    unique = []
    for paper in papers:
        key = paper.arxiv_id or f"title:{paper.title_key}"
        if key not in seen:
            seen.add(key)
            unique.append(paper)
    return unique


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), _LOOKUP_CHUNK):
        yield values[start : start + _LOOKUP_CHUNK]


def _known_papers(
    session: Session, papers: list[ParsedPaper]
) -> tuple[dict[str, Paper], dict[str, Paper]]:
    """Stored papers by arXiv id and by title key, fetched in a few queries for the whole digest."""
    ids = sorted({p.arxiv_id for p in papers if p.arxiv_id})
    keys = sorted({p.title_key for p in papers})
    by_id: dict[str, Paper] = {}
    by_title: dict[str, Paper] = {}
    for chunk in _chunks(ids):
        for row in session.exec(select(Paper).where(col(Paper.arxiv_id).in_(chunk))):
            by_id[row.arxiv_id or ""] = row
    for chunk in _chunks(keys):
        query = select(Paper).where(col(Paper.title_key).in_(chunk)).order_by(col(Paper.id))
        for row in session.exec(query):
            # Prefer the title-only row: it is the one an arXiv id can be attached to.
            if row.title_key not in by_title or row.arxiv_id is None:
                by_title[row.title_key] = row
    return by_id, by_title


def _find(paper: ParsedPaper, by_id: dict[str, Paper], by_title: dict[str, Paper]) -> Paper | None:
    if paper.arxiv_id:
        if paper.arxiv_id in by_id:
            return by_id[paper.arxiv_id]
        row = by_title.get(paper.title_key)
        return row if row is not None and row.arxiv_id is None else None
    return by_title.get(paper.title_key)


def _merge(row: Paper, paper: ParsedPaper, now: datetime) -> bool:
    """Update a stored paper from a new sighting; True when anything changed.

    A replacement (RSS `replace`, or a higher version) overwrites the text; any other sighting
    only fills what is missing or repairs what was cut (a title or abstract it extends), so
    a poorer source never erases a richer one and a cut capture is not cut for good.
    """
    before = row.model_dump()
    newer = paper.announce_type in _REPLACEMENTS or (
        paper.version is not None and paper.version > (row.version or 0)
    )
    if paper.arxiv_id and row.arxiv_id is None:
        row.arxiv_id, row.url = paper.arxiv_id, paper.url
    if newer or fuller(row.title, paper.title):
        row.title, row.title_key = paper.title, paper.title_key
    if newer:
        row.version = paper.version or row.version
    if paper.abstract and (newer or not row.abstract or fuller(row.abstract, paper.abstract)):
        row.abstract = paper.abstract
    if paper.authors and (newer or not row.authors):
        row.authors = list(paper.authors)
    if paper.categories and (newer or not row.categories):
        row.categories = list(paper.categories)
    if paper.upvotes is not None:
        row.upvotes = paper.upvotes
    changed = row.model_dump() != before
    if changed:
        row.updated_at = now
    return changed


def _new_paper(paper: ParsedPaper, now: datetime) -> dict[str, Any]:
    return {
        "arxiv_id": paper.arxiv_id,
        "version": paper.version,
        "title": paper.title,
        "title_key": paper.title_key,
        "abstract": paper.abstract,
        "authors": list(paper.authors),
        "categories": list(paper.categories),
        "url": paper.url,
        "upvotes": paper.upvotes,
        "first_seen_at": now,
        "updated_at": now,
    }


def _place(index: int, paper: ParsedPaper) -> str:
    name = paper.arxiv_id or repr(paper.title[:60])
    return f"paper {index} ({name})"


def _link(paper: ParsedPaper, position: int) -> dict[str, Any]:
    return {"position": position, "announce_type": paper.announce_type, "upvotes": paper.upvotes}


def _digest_row(parsed: ParsedDigest, origin: str, digest_hash: str) -> dict[str, Any]:
    return {
        "content_hash": digest_hash,
        "source_format": parsed.source_format,
        "origin": origin,
        "title": parsed.title,
        "digest_date": parsed.digest_date,
        "date_note": parsed.date_note,
    }


def _check_limits(
    parsed: ParsedDigest, papers: list[ParsedPaper], origin: str, digest_hash: str, now: datetime
) -> None:
    """Every value this digest would write, against its column, before any is written: a
    refusal names the field and the paper, the same on every database."""
    check_row(Digest, _digest_row(parsed, origin, digest_hash), "digest")
    for index, paper in enumerate(papers, start=1):
        where = _place(index, paper)
        check_row(Paper, _new_paper(paper, now), where)
        check_row(DigestPaper, _link(paper, index), where)


def _cut_warnings(parsed: ParsedDigest) -> tuple[str, ...]:
    """A capture saved or copied short ends mid-abstract: stored, but said, naming the paper."""
    if not parsed.papers or parsed.source_format in _STRICT_FORMATS:
        return ()
    last = parsed.papers[-1]
    if not looks_cut(last.abstract):
        return ()
    shown = repr(last.title[:80])
    return (
        f"paper {len(parsed.papers)} ({last.arxiv_id or shown}), the last, has an abstract "
        f"that looks cut ({last.abstract.split()[-1][-30:]!r} at its end): was the capture "
        "saved before the page ended? Ingesting the whole capture later repairs it",
    )


def _store(
    engine: Engine, parsed: ParsedDigest, origin: str, digest_hash: str, now: datetime
) -> IngestResult:
    """New papers and links go in as bulk inserts: building ORM objects cost more than SQL."""
    papers = _unique_in_digest(parsed.papers)
    try:
        _check_limits(parsed, papers, origin, digest_hash, now)
    except DigestError as problem:
        problem.origin = origin
        raise
    warnings = _cut_warnings(parsed)
    updated = 0
    with Session(writing(engine)) as session, session.begin():
        digest = Digest(**_digest_row(parsed, origin, digest_hash), paper_count=0, ingested_at=now)
        session.add(digest)
        by_id, by_title = _known_papers(session, papers)
        # One slot per linked paper, in digest order: a known row, or an index into `fresh`.
        slots: list[tuple[ParsedPaper, Paper | int]] = []
        fresh: list[dict[str, Any]] = []
        seen_rows: set[int] = set()
        for paper in papers:
            row = _find(paper, by_id, by_title)
            if row is None:
                slots.append((paper, len(fresh)))
                fresh.append(_new_paper(paper, now))
                continue
            if id(row) in seen_rows:
                continue  # an arXiv id and a bare title that turned out to be one paper
            seen_rows.add(id(row))
            updated += _merge(row, paper, now)
            slots.append((paper, row))
        session.flush()
        new_ids = (
            session.scalars(
                insert(Paper).returning(col(Paper.id), sort_by_parameter_order=True), fresh
            ).all()
            if fresh
            else []
        )
        links = [
            {
                "digest_id": digest.id,
                "paper_id": new_ids[target] if isinstance(target, int) else target.id,
            }
            | _link(paper, position)
            for position, (paper, target) in enumerate(slots, start=1)
        ]
        session.execute(insert(DigestPaper), links)
        digest.paper_count = len(slots)
        session.flush()
        digest_id = digest.id
        new = len(fresh)
    log.info(
        "digest %s stored as digest %s: %d papers, %d new, %d updated",
        origin,
        digest_id,
        len(slots),
        new,
        updated,
    )
    for warning in warnings:
        log.warning("digest %s: %s", origin, warning)
    return IngestResult(
        origin,
        Outcome.STORED,
        digest_id=digest_id,
        source_format=parsed.source_format,
        digest_date=parsed.digest_date,
        date_note=parsed.date_note,
        papers=len(slots),
        new=new,
        updated=updated,
        warnings=warnings,
    )
