"""The Hugging Face `api/daily_papers` JSON: a list of entries, each with a nested `paper`.

Older days lack most fields; titles and summaries inside `paper` are hard-wrapped with
newlines and two-space indents, so both are unwrapped.
"""

from __future__ import annotations

import json
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from newsletter.sources.base import (
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
    upvotes: int | None = None
    submittedOnDailyAt: datetime | None = None


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    paper: _Paper
    summary: str | None = None
    publishedAt: datetime | None = None


_ENTRIES = TypeAdapter(list[_Entry])


def json_path(loc: tuple[int | str, ...]) -> str:
    return "$" + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def _kind(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), f"a {type(value).__name__}")


def _validate(data: object) -> list[_Entry]:
    try:
        return _ENTRIES.validate_python(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = json_path(tuple(first["loc"]))
        if first["type"] == "missing":
            message = "required field is missing"
        elif not first["loc"]:
            message = f"expected an array of daily-papers entries, found {_kind(data)}"
        else:
            message = f"{first['msg'][0].lower()}{first['msg'][1:]}, found {_kind(first['input'])}"
        raise DigestError(where, message) from None


def digest_date(entries: list[_Entry], hint: date | None, now: datetime) -> tuple[date, str]:
    """The day the digest is for: HF stamps each entry with when it went on the daily page."""
    if hint is not None:
        return hint, "date given with the digest (the API's ?date=)"
    daily = [e.paper.submittedOnDailyAt for e in entries if e.paper.submittedOnDailyAt]
    if daily:
        return max(daily).date(), "latest paper.submittedOnDailyAt of the entries"
    listed = [e.publishedAt for e in entries if e.publishedAt]
    if listed:
        return max(listed).date(), "latest publishedAt of the entries (older API shape)"
    return now.date(), "no dates in the digest: took the ingest date"


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
    entries = _validate(data)
    papers = []
    for index, entry in enumerate(entries):
        where = f"$[{index}].paper"
        found = split_arxiv_id(entry.paper.id, whole=True)
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
    day, note = digest_date(entries, hint, now)
    return ParsedDigest(source_format=FORMAT, digest_date=day, date_note=note, papers=papers)
