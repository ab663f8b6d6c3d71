"""A Daily Papers capture cut short: stored with a warning naming the paper whose abstract
looks cut, and repaired when the whole capture (or any fuller sighting) comes later."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.completeness import fuller, looks_cut
from newsletter.ingest import ingest_bytes
from newsletter.models import Paper
from newsletter.sources import parse_digest
from tests.conftest import DATA, NOW, SEED
from tests.test_cli import Run, paperboy  # noqa: F401 (the fixture)

WHOLE = SEED.read_bytes()


def cut_in_the_abstract_of(paper: int) -> bytes:
    """The seed as if saved while loading: it stops inside paper `paper`'s abstract (1-based),
    mid-word, and the papers after it are missing."""
    text = WHOLE.decode()
    abstract = parse_digest(WHOLE, "seed", NOW).papers[paper - 1].abstract
    start = text.index(abstract)
    cut = start + len(abstract) // 2
    while text[cut - 1] == " " or text[cut] == " ":
        cut += 1  # in the middle of a word
    return text[:cut].encode()


def abstract_of(engine: Engine, title: str) -> str:
    with Session(engine) as session:
        return session.exec(select(Paper.abstract).where(Paper.title == title)).one()


def test_a_capture_cut_mid_abstract_is_stored_with_a_warning_naming_that_paper(
    engine: Engine,
) -> None:
    result = ingest_bytes(engine, cut_in_the_abstract_of(40), "cut.txt", NOW)
    title = parse_digest(WHOLE, "seed", NOW).papers[39].title
    assert result.papers == 40
    (warning,) = result.warnings
    assert warning.startswith(
        f"paper 40 ({title[:80]!r}), the last, has an abstract that looks cut"
    )


def test_the_whole_capture_later_repairs_the_cut_abstract(engine: Engine) -> None:
    ingest_bytes(engine, cut_in_the_abstract_of(40), "cut.txt", NOW)
    paper = parse_digest(WHOLE, "seed", NOW).papers[39]
    assert abstract_of(engine, paper.title) != paper.abstract
    whole = ingest_bytes(engine, WHOLE, "seed.txt", NOW)
    assert (whole.new, whole.updated) == (36, 1)
    assert abstract_of(engine, paper.title) == paper.abstract
    assert whole.warnings == ()


def test_a_cut_capture_after_the_whole_one_changes_nothing(engine: Engine) -> None:
    ingest_bytes(engine, WHOLE, "seed.txt", NOW)
    paper = parse_digest(WHOLE, "seed", NOW).papers[39]
    later = ingest_bytes(engine, cut_in_the_abstract_of(40), "cut.txt", NOW)
    assert later.updated == 0
    assert abstract_of(engine, paper.title) == paper.abstract


def test_a_fuller_title_from_a_later_sighting_replaces_a_cut_one(engine: Engine) -> None:
    day = json.loads((DATA / "2025-09-09.json").read_bytes())
    whole_title = " ".join(day[2]["paper"]["title"].split())
    cut = json.loads(json.dumps(day))
    cut[2]["paper"]["title"] = whole_title[: len(whole_title) // 2].rstrip() + "…"
    ingest_bytes(engine, json.dumps(cut).encode(), "cut.json", NOW)
    result = ingest_bytes(engine, json.dumps(day).encode(), "day.json", NOW)
    assert result.updated == 1
    with Session(engine) as session:
        stored = session.exec(select(Paper).where(Paper.arxiv_id == day[2]["paper"]["id"])).one()
    assert stored.title == whole_title


def test_paperboy_ingest_says_the_warning_then_reports_the_repair(
    paperboy: Run,  # noqa: F811 (the fixture from test_cli)
    tmp_path: Path,
) -> None:
    folder = tmp_path
    (folder / "cut.txt").write_bytes(cut_in_the_abstract_of(76))
    (folder / "whole.txt").write_bytes(WHOLE)
    first = paperboy("ingest", str(folder / "cut.txt"))
    assert first.returncode == 0
    assert "warning: paper 76" in first.stdout and "looks cut" in first.stdout
    second = paperboy("ingest", str(folder / "whole.txt"))
    assert "0 new, 1 updated" in second.stdout


def test_no_whole_real_capture_ends_in_a_cut_looking_abstract() -> None:
    """The warning must not cry wolf on real data: every shipped or test capture's last
    paper, and 96% or more of all their abstracts, read as whole."""
    papers = [
        parse_digest(path.read_bytes(), path.name, NOW).papers
        for path in [SEED, *sorted(DATA.glob("20*.json")), DATA / "arxiv-rss-cs.LG.xml"]
    ]
    assert not looks_cut(papers[0][-1].abstract)
    abstracts = [p.abstract for day in papers for p in day if p.abstract]
    whole = sum(not looks_cut(a) for a in abstracts) / len(abstracts)
    assert whole >= 0.96, f"{whole:.1%} of {len(abstracts)} real abstracts read as whole"


@pytest.mark.parametrize(
    ("stored", "new", "expected"),
    [
        ("We propose a meth", "We propose a method.", True),
        ("We propose a method…", "We propose a method that works.", True),
        ("We propose a method.", "We propose a method.", False),
        ("We propose a method.", "We propose", False),
        ("We study cats (and do", "We study cats (and dogs) closely.", True),
        ("A whole abstract.", "A different, longer abstract entirely.", False),
    ],
)
def test_fuller_means_going_on_where_the_stored_text_stops(
    stored: str, new: str, expected: bool
) -> None:
    assert fuller(stored, new) is expected
