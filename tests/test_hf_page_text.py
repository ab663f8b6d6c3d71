"""The Daily Papers page captured as text: the seed digest and its awkward cases."""

from __future__ import annotations

from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlparse

import pytest

from newsletter.sources import DigestError, parse_digest
from newsletter.sources.base import MAX_ABSTRACT_CHARS
from tests.conftest import NOW, SEED, seed_paragraphs

HEADER = "new\n\nGet trending papers in your email inbox!\n\nSubscribe\n\nDaily Papers\n\n"


def parse_text(text: str, now: datetime = NOW):
    return parse_digest(text.encode("utf-8"), "capture.txt", now)


def test_seed_yields_its_76_papers_with_titles_and_abstracts_exactly_as_written() -> None:
    paragraphs = seed_paragraphs()
    date_index = paragraphs.index("Sep 9")
    body = paragraphs[date_index + 1 :]

    digest = parse_digest(SEED.read_bytes(), str(SEED), NOW)

    assert digest.source_format == "hf-daily-page-text"
    assert len(digest.papers) == 76
    assert [p.title for p in digest.papers] == body[0::2]
    assert [p.abstract for p in digest.papers] == body[1::2]


def test_seed_titles_with_punctuation_survive() -> None:
    titles = {p.title for p in parse_digest(SEED.read_bytes(), "seed", NOW).papers}
    assert (
        "Fast & Slow Learning: Incorporating Synthetic Gradients in Neural Memory Controllers"
        in titles
    )
    assert "Can LLMs Learn by Teaching? A Preliminary Study" in titles
    assert any("++" in t for t in titles)


def test_year_is_the_latest_matching_date_not_after_ingest_and_the_record_says_so() -> None:
    digest = parse_digest(SEED.read_bytes(), "seed", NOW)
    assert digest.digest_date == date(2026, 9, 9)
    assert "no year" in digest.date_note
    assert "2026" in digest.date_note


def test_date_before_new_year_ingested_in_january_falls_in_the_previous_year() -> None:
    digest = parse_digest(SEED.read_bytes(), "seed", datetime(2027, 1, 3, tzinfo=UTC))
    assert digest.digest_date == date(2026, 9, 9)


def test_date_on_the_ingest_day_itself_is_this_year() -> None:
    digest = parse_digest(SEED.read_bytes(), "seed", datetime(2026, 9, 9, 8, tzinfo=UTC))
    assert digest.digest_date == date(2026, 9, 9)


def test_february_29_goes_back_to_the_last_leap_year() -> None:
    text = "Feb 29\n\nA Title\n\nAn abstract that is long enough to be one."
    assert parse_text(text).digest_date == date(2024, 2, 29)


def test_a_date_line_with_a_year_is_taken_as_written() -> None:
    text = "Sep 9, 2024\n\nA Title\n\nAn abstract."
    digest = parse_text(text)
    assert digest.digest_date == date(2024, 9, 9)
    assert "no year" not in digest.date_note


def test_an_impossible_date_is_refused_with_its_line() -> None:
    with pytest.raises(DigestError, match=r"capture.txt: line 3: 'Feb 30' is not a calendar date"):
        parse_text("Daily Papers\n\nFeb 30\n\nA Title\n\nAn abstract.")


def test_missing_page_chrome_is_fine() -> None:
    digest = parse_text("Sep 9\n\nA Title\n\nAn abstract.\n\nB Title\n\nB abstract.")
    assert [p.title for p in digest.papers] == ["A Title", "B Title"]


def test_windows_line_ends_read_like_unix_ones() -> None:
    text = (HEADER + "Sep 9\n\nA Title\n\nAn abstract.").replace("\n", "\r\n")
    digest = parse_text(text)
    assert [(p.title, p.abstract) for p in digest.papers] == [("A Title", "An abstract.")]


def test_papers_are_keyed_by_normalised_title_and_linked_to_an_arxiv_title_search() -> None:
    paper = parse_digest(SEED.read_bytes(), "seed", NOW).papers[1]
    assert paper.title.startswith("DrivAerNet++:")
    assert paper.arxiv_id is None
    assert paper.title_key.startswith("drivaernet a large scale multimodal car dataset")
    link = urlparse(paper.url)
    assert (link.netloc, link.path) == ("arxiv.org", "/search/")
    assert parse_qs(link.query) == {"query": [paper.title], "searchtype": ["title"]}


def test_title_without_abstract_at_the_end_names_its_line() -> None:
    text = HEADER + "Sep 9\n\nA Title\n\nAn abstract.\n\nLonely Title"
    with pytest.raises(DigestError) as caught:
        parse_text(text)
    assert str(caught.value).startswith(
        "capture.txt: line 15: title 'Lonely Title' has no abstract"
    )


def test_title_missing_its_abstract_in_the_middle_is_caught_where_the_pairs_go_wrong() -> None:
    abstract = "This abstract is a long paragraph. " * 20
    text = f"Sep 9\n\nFirst Title\n\nSecond Title\n\n{abstract}\n\nThird Title\n\nShort."
    with pytest.raises(DigestError, match=r"line 7: expected a title \(one line"):
        parse_text(text)


def test_an_abstract_of_megabytes_is_refused_with_its_line() -> None:
    text = f"Sep 9\n\nOK Title\n\nFine.\n\nHuge Title\n\n{'x' * 2_000_000}"
    with pytest.raises(DigestError) as caught:
        parse_text(text)
    assert "line 7" in str(caught.value)
    assert f"over the limit of {MAX_ABSTRACT_CHARS:,}" in str(caught.value)


def test_a_page_with_a_date_but_no_papers_is_refused_as_truncated() -> None:
    with pytest.raises(DigestError, match=r"line 9: no papers after the date line"):
        parse_text(HEADER + "Sep 9\n")


def test_control_characters_are_dropped_but_markup_and_mentions_stay_as_text() -> None:
    text = "Sep 9\n\n<b>Bold</b> @everyone\x00 \x1b[31mred\n\nAbstract with <script>x</script>."
    paper = parse_text(text).papers[0]
    assert paper.title == "<b>Bold</b> @everyone [31mred"
    assert paper.abstract == "Abstract with <script>x</script>."
