"""arXiv RSS 2.0 listings and Atom API replies, written to FORMATS.md's description."""

from __future__ import annotations

from datetime import date

import pytest

from newsletter.sources import DigestError, parse_digest
from tests.conftest import DATA, NOW

RSS = DATA / "arxiv-rss-cs.LG.xml"
ATOM = DATA / "arxiv-atom-query.xml"


def parse_file(name: str):
    return parse_digest((DATA / name).read_bytes(), name, NOW)


def test_rss_yields_every_item_with_unversioned_ids_and_announce_types() -> None:
    digest = parse_file(RSS.name)
    assert digest.source_format == "arxiv-rss"
    assert digest.title == "cs.LG updates on arXiv.org"
    assert [(p.arxiv_id, p.version, p.announce_type) for p in digest.papers] == [
        ("2609.09159", 1, "new"),
        ("2609.09200", 1, "new"),
        ("2609.08811", 1, "cross"),
        ("2608.01234", 2, "replace"),
        ("hep-th/0601001", 3, "replace-cross"),
    ]


def test_rss_digest_date_is_the_channel_date_as_arxiv_wrote_it() -> None:
    assert parse_file(RSS.name).digest_date == date(2026, 9, 10)


def test_rss_abstract_is_the_text_after_the_abstract_marker_with_entities_decoded() -> None:
    paper = parse_file(RSS.name).papers[0]
    assert paper.abstract.startswith("We apply graph neural networks")
    assert "& compare" in paper.abstract
    assert "<1% loss" in paper.abstract
    assert "Announce Type" not in paper.abstract


def test_rss_creators_are_split_into_authors_and_categories_kept() -> None:
    paper = parse_file(RSS.name).papers[1]
    assert paper.authors == ("Ana Lopez", "Wei Zhang", "Priya Natarajan")
    assert paper.categories == ("cs.LG", "cs.CL")
    assert paper.title == "Scaling Laws for Sparse Mixture-of-Experts: A Replication & Extension"
    assert paper.url == "https://arxiv.org/abs/2609.09200"


def test_rss_channel_without_items_is_an_empty_digest() -> None:
    digest = parse_file("arxiv-rss-no-announcements.xml")
    assert digest.papers == []
    assert digest.digest_date == date(2026, 9, 12)


def test_atom_entries_have_unversioned_ids_versions_and_old_style_ids() -> None:
    digest = parse_file(ATOM.name)
    assert digest.source_format == "arxiv-atom"
    assert [(p.arxiv_id, p.version) for p in digest.papers] == [
        ("2401.01234", 2),
        ("2609.09200", 1),
        ("math/0211159", 1),
    ]


def test_atom_titles_with_line_breaks_and_double_spaces_are_collapsed() -> None:
    paper = parse_file(ATOM.name).papers[0]
    assert (
        paper.title == "Sparse Attention at Scale: Long-Context Transformers without Quadratic Cost"
    )
    assert paper.abstract.startswith("We show that a learned sparse attention pattern keeps the")
    assert "\n" not in paper.abstract
    assert paper.authors == ("Lena Fischer", "Omar Haddad")
    assert paper.url == "https://arxiv.org/abs/2401.01234"


def test_atom_error_reply_is_refused_with_the_api_message() -> None:
    with pytest.raises(DigestError) as caught:
        parse_file("arxiv-atom-error.xml")
    assert caught.value.where == "entry 1"
    assert "incorrect id format for 1234.12345" in caught.value.message


def test_truncated_feed_names_the_line_where_the_xml_broke() -> None:
    data = RSS.read_bytes()[:3000]
    with pytest.raises(DigestError) as caught:
        parse_digest(data, "cut.xml", NOW)
    assert caught.value.where.startswith("line ")
    assert "not well-formed XML" in caught.value.message


def test_item_without_any_arxiv_id_is_refused_by_position() -> None:
    feed = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        b"<item><title>No id</title><link>https://example.org/x</link></item>"
        b"</channel></rss>"
    )
    with pytest.raises(DigestError) as caught:
        parse_digest(feed, "feed.xml", NOW)
    assert str(caught.value).startswith("feed.xml: item 1: expected an arXiv id")


def test_xml_that_is_no_feed_is_refused() -> None:
    with pytest.raises(DigestError, match=r"expected an RSS 2\.0 or Atom feed"):
        parse_digest(b"<?xml version='1.0'?><html><body>hi</body></html>", "page.xml", NOW)


def test_a_garbled_encoding_declaration_is_refused_with_its_line() -> None:
    """Found by the property tests: feedparser alone crashed on a NUL in the declaration."""
    data = RSS.read_bytes().replace(b"encoding='UTF-8'", b"encoding='\x00UTF-8'", 1)
    with pytest.raises(DigestError, match=r"^garbled.xml: line 1: not well-formed XML"):
        parse_digest(data, "garbled.xml", NOW)


def test_a_feed_that_is_not_utf8_is_refused_with_its_line() -> None:
    data = RSS.read_bytes().replace(b"Jonas Berg", "Jonas Bérg".encode("latin-1"))
    with pytest.raises(DigestError, match=r"line \d+: invalid UTF-8"):
        parse_digest(data, "latin1.xml", NOW)
