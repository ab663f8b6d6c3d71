"""arXiv categories as evidence: `cat:` in queries, matched against what real feeds list."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from newsletter.ingest import ingest_bytes
from newsletter.matcher import CATEGORY_WEIGHT, DigestIndex
from newsletter.pipeline import latest_digest_id, match_query
from newsletter.query import QueryError, canonical, parse
from newsletter.sources import parse_digest
from newsletter.topics import CatalogueError, load_catalogue
from tests.conftest import DATA, NOW

FEED = DATA / "arxiv-rss-cs.LG.xml"


@pytest.fixture(scope="module")
def feed() -> tuple[list[str], DigestIndex]:
    papers = parse_digest(FEED.read_bytes(), FEED.name, NOW).papers
    index = DigestIndex([(p.title, p.abstract) for p in papers], [p.categories for p in papers])
    return [p.title for p in papers], index


def test_a_category_selects_the_papers_listed_in_it_and_says_so(
    feed: tuple[list[str], DigestIndex],
) -> None:
    titles, index = feed
    hits = index.match(parse("cat:cs.CL"))
    assert [titles[h.paper] for h in hits] == [
        "Scaling Laws for Sparse Mixture-of-Experts: A Replication & Extension"
    ]
    assert hits[0].terms == ("cat:cs.CL",)
    assert hits[0].score == CATEGORY_WEIGHT


def test_an_archive_selects_all_its_categories(feed: tuple[list[str], DigestIndex]) -> None:
    titles, index = feed
    hits = index.match(parse("cat:physics OR cat:hep-th"))
    assert sorted(titles[h.paper].split()[0] for h in hits) == ["Calibrated", "Renormalization"]


def test_a_category_adds_to_the_words_score(feed: tuple[list[str], DigestIndex]) -> None:
    titles, index = feed
    [hit] = index.match(parse('cat:hep-ex AND "particle tracking"'))
    assert titles[hit.paper].startswith("Graph Neural Networks for Charged Particle Tracking")
    assert hit.terms == ("particle tracking", "cat:hep-ex")
    assert hit.score > CATEGORY_WEIGHT


def test_categories_are_spelt_as_arxiv_does_whatever_the_query_wrote() -> None:
    assert canonical(parse("CAT:CS.cv OR vision")) == "(cat:cs.CV OR vision)"


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("vision OR cat:cs.XY", 11, "'cat:cs.XY' is no arXiv category"),
        ("cat:", 1, "'cat:' is no arXiv category"),
        ("title:cat:cs.CV", 7, "title: and cat: do not combine"),
    ],
)
def test_an_unknown_category_is_refused_where_it_stands(
    query: str, column: int, message: str
) -> None:
    with pytest.raises(QueryError) as caught:
        parse(query)
    assert caught.value.column == column
    assert message in caught.value.message


def test_a_catalogue_entry_with_an_unknown_category_is_refused_naming_file_topic_and_column(
    tmp_path: Path,
) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[[topic]]\nslug = "vision"\nname = "Vision"\nquery = "image OR cat:cs.VV"\n')
    with pytest.raises(CatalogueError, match=r"mine\.toml: topic 'vision': query: .*column 10"):
        load_catalogue(path)


def test_stored_papers_keep_their_categories_for_matching(engine: Engine) -> None:
    ingest_bytes(engine, FEED.read_bytes(), FEED.name, NOW)
    digest = latest_digest_id(engine)
    assert digest is not None
    hits = match_query(engine, digest, "cat:physics.ao-ph")
    assert [h.paper.title.split()[0] for h in hits] == ["Calibrated"]
    assert hits[0].terms == ("cat:physics.ao-ph",)
