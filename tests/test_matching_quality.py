"""How well the catalogue picks the seed's papers, against hand labels and a naive baseline.

`tests/data/seed_topic_labels.json` says, for 9 catalogue topics, which of the seed's 76 papers
belong. The labels were written from the papers (title, then abstract where the title left it
open), not from query results. The table is printed at the end of the run whether or not the
tests pass, beside
the baseline the issue names: the topic's name as a case-insensitive substring.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from newsletter.matcher import DigestIndex
from newsletter.sources import parse_digest
from newsletter.topics import CatalogueTopic, catalogue
from tests.conftest import DATA, FIGURES, NOW, SEED

BAR = 0.85
AT_LEAST = 8


@dataclass(frozen=True)
class Figures:
    precision: float
    recall: float

    @classmethod
    def of(cls, chosen: set[int], wanted: set[int]) -> Figures:
        right = len(chosen & wanted)
        return cls(right / len(chosen) if chosen else 1.0, right / len(wanted))

    def passes(self) -> bool:
        return self.precision >= BAR and self.recall >= BAR

    def __str__(self) -> str:
        return f"P {self.precision:.2f}  R {self.recall:.2f}"


@pytest.fixture(scope="module")
def report() -> dict[str, tuple[Figures, Figures]]:
    """Per labelled topic: (catalogue, baseline) figures."""
    labels = json.loads((DATA / "seed_topic_labels.json").read_text())["labels"]
    papers = parse_digest(SEED.read_bytes(), "seed", NOW).papers
    index = DigestIndex([(p.title, p.abstract) for p in papers])
    texts = [f"{p.title}\n{p.abstract}".casefold() for p in papers]
    topics: dict[str, CatalogueTopic] = {t.slug: t for t in catalogue()}
    figures = {}
    for slug, wanted in labels.items():
        topic = topics[slug]
        chosen = {hit.paper for hit in index.match(topic.node, topic.min_score)}
        naive = {n for n, text in enumerate(texts) if topic.name.casefold() in text}
        figures[slug] = (Figures.of(chosen, set(wanted)), Figures.of(naive, set(wanted)))
    return figures


def test_at_least_eight_topics_are_labelled(
    report: dict[str, tuple[Figures, Figures]], record_property: Callable[[str, object], None]
) -> None:
    """Also hands the table to the run's summary (tests/conftest.py), before asserting
    anything, so it is printed whether or not the figures reach the bar."""
    lines = [f"{'topic':<28}{'catalogue':<18}{'naive substring':<18}"]
    lines += [f"{slug:<28}{ours!s:<18}{naive!s:<18}" for slug, (ours, naive) in report.items()]
    record_property(FIGURES, "\n".join(lines))
    assert len(report) >= AT_LEAST


def test_the_catalogue_reaches_the_bar_on_at_least_eight_labelled_topics(
    report: dict[str, tuple[Figures, Figures]],
) -> None:
    passing = [slug for slug, (ours, _) in report.items() if ours.passes()]
    failing = {slug: str(ours) for slug, (ours, _) in report.items() if not ours.passes()}
    assert len(passing) >= AT_LEAST, failing


def test_no_labelled_topic_misses_most_of_its_papers_or_floods_with_others(
    report: dict[str, tuple[Figures, Figures]],
) -> None:
    poor = {slug: str(ours) for slug, (ours, _) in report.items() if min(vars(ours).values()) < 0.7}
    assert poor == {}


def test_the_catalogue_beats_the_naive_substring_on_every_labelled_topic(
    report: dict[str, tuple[Figures, Figures]],
) -> None:
    def f1(figures: Figures) -> float:
        total = figures.precision + figures.recall
        return 2 * figures.precision * figures.recall / total if total else 0.0

    worse = [slug for slug, (ours, naive) in report.items() if f1(ours) <= f1(naive)]
    assert worse == []
