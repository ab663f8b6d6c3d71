"""The Hugging Face `api/daily_papers` JSON: a list of entries, each with a nested `paper`.

Older days lack most fields; titles and summaries inside `paper` are hard-wrapped with
newlines and two-space indents, so both are unwrapped. Times are made aware UTC as they are
read: the API writes `Z`, and a time written without a zone is taken as UTC (the digest's
date note says so) rather than refusing the day or comparing naive with aware.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from newsletter.sources.base import (
    MAX_DB_INT,
    DigestError,
    ParsedDigest,
    ParsedPaper,
    checked_paper,
    collapse_spaces,
    split_arxiv_id,
    unwrap,
)

FORMAT = "hf-daily-papers-json"


class _Author(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str = ""
    hidden: bool = False


class _Paper(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    title: str
    summary: str = ""
    authors: list[_Author] = []
    upvotes: int | None = Field(default=None, ge=0, le=MAX_DB_INT)
    submittedOnDailyAt: datetime | None = None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    paper: _Paper
    summary: str | None = None
    publishedAt: datetime | None = None


_ENTRIES = TypeAdapter(list[_Entry])


def json_path(loc: tuple[int | str, ...], root: str = "$") -> str:
    return root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if type(value) in (int, float):
        shown = str(value)
        return shown if len(shown) <= 30 else f"a number of {len(shown):,} digits"
    return names.get(type(value), f"a {type(value).__name__}")


def _validate(data: object, root: str) -> list[_Entry]:
    try:
        return _ENTRIES.validate_python(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = json_path(tuple(first["loc"]), root)
        if first["type"] == "missing":
            message = "required field is missing"
        elif not first["loc"]:
            message = f"expected an array of daily-papers entries, found {_kind(data)}"
        else:
            message = f"{first['msg'][0].lower()}{first['msg'][1:]}, found {_kind(first['input'])}"
        raise DigestError(where, message) from None


def _utc(value: datetime, where: str) -> tuple[datetime, bool]:
    """The time in UTC, and whether it had no zone (then it is taken as UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC), True
    try:
        return value.astimezone(UTC), False
    except OverflowError:
        raise DigestError(where, f"time {value.isoformat()} is out of range in UTC") from None


def _latest(entries: list[_Entry], field: str, label: str) -> tuple[date, str] | None:
    times = []
    for index, entry in enumerate(entries):
        holder = entry.paper if field == "submittedOnDailyAt" else entry
        value = getattr(holder, field)
        if value is not None:
            where = f"$[{index}]" + (".paper" if holder is entry.paper else "") + f".{field}"
            times.append(_utc(value, where))
    if not times:
        return None
    latest = max(t for t, _ in times)
    naive = sum(1 for _, was_naive in times if was_naive)
    note = f" ({naive} without a time zone, taken as UTC)" if naive else ""
    return latest.date(), f"{label}{note}"


def digest_date(entries: list[_Entry], hint: date | None, now: datetime) -> tuple[date, str]:
    """The day the digest is for: HF stamps each entry with when it went on the daily page."""
    if hint is not None:
        return hint, "date given with the digest (the API's ?date=)"
    return (
        _latest(entries, "submittedOnDailyAt", "latest paper.submittedOnDailyAt of the entries")
        or _latest(entries, "publishedAt", "latest publishedAt of the entries (older API shape)")
        or (now.date(), "no dates in the digest: took the ingest date")
    )


def read_entries(data: object, root: str = "$") -> tuple[list[_Entry], list[ParsedPaper]]:
    """The entries and their papers from a decoded daily-papers array found at `root`."""
    entries = _validate(data, root)
    papers = []
    for index, entry in enumerate(entries):
        where = f"{root}[{index}].paper"
        found = split_arxiv_id(entry.paper.id, f"{where}.id", whole=True)
        if found is None:
            raise DigestError(
                f"{where}.id",
                f"expected an arXiv id like 2509.04664, found {entry.paper.id[:40]!r}",
            )
        arxiv_id, version = found
        papers.append(
            checked_paper(
                where,
                ParsedPaper(
                    title=collapse_spaces(entry.paper.title),
                    abstract=unwrap(entry.paper.summary or entry.summary or ""),
                    url=f"https://huggingface.co/papers/{arxiv_id}",
                    authors=tuple(
                        collapse_spaces(a.name)
                        for a in entry.paper.authors
                        if a.name and not a.hidden
                    ),
                    arxiv_id=arxiv_id,
                    version=version,
                    upvotes=entry.paper.upvotes,
                ),
            )
        )
    return entries, papers


def parse(text: str, now: datetime, hint: date | None = None) -> ParsedDigest:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        # A string running to the end is a cut-off file too: JSON strings cannot span lines.
        ended = not text[err.pos :].strip() or err.msg.startswith("Unterminated string")
        reason = "the document ends too early (truncated?)" if ended else err.msg
        where = f"line {err.lineno} column {err.colno}"
        raise DigestError(where, f"invalid JSON: {reason}") from None
    except RecursionError:
        raise DigestError("line 1", "invalid JSON: nested too deeply") from None
    except ValueError as err:  # an integer of over 4,300 digits
        raise DigestError("line 1", f"invalid JSON: {err}") from None
    entries, papers = read_entries(data)
    day, note = digest_date(entries, hint, now)
    return ParsedDigest(source_format=FORMAT, digest_date=day, date_note=note, papers=papers)
