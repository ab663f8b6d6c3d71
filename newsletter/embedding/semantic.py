"""Semantic evidence for catalogue topics, combined with the query's into one score.

A topic's semantic evidence is two numbers per paper, both from ONE matrix product of the
digest's paper vectors against the topic descriptions and the labelled example papers:

- the cosine similarity to the topic's description ("Name: description");
- the share of the paper's `k` nearest example papers that are labelled for the topic.

The combined score is `query score + desc_weight * similarity + vote_weight * share`, and a
paper matches a topic when it reaches that topic's threshold. Weights and thresholds were
fitted on labelled papers (never the held-out days) by `python -m
newsletter.embedding.calibrate`, for one model: a different model is refused, not mixed.
Topics without a calibrated threshold (people's own queries, unlabelled catalogue topics)
keep their query evidence alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

import numpy as np

from newsletter.embedding import SETTING, Embedder, load_embedder
from newsletter.matcher import LIKE, Hit

log = logging.getLogger(__name__)

CALIBRATION = "calibration.json"
EXAMPLE_VECTORS = "examples.npy"


@dataclass(frozen=True)
class Calibration:
    model: str
    k: int
    desc_weight: float
    vote_weight: float
    thresholds: dict[str, float]
    descriptions: dict[str, str]
    """slug -> the text its vector is made from"""
    titles: list[str]
    """the example papers' titles, in the order of their vectors"""
    topics: list[list[str]]
    """each example paper's topics (slugs)"""


@dataclass(frozen=True)
class Evidence:
    """A digest's semantic evidence: rows are papers, columns the calibrated topics."""

    slugs: list[str]
    similarity: np.ndarray
    share: np.ndarray
    nearest: np.ndarray
    """index (into the examples) of each paper's nearest example of each topic"""
    titles: list[str]
    desc_weight: float
    vote_weight: float


class TopicSpace:
    """The calibrated topics' description vectors and the labelled examples, for one model."""

    def __init__(self, embedder: Embedder, calibration: Calibration, examples: np.ndarray) -> None:
        self.embedder, self.calibration = embedder, calibration
        self.slugs = list(calibration.thresholds)
        descriptions = embedder.embed([calibration.descriptions[s] for s in self.slugs])
        # Descriptions first, then examples: one product gives both similarities.
        self.targets = np.vstack([descriptions, examples.astype(np.float32)])
        self.labelled = np.array(
            [[slug in topics for slug in self.slugs] for topics in calibration.topics], dtype=bool
        ).reshape(len(calibration.topics), len(self.slugs))

    def evidence(self, vectors: np.ndarray) -> Evidence:
        c = self.calibration
        sims = vectors @ self.targets.T
        width = len(self.slugs)
        similarity, to_examples = sims[:, :width], sims[:, width:]
        k = min(c.k, to_examples.shape[1])
        neighbours = np.argpartition(-to_examples, k - 1, axis=1)[:, :k]
        share = self.labelled[neighbours].mean(axis=1)
        masked = np.where(self.labelled[None, :, :], to_examples[:, :, None], -np.inf)
        nearest = masked.argmax(axis=1)
        return Evidence(
            self.slugs, similarity, share, nearest, c.titles, c.desc_weight, c.vote_weight
        )

    def threshold(self, slug: str | None) -> float | None:
        return self.calibration.thresholds.get(slug) if slug else None


def combine(
    hits: Sequence[Hit], evidence: Evidence, slug: str, threshold: float, papers: int
) -> list[Hit]:
    """The papers whose query score plus semantic evidence reach the topic's threshold, with
    the nearest example as a reason when the paper's neighbours include the topic's."""
    column = evidence.slugs.index(slug)
    by_paper = {hit.paper: hit for hit in hits}
    query = np.zeros(papers)
    for hit in hits:
        query[hit.paper] = hit.score
    share = evidence.share[:, column]
    total = (
        query + evidence.desc_weight * evidence.similarity[:, column] + evidence.vote_weight * share
    )
    found = []
    for paper in np.flatnonzero(total >= threshold):
        terms = by_paper[paper].terms if paper in by_paper else ()
        if share[paper] > 0 or not terms:
            terms = (*terms, LIKE + evidence.titles[evidence.nearest[paper, column]])
        found.append(Hit(int(paper), round(float(total[paper]), 1), terms))
    found.sort(key=lambda hit: (-hit.score, hit.paper))
    return found


@cache
def load_calibration() -> Calibration:
    data = json.loads(resources.files(__package__).joinpath(CALIBRATION).read_text())
    return Calibration(
        data["model"],
        int(data["k"]),
        float(data["desc_weight"]),
        float(data["vote_weight"]),
        {slug: float(t) for slug, t in data["thresholds"].items()},
        dict(data["descriptions"]),
        [e["title"] for e in data["examples"]],
        [list(e["topics"]) for e in data["examples"]],
    )


def _example_vectors() -> np.ndarray:
    with resources.as_file(resources.files(__package__).joinpath(EXAMPLE_VECTORS)) as path:
        return np.load(path)


@cache
def topic_space(model: str) -> TopicSpace | None:
    """The semantic side of matching for the model the setting names, or None (logged once,
    naming the setting) when there is no model or the calibration is for another one."""
    embedder = load_embedder(model)
    if embedder is None:
        return None
    calibration = load_calibration()
    if calibration.model != embedder.model_id:
        log.warning(
            "semantic matching off: %s gives model %s, the calibration is for %s "
            "(run python -m newsletter.embedding.calibrate)",
            SETTING,
            embedder.model_id,
            calibration.model,
        )
        return None
    return TopicSpace(embedder, calibration, _example_vectors())
