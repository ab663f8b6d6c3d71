"""The Hugging Face Daily Papers page captured as plain text.

Layout: page chrome, a date line such as `Sep 9` (no year), then title / abstract paragraphs
separated by blank lines. There are no ids or links, so papers are keyed by their normalised
title and linked to an arXiv title search.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime

from newsletter.sources.base import (
    DigestError,
    ParsedDigest,
    ParsedPaper,
    arxiv_title_search_url,
    checked_paper,
    strip_controls,
)

FORMAT = "hf-daily-page-text"

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DATE_LINE = re.compile(
    r"(?P<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?P<day>\d{1,2})"
    r"(?:,?\s+(?P<year>\d{4}))?",
    re.IGNORECASE,
)
# A title is one short line; anything longer is an abstract whose title went missing.
MAX_TITLE_LINE = 300
# How far into the page the date line may sit: the chrome is a handful of short lines.
MAX_CHROME_PARAGRAPHS = 30
# How many years back a month/day without a year may lie (Feb 29 needs up to eight).
_YEARS_BACK = 8


def paragraphs(text: str) -> Iterator[tuple[int, str]]:
    """Yield (first line number, paragraph) for each run of non-blank lines."""
    start, lines = 0, []
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            if not lines:
                start = number
            lines.append(line.rstrip())
        elif lines:
            yield start, "\n".join(lines)
            lines = []
    if lines:
        yield start, "\n".join(lines)


def find_date_line(paras: list[tuple[int, str]]) -> tuple[int, re.Match[str]] | None:
    """Index and match of the date paragraph, if the page chrome is followed by one."""
    for index, (_, para) in enumerate(paras[:MAX_CHROME_PARAGRAPHS]):
        if match := _DATE_LINE.fullmatch(para.strip()):
            return index, match
    return None


def resolve_date(line: int, match: re.Match[str], now: datetime) -> tuple[date, str]:
    """The digest date, inferring the year the page leaves out."""
    month = _MONTHS.index(match.group("month").lower()) + 1
    day = int(match.group("day"))
    shown = match.group(0)
    if match.group("year"):
        try:
            return date(int(match.group("year")), month, day), f"date line {shown!r} (line {line})"
        except ValueError:
            raise DigestError(f"line {line}", f"{shown!r} is not a calendar date") from None
    today = now.date()
    for year in range(today.year, today.year - _YEARS_BACK - 1, -1):
        try:
            candidate = date(year, month, day)
        except ValueError:
            continue
        if candidate <= today:
            note = (
                f"date line {shown!r} (line {line}) has no year: took {year}, the latest "
                f"{shown} not after the ingest date {today.isoformat()}"
            )
            return candidate, note
    raise DigestError(f"line {line}", f"{shown!r} is not a calendar date")


def parse(text: str, now: datetime) -> ParsedDigest:
    paras = list(paragraphs(text.replace("\r\n", "\n")))
    if not paras:
        raise DigestError("line 1", "empty file: expected a Daily Papers capture")
    found = find_date_line(paras)
    if found is None:
        # Only text that is neither JSON nor XML gets here, so this is the verdict for all formats.
        raise DigestError(
            "line 1",
            "not a digest: expected a daily-papers JSON array, an arXiv RSS/Atom feed, or a "
            "Daily Papers page capture (chrome, a date line like 'Sep 9', titles and abstracts)",
        )
    date_index, match = found
    date_line = paras[date_index][0]
    digest_date, note = resolve_date(date_line, match, now)
    body = paras[date_index + 1 :]
    if not body:
        raise DigestError(f"line {date_line}", "no papers after the date line (truncated?)")

    papers = []
    for index in range(0, len(body), 2):
        title_line, title = body[index]
        if "\n" in title or len(title) > MAX_TITLE_LINE:
            raise DigestError(
                f"line {title_line}",
                f"expected a title (one line of at most {MAX_TITLE_LINE} characters), found a "
                f"paragraph of {len(title):,} characters: is the title before it missing "
                "its abstract, or this paragraph's title missing?",
            )
        if index + 1 == len(body):
            raise DigestError(
                f"line {title_line}",
                f"title {title[:80]!r} has no abstract: the file ends after it (truncated?)",
            )
        abstract = body[index + 1][1]
        papers.append(
            checked_paper(
                f"line {title_line}",
                ParsedPaper(
                    title=strip_controls(title),
                    abstract=strip_controls(abstract),
                    url=arxiv_title_search_url(title),
                ),
            )
        )
    return ParsedDigest(
        source_format=FORMAT, digest_date=digest_date, date_note=note, papers=papers
    )
