"""The Hugging Face Daily Papers page as served (`huggingface.co/papers?date=`), HTML.

The page is server-rendered Svelte: the element with `data-target="DailyPapers"` carries its
component's props as HTML-escaped JSON in `data-props`, `{"date": ..., "dailyPapers": [...]}`,
whose entries have the `api/daily_papers` shape. The props are read; the `<article>` cards
drawn from them are not, since the markup changes more often than the data. Only that one
start tag goes through `html.parser` (whose handling of a whole page of hostile markup is
not linear in every Python release): it is found by plain string search.
"""

from __future__ import annotations

import contextlib
import json
from datetime import datetime
from html.parser import HTMLParser

from newsletter.sources.base import DigestError, ParsedDigest
from newsletter.sources.hf_daily_json import read_entries

FORMAT = "hf-daily-papers-html"
_MARKER = 'data-target="DailyPapers"'


class _FirstTag(HTMLParser):
    """Reads the attributes of the start tag the text begins with, and stops there."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attributes: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.attributes is None:
            self.attributes = dict(attrs)
            raise _Found


class _Found(Exception):
    pass


def _props_tag(text: str) -> tuple[int, dict[str, str | None]]:
    at = text.find(_MARKER)
    start = text.rfind("<", 0, at) if at >= 0 else -1
    if start < 0:
        raise DigestError(
            "line 1",
            "an HTML page without the Daily Papers data (no element with "
            'data-target="DailyPapers"): not a Daily Papers page, or its markup changed',
        )
    reader = _FirstTag()
    with contextlib.suppress(_Found):
        reader.feed(text[start:])
    line = text.count("\n", 0, start) + 1
    if reader.attributes is None:
        raise DigestError(f"line {line}", "the DailyPapers element's tag does not end")
    return line, reader.attributes


def parse(text: str, now: datetime) -> ParsedDigest:
    line, attributes = _props_tag(text)
    raw = attributes.get("data-props")
    if not raw:
        raise DigestError(f"line {line}", "the DailyPapers element has no data-props")
    try:
        props = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise DigestError(f"line {line}", f"data-props is not JSON: {err}") from None
    if not isinstance(props, dict) or "dailyPapers" not in props:
        raise DigestError(f"line {line}", "data-props has no dailyPapers list")
    _, papers = read_entries(props["dailyPapers"], "$.dailyPapers")
    day = props.get("date")
    try:
        shown = datetime.fromisoformat(day) if isinstance(day, str) else None
    except ValueError:
        shown = None
    if shown is None:
        raise DigestError("$.date", f"expected the page's date, found {str(day)[:40]!r}")
    return ParsedDigest(
        source_format=FORMAT,
        digest_date=shown.date(),
        date_note=f"the page's date ({day}, data-props of line {line})",
        papers=papers,
    )
