"""How well the catalogue picks the papers people want: hand labels against real matching.

The digests go through the real pipeline (ingest, then `match_digest`) in a scratch SQLite
database, so what is measured is what a subscriber would get, not a re-implementation of it.
Two label formats are read: the shared dev sets (papers keyed by arXiv id, per topic `yes`
and `ambiguous` lists, the days whose digests hold them) and the seed's (papers by index and
title, per catalogue slug the indices that belong).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlmodel import Session, select

from newsletter.db import open_database
from newsletter.ingest import ingest_bytes
from newsletter.models import Paper
from newsletter.pipeline import match_digest
from newsletter.sources.base import title_key
from newsletter.topics import CatalogueTopic, find_catalogue_topic

# Topics with fewer relevant papers than this are shown but left out of the macro F1: one
# paper more or less swings their figures from 0 to 1.
MACRO_MIN_RELEVANT = 3
# The dev labels file whose every third day is held out: never fitted or tuned on.
HELD_OUT_FILE = "dev-hf-2.json"


def held_out_day(labels_name: str, day_index: int) -> bool:
    """The held-out part of the dev labels: days 2, 5, 8, ... of `dev-hf-2.json`'s `days`."""
    return labels_name == HELD_OUT_FILE and day_index % 3 == 2


class LabelsError(ValueError):
    """A labels file that cannot be read, with the file and the place."""


@dataclass(frozen=True)
class TopicLabels:
    yes: frozenset[str]
    ambiguous: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Labels:
    """Papers by key (arXiv id, or normalised title where the labels have no ids)."""

    by_arxiv_id: bool
    papers: dict[str, str]
    """key -> title"""
    topics: dict[str, TopicLabels]
    days: tuple[str, ...] = ()


def _key_error(path: Path, where: str, message: str) -> LabelsError:
    return LabelsError(f"{path}: {where}: {message}")


def load_labels(path: Path) -> Labels:
    """Either format, told from its keys; a file that is neither is refused with its path."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as problem:
        raise LabelsError(f"{path}: cannot read: {problem}") from None
    except json.JSONDecodeError as problem:
        raise LabelsError(f"{path}: line {problem.lineno}: invalid JSON: {problem.msg}") from None
    if not isinstance(data, dict):
        raise _key_error(path, "$", "expected an object with 'topics' or 'labels'")
    try:
        if "topics" in data:
            return Labels(
                by_arxiv_id=True,
                papers={str(k): str(v) for k, v in data["papers"].items()},
                topics={
                    name: TopicLabels(
                        frozenset(map(str, entry["yes"])),
                        frozenset(map(str, entry.get("ambiguous", []))),
                    )
                    for name, entry in data["topics"].items()
                },
                days=tuple(data.get("days", [])),
            )
        if "labels" in data:
            titles = {int(p["index"]): title_key(p["title"]) for p in data["papers"]}
            return Labels(
                by_arxiv_id=False,
                papers={title_key(p["title"]): p["title"] for p in data["papers"]},
                topics={
                    slug: TopicLabels(frozenset(titles[int(i)] for i in indices))
                    for slug, indices in data["labels"].items()
                },
            )
    except KeyError as missing:
        raise _key_error(path, f"key {missing}", "missing or naming no listed paper") from None
    except (TypeError, ValueError, AttributeError) as problem:
        raise _key_error(path, "$", f"unexpected shape: {problem}") from None
    raise _key_error(path, "$", "expected 'topics' (arXiv-id labels) or 'labels' (by title)")


@dataclass(frozen=True)
class Scores:
    chosen: int
    relevant: int
    right: int

    @property
    def precision(self) -> float:
        return self.right / self.chosen if self.chosen else 1.0

    @property
    def recall(self) -> float:
        return self.right / self.relevant if self.relevant else 1.0

    @property
    def f1(self) -> float:
        """0 when nothing right was chosen, including when nothing was chosen at all."""
        return 2 * self.right / (self.chosen + self.relevant) if self.right else 0.0

    @classmethod
    def of(cls, chosen: set[str], relevant: set[str]) -> Scores:
        return cls(len(chosen), len(relevant), len(chosen & relevant))


@dataclass(frozen=True)
class TopicReport:
    label: str
    slug: str | None
    """The catalogue topic the label names (by slug or name); None when there is none."""
    ours: Scores
    naive: Scores


@dataclass
class Report:
    topics: list[TopicReport]
    papers: int
    """Labelled papers found in the digests, the ones scored."""
    missing: list[str] = field(default_factory=list)
    """Labelled papers no digest held."""

    def macro(self, naive: bool = False) -> float:
        """Mean F1 over topics with at least `MACRO_MIN_RELEVANT` relevant papers."""
        counted = [t.naive if naive else t.ours for t in self.topics]
        counted = [s for s in counted if s.relevant >= MACRO_MIN_RELEVANT]
        return sum(s.f1 for s in counted) / len(counted) if counted else 0.0


def _key(paper: Paper, by_arxiv_id: bool) -> str | None:
    return paper.arxiv_id if by_arxiv_id else paper.title_key


def naive_choice(topic: CatalogueTopic, texts: dict[str, str]) -> set[str]:
    """The baseline: papers whose title or abstract holds the topic's key word as a substring."""
    word = topic.keyword.casefold()
    return {key for key, text in texts.items() if word in text}


def measure(labels: Labels, digests: Iterable[tuple[str, bytes]]) -> Report:
    """Ingest and match the digests in a scratch database; score every labelled topic."""
    chosen: dict[str, set[str]] = {}
    texts: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="paperboy-quality-") as scratch:
        engine = open_database(f"sqlite:///{Path(scratch) / 'quality.db'}")
        try:
            for origin, data in digests:
                result = ingest_bytes(engine, data, origin)
                if result.digest_id is None:
                    continue
                for matched in match_digest(engine, result.digest_id):
                    keys = {_key(hit.paper, labels.by_arxiv_id) for hit in matched.hits}
                    chosen.setdefault(matched.topic.slug or "", set()).update(
                        k for k in keys if k in labels.papers
                    )
            with Session(engine) as session:
                for paper in session.exec(select(Paper)):
                    key = _key(paper, labels.by_arxiv_id)
                    if key in labels.papers:
                        texts[key] = f"{paper.title}\n{paper.abstract}".casefold()
        finally:
            engine.dispose()
    if not texts:
        raise LabelsError("none of the labelled papers is in the digests given")
    reports = []
    for name, topic_labels in labels.topics.items():
        scored = set(texts) - topic_labels.ambiguous
        relevant = topic_labels.yes & scored
        entry = find_catalogue_topic(name)
        ours = chosen.get(entry.slug, set()) & scored if entry else set()
        naive = naive_choice(entry, texts) & scored if entry else set()
        reports.append(
            TopicReport(
                name,
                entry.slug if entry else None,
                Scores.of(ours, relevant),
                Scores.of(naive, relevant),
            )
        )
    missing = sorted(set(labels.papers) - set(texts))
    return Report(reports, len(texts), missing)
