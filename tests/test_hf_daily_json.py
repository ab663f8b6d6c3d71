"""The Hugging Face api/daily_papers JSON, on real captures of four API shapes."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from newsletter.sources import DigestError, parse_digest
from tests.conftest import DATA, NOW

SAMPLES = {
    "2024-05-27.json": 13,
    "2025-03-03.json": 7,
    "2025-09-09.json": 16,
    "2026-08-21.json": 17,
}


def parse_json(value: object, name: str = "day.json"):
    return parse_digest(json.dumps(value).encode(), name, NOW)


@pytest.mark.parametrize(("name", "count"), SAMPLES.items())
def test_each_real_capture_yields_every_entry_with_its_arxiv_id(name: str, count: int) -> None:
    raw = json.loads((DATA / name).read_text())
    digest = parse_digest((DATA / name).read_bytes(), name, NOW)
    assert digest.source_format == "hf-daily-papers-json"
    assert len(digest.papers) == count
    assert [p.arxiv_id for p in digest.papers] == [e["paper"]["id"] for e in raw]


@pytest.mark.parametrize("name", SAMPLES)
def test_digest_date_is_the_day_the_capture_was_taken_for(name: str) -> None:
    digest = parse_digest((DATA / name).read_bytes(), name, NOW)
    assert digest.digest_date == date.fromisoformat(Path(name).stem)


def test_a_date_given_with_the_download_wins() -> None:
    digest = parse_digest(b"[]", "api", NOW, date_hint=date(2025, 1, 6))
    assert digest.digest_date == date(2025, 1, 6)
    assert digest.papers == []


def test_hard_wrapped_titles_and_summaries_are_unwrapped() -> None:
    digest = parse_digest((DATA / "2024-05-27.json").read_bytes(), "d", NOW)
    first = digest.papers[0]
    assert first.title == (
        "ConvLLaVA: Hierarchical Backbones as Visual Encoder for Large Multimodal Models"
    )
    assert "\n" not in first.abstract
    assert first.abstract.startswith(
        "High-resolution Large Multimodal Models (LMMs) encounter the challenges of excessive"
    )


def test_authors_upvotes_and_link_are_kept() -> None:
    digest = parse_digest((DATA / "2025-09-09.json").read_bytes(), "d", NOW)
    first = digest.papers[0]
    assert first.upvotes == 62
    assert first.authors[:2] == ("Haozhe Wang", "Haoran Que")
    assert len(first.authors) == 12
    assert first.url == "https://huggingface.co/papers/2509.06160"


def test_hidden_authors_are_left_out() -> None:
    entry = {
        "paper": {
            "id": "2509.04664",
            "title": "T",
            "authors": [{"name": "Shown", "hidden": False}, {"name": "Hidden", "hidden": True}],
        }
    }
    assert parse_json([entry]).papers[0].authors == ("Shown",)


def test_entry_with_only_id_and_title_is_enough() -> None:
    paper = parse_json([{"paper": {"id": "2405.15738", "title": "Only a title"}}]).papers[0]
    assert (paper.arxiv_id, paper.title, paper.abstract, paper.upvotes) == (
        "2405.15738",
        "Only a title",
        "",
        None,
    )


def test_version_suffix_is_split_off_the_id() -> None:
    paper = parse_json([{"paper": {"id": "2405.15738v3", "title": "T"}}]).papers[0]
    assert (paper.arxiv_id, paper.version) == ("2405.15738", 3)


@pytest.mark.parametrize(
    ("value", "where", "what"),
    [
        ({"papers": []}, "$", "expected an array of daily-papers entries, found an object"),
        ([{"title": "no paper"}], "$[0].paper", "required field is missing"),
        ([{"paper": {"title": "T"}}], "$[0].paper.id", "required field is missing"),
        ([{"paper": {"id": "2405.15738", "title": None}}], "$[0].paper.title", "found null"),
        (
            [{"paper": {"id": "2405.15738", "title": "T", "authors": "Ann"}}],
            "$[0].paper.authors",
            "found a string",
        ),
        ([{"paper": {"id": "not-an-id", "title": "T"}}], "$[0].paper.id", "expected an arXiv id"),
        ([{"paper": {"id": "2405.15738", "title": "  "}}], "$[0].paper", "empty"),
    ],
)
def test_wrong_shape_names_the_json_path(value: object, where: str, what: str) -> None:
    with pytest.raises(DigestError) as caught:
        parse_json(value)
    assert caught.value.where == where
    assert what in caught.value.message
    assert str(caught.value).startswith(f"day.json: {where}: ")


def test_truncated_json_names_line_and_column() -> None:
    data = (DATA / "2025-03-03.json").read_bytes()[:5000]
    with pytest.raises(DigestError) as caught:
        parse_digest(data, "cut.json", NOW)
    assert caught.value.where.startswith("line ")
    assert caught.value.message == "invalid JSON: the document ends too early (truncated?)"


def test_broken_json_in_the_middle_says_what_the_parser_expected() -> None:
    with pytest.raises(DigestError) as caught:
        parse_digest(b'[{"paper": {"id": "2405.15738",, "title": "T"}}]', "bad.json", NOW)
    assert caught.value.where == "line 1 column 32"
    assert caught.value.message.startswith("invalid JSON: Expecting property name")
