"""Digest formats -> `ParsedDigest`, the format told from the content, never the file name."""

from __future__ import annotations

from datetime import date, datetime

from newsletter.sources import arxiv_feed, hf_daily_json, hf_page_html, hf_page_text
from newsletter.sources.base import (
    MAX_DIGEST_BYTES,
    MAX_MARKUP_BYTES,
    DigestError,
    ParsedDigest,
    ParsedPaper,
    decode_utf8,
)

__all__ = [
    "MAX_DIGEST_BYTES",
    "MAX_MARKUP_BYTES",
    "DigestError",
    "ParsedDigest",
    "ParsedPaper",
    "parse_digest",
]


def _parse(data: bytes, now: datetime, date_hint: date | None) -> ParsedDigest:
    if len(data) > MAX_DIGEST_BYTES:
        raise DigestError(
            "line 1", f"{len(data):,} bytes is over the digest size limit of {MAX_DIGEST_BYTES:,}"
        )
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if not head:
        raise DigestError("line 1", "empty file: expected a digest")
    if head[:1] in (b"[", b"{"):
        return hf_daily_json.parse(decode_utf8(data), now, date_hint)
    if head[:1] == b"<" and len(data) > MAX_MARKUP_BYTES:
        raise DigestError(
            "line 1",
            f"{len(data):,} bytes is over the size limit of {MAX_MARKUP_BYTES:,} for an XML "
            "feed or HTML page",
        )
    if head[:14].lower() == b"<!doctype html" or head[:5].lower() == b"<html":
        return hf_page_html.parse(decode_utf8(data), now)
    if head[:1] == b"<":
        return arxiv_feed.parse(data, now)
    return hf_page_text.parse(decode_utf8(data), now)


def parse_digest(
    data: bytes, origin: str, now: datetime, date_hint: date | None = None
) -> ParsedDigest:
    """Parse one digest; every failure is a `DigestError` that names `origin` and the place."""
    try:
        return _parse(data, now, date_hint)
    except DigestError as err:
        err.origin = origin
        raise
