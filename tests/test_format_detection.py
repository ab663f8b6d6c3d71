"""The format is told from the content; what is no digest at all gets one clear error."""

from __future__ import annotations

import pytest

from newsletter.sources import MAX_DIGEST_BYTES, MAX_MARKUP_BYTES, DigestError, parse_digest
from tests.conftest import DATA, NOW, SEED


@pytest.mark.parametrize(
    ("path", "source_format"),
    [
        (SEED, "hf-daily-page-text"),
        (DATA / "2026-08-21.json", "hf-daily-papers-json"),
        (DATA / "arxiv-rss-cs.LG.xml", "arxiv-rss"),
        (DATA / "arxiv-atom-query.xml", "arxiv-atom"),
        (DATA / "hf-daily-papers-2024-08-01.html", "hf-daily-papers-html"),
        (DATA / "arxiv-rss-quant-ph-2025-04-28.xml", "arxiv-rss"),
    ],
)
def test_format_is_detected_whatever_the_file_is_called(path, source_format: str) -> None:
    assert parse_digest(path.read_bytes(), "no-extension", NOW).source_format == source_format


def test_a_utf8_byte_order_mark_is_ignored() -> None:
    data = b"\xef\xbb\xbf" + (DATA / "2025-03-03.json").read_bytes()
    assert len(parse_digest(data, "bom.json", NOW).papers) == 7


@pytest.mark.parametrize("data", [b"", b"   \n\n  "])
def test_an_empty_file_is_refused(data: bytes) -> None:
    with pytest.raises(DigestError, match=r"^empty.txt: line 1: empty file"):
        parse_digest(data, "empty.txt", NOW)


def test_prose_that_is_no_digest_is_refused() -> None:
    with pytest.raises(DigestError, match=r"^notes.md: line 1: not a digest"):
        parse_digest(b"# Meeting notes\n\nNothing to see here.\n", "notes.md", NOW)


def test_invalid_utf8_names_the_line_and_byte() -> None:
    data = SEED.read_bytes()
    broken = data[:2000] + b"\xff\xfe" + data[2000:]
    line = data[:2000].count(b"\n") + 1
    with pytest.raises(DigestError) as caught:
        parse_digest(broken, "seed.txt", NOW)
    assert str(caught.value) == f"seed.txt: line {line}: invalid UTF-8 (byte 0xff at offset 2000)"


def test_a_file_over_the_size_limit_is_refused_before_parsing() -> None:
    with pytest.raises(DigestError, match="over the digest size limit"):
        parse_digest(b"[" + b" " * MAX_DIGEST_BYTES + b"]", "big.json", NOW)


def test_a_feed_over_the_markup_limit_is_refused_before_any_xml_is_read() -> None:
    feed = (DATA / "arxiv-rss-quant-ph-2025-04-28.xml").read_bytes()
    padded = feed.replace(b"</channel>", b" " * MAX_MARKUP_BYTES + b"</channel>")
    with pytest.raises(
        DigestError, match=r"^big.xml: line 1: .* over the size limit of 16,777,216"
    ):
        parse_digest(padded, "big.xml", NOW)


def test_every_format_fits_its_column_and_has_a_name_for_readers() -> None:
    from newsletter.feeds import SOURCE_NAMES
    from newsletter.models import Digest
    from newsletter.sources import arxiv_feed, hf_daily_json, hf_page_html, hf_page_text

    formats = {
        hf_page_text.FORMAT,
        hf_daily_json.FORMAT,
        hf_page_html.FORMAT,
        arxiv_feed.RSS_FORMAT,
        arxiv_feed.ATOM_FORMAT,
        arxiv_feed.LISTING_ATOM_FORMAT,
    }
    limit = Digest.__table__.c.source_format.type.length
    assert {f for f in formats if len(f) > limit} == set()
    assert formats - set(SOURCE_NAMES) == set()
