"""arXiv's listing feed as Atom (`rss.arxiv.org/atom/<cat>`, FORMATS.md section 5).

No capture of this feed is among the samples, so the real quant-ph RSS listing of 28 April
2025 (81 items) is written here into the Atom elements arXiv documents for that feed (its
"ATOM feed Specifications": feed id/title/updated/link/subtitle; entry id, title, updated,
link, summary, category, published, arxiv:announce_type, dc:rights, dc:creator). Both
renderings of the one day must give the same papers.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import date
from email.utils import parsedate_to_datetime

import pytest

from newsletter.sources import DigestError, parse_digest
from tests.conftest import DATA, NOW

RSS = DATA / "arxiv-rss-quant-ph-2025-04-28.xml"
ARXIV = "http://arxiv.org/schemas/atom"
DC = "http://purl.org/dc/elements/1.1/"
ATOM = "http://www.w3.org/2005/Atom"


def atom_listing(rss: bytes, items: int | None = None) -> bytes:
    """The RSS listing's channel and items as the Atom listing writes them."""
    for prefix, uri in (("", ATOM), ("arxiv", ARXIV), ("dc", DC)):
        ET.register_namespace(prefix, uri)
    channel = ET.fromstring(rss).find("channel")
    assert channel is not None
    feed = ET.Element(f"{{{ATOM}}}feed")

    def add(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> None:
        child = ET.SubElement(parent, tag if tag.startswith("{") else f"{{{ATOM}}}{tag}", attrs)
        child.text = text

    built = parsedate_to_datetime(channel.findtext("lastBuildDate", "")).isoformat()
    add(feed, "id", "http://rss.arxiv.org/atom/quant-ph")
    add(feed, "title", channel.findtext("title"))
    add(feed, "updated", built)
    add(feed, "link", href="http://rss.arxiv.org/atom/quant-ph", rel="self")
    add(feed, "subtitle", channel.findtext("description"))
    for item in channel.findall("item")[:items]:
        entry = ET.SubElement(feed, f"{{{ATOM}}}entry")
        add(entry, "id", item.findtext("guid"))
        add(entry, "title", item.findtext("title"))
        add(entry, "updated", built)
        add(entry, "link", href=item.findtext("link", ""), rel="alternate", type="text/html")
        add(entry, "summary", item.findtext("description"))
        for category in item.findall("category"):
            add(entry, "category", term=category.text or "")
        published = parsedate_to_datetime(item.findtext("pubDate", "")).isoformat()
        add(entry, "published", published)
        add(entry, f"{{{ARXIV}}}announce_type", item.findtext(f"{{{ARXIV}}}announce_type"))
        add(entry, f"{{{DC}}}rights", item.findtext(f"{{{DC}}}rights"))
        add(entry, f"{{{DC}}}creator", item.findtext(f"{{{DC}}}creator"))
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


LISTING = atom_listing(RSS.read_bytes())


def test_the_atom_listing_is_its_own_format_dated_by_the_feed() -> None:
    digest = parse_digest(LISTING, "quant-ph.atom", NOW)
    assert digest.source_format == "arxiv-atom-listing"
    assert digest.digest_date == date(2025, 4, 28)
    assert digest.title == "quant-ph updates on arXiv.org"


def test_the_atom_listing_gives_the_same_papers_as_the_rss_listing_of_that_day() -> None:
    from_rss = parse_digest(RSS.read_bytes(), "quant-ph.rss", NOW).papers
    from_atom = parse_digest(LISTING, "quant-ph.atom", NOW).papers
    assert len(from_atom) == 81
    assert from_atom == from_rss


def test_atom_listing_papers_carry_announce_types_versions_and_categories() -> None:
    papers = parse_digest(LISTING, "quant-ph.atom", NOW).papers
    kinds = [p.announce_type for p in papers]
    assert {k: kinds.count(k) for k in set(kinds)} == {
        "new": 40,
        "cross": 10,
        "replace": 22,
        "replace-cross": 9,
    }
    first = papers[0]
    assert (first.arxiv_id, first.version) == ("2504.17830", 1)
    assert first.title == "Self-Adjoint Time Operator in a Weighted Energy Space"
    assert first.abstract.startswith("We introduce a self-adjoint time operator")
    assert first.authors == ("Radmir Kokoulin",)
    assert "quant-ph" in first.categories


def test_an_atom_listing_day_without_announcements_is_an_empty_digest() -> None:
    digest = parse_digest(atom_listing(RSS.read_bytes(), items=0), "empty.atom", NOW)
    assert (digest.source_format, digest.papers) == ("arxiv-atom-listing", [])
    assert digest.digest_date == date(2025, 4, 28)


def test_an_atom_listing_entry_without_an_id_is_known_by_its_link() -> None:
    taken = LISTING.replace(b"<id>oai:arXiv.org:2504.17837v1</id>", b"<id>pending</id>", 1)
    assert parse_digest(taken, "quant-ph.atom", NOW).papers[1].arxiv_id == "2504.17837"


def test_an_atom_listing_entry_with_no_id_anywhere_names_the_entry() -> None:
    broken = LISTING.replace(b"<id>oai:arXiv.org:2504.17837v1</id>", b"<id>pending</id>", 1)
    broken = broken.replace(b'href="https://arxiv.org/abs/2504.17837"', b'href="pending"', 1)
    with pytest.raises(DigestError, match=r"^quant-ph.atom: entry 2: expected an arXiv id"):
        parse_digest(broken, "quant-ph.atom", NOW)
