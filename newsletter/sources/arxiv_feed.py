"""arXiv listings: the daily RSS 2.0 and Atom feeds and the Atom replies of the query API.

All carry versioned ids; papers are keyed by the id without its version, and the version
and announce type are kept so a `replace` announcement updates the stored paper. The bytes
pass `xml_guard.check_xml` (no DTD, no entities, well-formed) before feedparser reads them.
"""

from __future__ import annotations

import re
import xml.sax
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import feedparser

from newsletter.sources.base import (
    DigestError,
    ParsedDigest,
    ParsedPaper,
    arxiv_abs_url,
    checked_paper,
    collapse_spaces,
    decode_utf8,
    split_arxiv_id,
    unwrap,
)
from newsletter.sources.xml_guard import check_xml, root_start

RSS_FORMAT = "arxiv-rss"
ATOM_FORMAT = "arxiv-atom"
LISTING_ATOM_FORMAT = "arxiv-atom-listing"
# Every pattern here runs on untrusted text, so none may rescan a run it failed on: the
# line-start marker allows no newline in its leading blanks (`\s*` there re-read every
# following blank line from every newline: quadratic), and " and " must start a blank run.
_ABSTRACT_MARK = re.compile(r"(?:^|\n)[^\S\n]*Abstract:\s*")
_LISTING_PREFIX = re.compile(r"\s*arXiv:\S+\s+Announce Type:[^\S\n]*\S*\s+Abstract:\s*")
_AUTHOR_SPLIT = re.compile(r",\s*|(?<!\s)\s+and\s+")
_LISTING_FEED_ID = "http://rss.arxiv.org/atom/"


def _feed_date(raw: str | None, where: str, label: str) -> date | None:
    """The date as the feed wrote it (arXiv stamps midnight US Eastern), not shifted to UTC.

    RFC 822 (RSS) or ISO 8601 (Atom); a date that is there but is neither, or is out of
    range (`0000-00-00`), is refused rather than guessed.
    """
    if not raw or not raw.strip():
        return None
    text = raw.strip()
    try:
        return parsedate_to_datetime(text).date()
    except (TypeError, ValueError, IndexError, OverflowError):
        pass
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        raise DigestError(
            where, f"{label} {text[:40]!r} is not a date (RFC 822 or ISO 8601)"
        ) from None


def _digest_date(feed: Any, entries: list[Any], item: str, now: datetime) -> tuple[date, str]:
    for key, tag, label in (
        ("published", "pubDate", "channel pubDate"),
        ("updated", "updated", "feed updated date"),
    ):
        found = _feed_date(feed.get(key), f"feed <{tag}>", label)
        if found:
            return found, label
    dated = [
        _feed_date(e.get("published"), f"{item} {n}", "published date")
        for n, e in enumerate(entries, start=1)
    ]
    dates = [d for d in dated if d]
    if dates:
        return max(dates), "latest entry date"
    return now.date(), "no dates in the feed: took the ingest date"


def _entry_id(entry: Any, where: str) -> tuple[str, int | None]:
    for candidate in (entry.get("id"), entry.get("link")):
        if candidate and (found := split_arxiv_id(candidate, where)):
            return found
    raise DigestError(where, "expected an arXiv id in <guid>, <id> or <link>, found none")


def _authors(entry: Any) -> tuple[str, ...]:
    names = [a.get("name", "") for a in entry.get("authors", [])]
    if len(names) == 1:  # RSS and the Atom listing put every author in one dc:creator
        names = _AUTHOR_SPLIT.split(names[0])
    return tuple(n for n in (collapse_spaces(n) for n in names) if n)


def _abstract(entry: Any) -> str:
    summary = entry.get("summary", "")
    if prefix := _LISTING_PREFIX.match(summary):
        return unwrap(summary[prefix.end() :])
    parts = _ABSTRACT_MARK.split(summary, maxsplit=1)
    return unwrap(parts[1] if len(parts) == 2 else summary)


def _paper(entry: Any, where: str) -> ParsedPaper:
    arxiv_id, version = _entry_id(entry, where)
    announce = entry.get("arxiv_announce_type")
    return checked_paper(
        where,
        ParsedPaper(
            title=collapse_spaces(entry.get("title", "")),
            abstract=_abstract(entry),
            url=arxiv_abs_url(arxiv_id),
            authors=_authors(entry),
            arxiv_id=arxiv_id,
            version=version,
            categories=tuple(t["term"] for t in entry.get("tags", []) if t.get("term")),
            announce_type=collapse_spaces(announce) if announce else None,
        ),
    )


def parse(data: bytes, now: datetime) -> ParsedDigest:
    # arXiv serves UTF-8. Saying so up front, as an HTTP header would, keeps feedparser from
    # trusting a garbled encoding declaration, on which it crashes (found by property tests).
    decode_utf8(data)
    check_xml(data)
    root = root_start(data)
    lines_before = data.count(b"\n", 0, root)
    result = feedparser.parse(
        data[root:],
        response_headers={"content-type": "application/xml; charset=utf-8"},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    problem = result.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXParseException):
        raise DigestError(
            f"line {problem.getLineNumber() + lines_before}",
            f"not well-formed XML: {problem.getMessage()}",
        )
    version = result.get("version", "")
    entries = result.entries
    if version.startswith("rss"):
        source_format, item = RSS_FORMAT, "item"
    elif version.startswith("atom"):
        source_format, item = ATOM_FORMAT, "entry"
        if str(result.feed.get("id", "")).startswith(_LISTING_FEED_ID) or any(
            e.get("arxiv_announce_type") for e in entries
        ):
            source_format = LISTING_ATOM_FORMAT
    else:
        raise DigestError("line 1", "expected an RSS 2.0 or Atom feed, found other XML")
    if (
        source_format == ATOM_FORMAT
        and len(entries) == 1
        and entries[0].get("title", "").strip() == "Error"
    ):
        raise DigestError(
            f"{item} 1", f"the arXiv API answered with an error: {entries[0].get('summary', '')!r}"
        )
    papers = [_paper(entry, f"{item} {n}") for n, entry in enumerate(entries, start=1)]
    day, note = _digest_date(result.feed, entries, item, now)
    title = collapse_spaces(result.feed.get("title", "")) or None
    return ParsedDigest(
        source_format=source_format, digest_date=day, date_note=note, papers=papers, title=title
    )
