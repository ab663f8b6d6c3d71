"""Long untrusted text costs time in proportion to its length: no pattern rescans a run it failed
on. Each case runs at three sizes and prints the times (a doubling should about double them);
only the result is asserted, never the time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from newsletter.sources import DigestError, ParsedDigest, parse_digest
from newsletter.words import stems
from tests.conftest import DATA, NOW

LISTING = (DATA / "arxiv-rss-quant-ph-2025-04-28.xml").read_bytes()
GUID = b"oai:arXiv.org:2504.17830v1"
LINK = b"<link>https://arxiv.org/abs/2504.17830</link>"
SIZES = (10_000, 20_000, 40_000)


def timed(name: str, size: int, work: Callable[[], object]) -> object:
    started = time.perf_counter()
    try:
        result = work()
    except DigestError as err:
        result = err
    print(f"\n{name} at {size:,} characters: {time.perf_counter() - started:.4f} s")
    return result


def listing_with(old: bytes, new: bytes) -> Callable[[], ParsedDigest]:
    data = LISTING.replace(old, new, 1)
    return lambda: parse_digest(data, "long.xml", NOW)


@pytest.mark.parametrize("size", SIZES)
def test_a_long_guid_and_link_without_an_id_are_refused_in_one_pass(size: int) -> None:
    """The audit's case: 40 KB of letters in <guid> took 21.8 s, four times per doubling."""
    data = LISTING.replace(GUID, b"a" * size, 1).replace(LINK, b"<link>" + b"a" * size + b"</link>")
    err = timed("letters in guid and link", size, lambda: parse_digest(data, "long.xml", NOW))
    assert isinstance(err, DigestError)
    assert (err.where, err.message) == (
        "item 1",
        "expected an arXiv id in <guid>, <id> or <link>, found none",
    )


@pytest.mark.parametrize("size", SIZES)
def test_an_id_after_a_long_run_of_letters_and_digits_is_still_found(size: int) -> None:
    noise = b"a1-" * (size // 3)
    digest = timed("noise before the id", size, listing_with(GUID, noise + b":2504.17830v4"))
    assert isinstance(digest, ParsedDigest)
    assert (digest.papers[0].arxiv_id, digest.papers[0].version) == ("2504.17830", 4)


@pytest.mark.parametrize("size", SIZES)
def test_a_long_digit_run_is_no_id(size: int) -> None:
    digits = b"2504" * (size // 4)
    data = LISTING.replace(GUID, digits, 1).replace(LINK, b"<link>" + digits + b"</link>")
    err = timed("digits in guid and link", size, lambda: parse_digest(data, "long.xml", NOW))
    assert isinstance(err, DigestError) and err.where == "item 1"


@pytest.mark.parametrize("size", SIZES)
def test_a_description_of_blank_lines_without_an_abstract_marker_is_kept_whole(size: int) -> None:
    """The old line-start marker re-read the blank lines after every newline (0.6 s at 20,000)."""
    old = b"arXiv:2504.17830v1 Announce Type: new \nAbstract: "
    new = b"arXiv:2504.17830v1 Announce Type: new" + b"\n" * size + b"Abstract "
    digest = timed("blank lines in a description", size, listing_with(old, new))
    assert isinstance(digest, ParsedDigest)
    assert digest.papers[0].abstract.startswith(
        "arXiv:2504.17830v1 Announce Type: new\n\nAbstract We introduce a self-adjoint"
    )


@pytest.mark.parametrize("size", SIZES)
def test_a_creator_with_a_long_blank_run_splits_into_its_names(size: int) -> None:
    """`\\s+and\\s+` was tried from every blank of a run (0.6 s at 20,000)."""
    creator = b"<dc:creator>Radmir" + b" " * size + b"Kokoulin and Ada Lovelace</dc:creator>"
    digest = timed(
        "blanks in dc:creator",
        size,
        listing_with(b"<dc:creator>Radmir Kokoulin</dc:creator>", creator),
    )
    assert isinstance(digest, ParsedDigest)
    assert digest.papers[0].authors == ("Radmir Kokoulin", "Ada Lovelace")


@pytest.mark.parametrize("size", SIZES)
def test_a_long_capital_word_is_stemmed_in_one_pass(size: int) -> None:
    """The abbreviation test tried every split of a long capital word (0.55 s at 8,000)."""
    word = "A" * size + "a"
    assert timed("capital word for the stemmer", size, lambda: stems(word)) == [word.lower()]
    assert stems("LLMs and GPT4s") == ["llm", "and", "gpt4"]
