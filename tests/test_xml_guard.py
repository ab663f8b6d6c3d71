"""Hostile XML is refused before anything expands it; what is left costs one linear pass.

Built on the real quant-ph listing (81 items). Times are printed, never asserted: the
refusal and its place are the specification, the milliseconds are the figure.
"""

from __future__ import annotations

import resource
import time

import pytest

from newsletter.sources import DigestError, parse_digest
from tests.conftest import DATA, NOW

LISTING = (DATA / "arxiv-rss-quant-ph-2025-04-28.xml").read_bytes()
DECLARATION, BODY = LISTING.split(b"?>", 1)
DECLARATION += b"?>"


def with_doctype(doctype: bytes, title: bytes = b"") -> bytes:
    """The real listing with a DOCTYPE after its declaration and, optionally, a channel title."""
    body = BODY
    if title:
        body = body.replace(b"<title>quant-ph updates on arXiv.org</title>", title, 1)
    return DECLARATION + b"\n" + doctype + body


def billion_laughs(references: int) -> bytes:
    """The audit's feed: one 50,000-character entity referenced `references` times."""
    entity = b'<!DOCTYPE rss [\n<!ENTITY e "' + b"x" * 50_000 + b'">\n]>'
    return with_doctype(entity, b"<title>" + b"&e;" * references + b"</title>")


def refusal(data: bytes) -> tuple[DigestError, float]:
    started = time.perf_counter()
    with pytest.raises(DigestError) as caught:
        parse_digest(data, "hostile.xml", NOW)
    return caught.value, time.perf_counter() - started


def test_an_entity_expansion_feed_is_refused_at_its_doctype_line() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    data = billion_laughs(20_000)
    err, seconds = refusal(data)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(
        f"\n{len(data) / 1024:.0f} KB entity feed refused in {seconds * 1000:.2f} ms, "
        f"peak memory grew {grown / 1024:.1f} MB (before: 15.7 s, 3.0 GB)"
    )
    assert str(err).startswith("hostile.xml: line 2: a DTD or entity declaration")
    assert "\n" not in str(err)


def test_a_doctype_without_entities_is_refused_too() -> None:
    err, _ = refusal(with_doctype(b"<!DOCTYPE rss>"))
    assert (err.where, "DTDForbidden" in err.message) == ("line 2", True)


def test_an_external_entity_is_refused_unread() -> None:
    doctype = b'<!DOCTYPE rss [\n<!ENTITY file SYSTEM "file:///etc/passwd">\n]>'
    err, _ = refusal(with_doctype(doctype, b"<title>&file;</title>"))
    assert err.where == "line 2"
    assert "root:" not in str(err)


def test_an_undeclared_entity_is_not_well_formed() -> None:
    err, _ = refusal(with_doctype(b"", b"<title>&e;</title>"))
    assert err.message == "not well-formed XML: undefined entity"
    assert err.where == "line 5"  # the title's line: the DOCTYPE's blank line comes first


def test_a_namespace_uri_with_a_next_line_character_is_refused_with_its_line() -> None:
    data = LISTING.replace(
        b'xmlns:dc="http://purl.org/dc/', 'xmlns:dc="http://purl.org/\u0085dc/'.encode()
    )
    err, _ = refusal(data)
    assert err.where == "line 2"
    assert err.message.startswith("namespace URI 'http://purl.org/\\x85dc/elements/1.1/'")


def test_an_empty_default_namespace_is_no_error() -> None:
    data = LISTING.replace(b"<skipDays>", b'<skipDays xmlns="">', 1)
    assert len(parse_digest(data, "listing.xml", NOW).papers) == 81


@pytest.mark.parametrize("blank_lines", [25_000, 50_000, 100_000])
def test_a_long_comment_before_the_root_costs_one_pass(blank_lines: int) -> None:
    """feedparser's entity search re-read every blank line before the root: 321 s at 200,000."""
    data = DECLARATION + b"\n<!--" + b"\n" * blank_lines + b"-->\n<?pi data?>" + BODY
    started = time.perf_counter()
    digest = parse_digest(data, "comment.xml", NOW)
    print(f"\n{blank_lines:,} blank lines before the root: {time.perf_counter() - started:.3f} s")
    assert len(digest.papers) == 81


def test_an_error_after_a_long_prolog_names_the_line_in_the_file() -> None:
    data = DECLARATION + b"\n<!--\n\n\n-->" + BODY.replace(b"</channel>", b"</chanel>", 1)
    err, _ = refusal(data)
    line = data[: data.index(b"</chanel>")].count(b"\n") + 1
    assert err.where == f"line {line}"


def test_an_unknown_encoding_name_in_the_declaration_is_read_as_the_utf8_it_is() -> None:
    """Found by a fuzz run: expat raised LookupError for `encoding='UTFnull-8'`."""
    data = LISTING.replace(b"encoding='UTF-8'", b"encoding='UTFnull-8'", 1)
    assert len(parse_digest(data, "listing.xml", NOW).papers) == 81
