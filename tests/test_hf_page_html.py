"""The Daily Papers page as served (HTML): its data-props are read, on the real 2024-08-01 page.

The expected papers come from the page's `<article>` cards, which paperboy does not read, so
the two halves of the page check each other.
"""

from __future__ import annotations

import html
import re
from datetime import date

import pytest

from newsletter.sources import DigestError, parse_digest
from tests.conftest import DATA, NOW

PAGE = DATA / "hf-daily-papers-2024-08-01.html"
TEXT = PAGE.read_text(encoding="utf-8")
CARDS = [
    (arxiv_id, html.unescape(title))
    for arxiv_id, title in re.findall(
        r'<h3[^>]*><a href="/papers/([\d.]+)"[^>]*>([^<]*)</a></h3>', TEXT
    )
]


def parse(text: str):
    return parse_digest(text.encode("utf-8"), PAGE.name, NOW)


def test_the_page_is_told_from_its_content_and_dated_by_its_props() -> None:
    digest = parse(TEXT)
    assert digest.source_format == "hf-daily-papers-html"
    assert digest.digest_date == date(2024, 8, 1)
    assert digest.date_note.startswith("the page's date (2024-08-01T00:00:00.000Z")


def test_every_card_on_the_page_is_a_paper_in_the_same_order() -> None:
    papers = parse(TEXT).papers
    assert len(CARDS) == 13
    assert [(p.arxiv_id, p.title) for p in papers] == CARDS


def test_papers_keep_abstract_authors_upvotes_and_a_hugging_face_link() -> None:
    llama = parse(TEXT).papers[0]
    assert llama.abstract.startswith(
        "Modern artificial intelligence (AI) systems are powered by foundation models."
    )
    assert "\n" not in llama.abstract
    assert llama.authors[:2] == ("Abhimanyu Dubey", "Abhinav Jauhri")
    assert llama.upvotes == 94  # the vote count drawn on the card
    assert llama.url == "https://huggingface.co/papers/2407.21783"


def test_a_page_whose_markup_lost_the_props_is_refused_not_scraped() -> None:
    changed = TEXT.replace('data-target="DailyPapers"', 'data-target="PaperList"')
    with pytest.raises(
        DigestError, match=r"^hf-daily-papers-2024-08-01.html: line 1: an HTML page"
    ):
        parse(changed)


def test_a_page_cut_inside_the_props_is_refused_with_the_line_of_the_element() -> None:
    cut = TEXT[: TEXT.index('data-target="DailyPapers"') + 5_000]
    with pytest.raises(DigestError) as caught:
        parse(cut)
    line = TEXT[: TEXT.index('data-target="DailyPapers"')].count("\n") + 1
    assert (caught.value.where, caught.value.message) == (
        f"line {line}",
        "the DailyPapers element's tag does not end",
    )


def test_a_bad_entry_in_the_props_is_refused_with_its_json_path() -> None:
    broken = TEXT.replace(
        "&quot;id&quot;:&quot;2407.21705&quot;", "&quot;id&quot;:&quot;Tora&quot;"
    )
    with pytest.raises(DigestError) as caught:
        parse(broken)
    assert caught.value.where == "$.dailyPapers[1].paper.id"
