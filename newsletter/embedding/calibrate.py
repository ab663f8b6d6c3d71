"""Fit the semantic side of matching on labelled papers: `python -m newsletter.embedding.calibrate`.

Reads the dev labels (arXiv ids and the days whose files hold them), leaves the held-out
days out (`quality.held_out_day`), embeds the other papers and writes what `semantic` loads:
`calibration.json` (model, weights, each labelled topic's threshold, the descriptions and
the example papers' titles and topics) and `examples.npy` (their vectors, float16).

The weights are chosen from a small grid, and each topic's threshold is the one that gives
the best F1 on these papers; a paper's vote leaves the paper itself out, so a paper is not
its own neighbour. Topics with fewer than 3 positives here keep the query alone.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlmodel import Session

from newsletter.config import get_settings
from newsletter.db import open_database
from newsletter.embedding import Embedder, load_embedder, paper_text
from newsletter.embedding.semantic import CALIBRATION, EXAMPLE_VECTORS
from newsletter.ingest import ingest_bytes
from newsletter.pipeline import _index, _papers
from newsletter.quality import MACRO_MIN_RELEVANT, held_out_day, load_labels
from newsletter.topics import catalogue, find_catalogue_topic

K = 10
GRID = [(desc, vote) for desc in (10.0, 20.0, 30.0) for vote in (3.0, 6.0, 10.0)]
HERE = Path(__file__).parent


@dataclass
class Papers:
    ids: list[str]
    titles: list[str]
    texts: list[str]
    query: np.ndarray
    """papers x catalogue topics: the query score (0 where the query does not select it)"""


def labelled_papers(paths: list[Path], held: bool) -> Papers:
    """The labelled papers of the days on the given side of the held-out split, with their
    query scores from the real parser and matcher."""
    topics = catalogue()
    found = Papers([], [], [], np.zeros((0, len(topics))))
    rows = []
    with tempfile.TemporaryDirectory(prefix="paperboy-calibrate-") as scratch:
        engine = open_database(f"sqlite:///{Path(scratch) / 'c.db'}")
        for path in paths:
            labels = load_labels(path)
            for number, day in enumerate(labels.days):
                if held_out_day(path.name, number) != held:
                    continue
                data = (path.parent / "days" / f"{day}.json").read_bytes()
                digest = ingest_bytes(engine, data, day).digest_id
                if digest is None:
                    continue
                with Session(engine) as session:
                    papers = [p for p in _papers(session, digest) if p.arxiv_id in labels.papers]
                index = _index(papers)
                scores = np.zeros((len(papers), len(topics)))
                for column, topic in enumerate(topics):
                    for hit in index.match(topic.node):
                        scores[hit.paper, column] = hit.score
                rows.append(scores)
                for paper in papers:
                    found.ids.append(str(paper.arxiv_id))
                    found.titles.append(paper.title)
                    found.texts.append(paper_text(paper.title, paper.abstract))
        engine.dispose()
    found.query = np.vstack(rows) if rows else found.query
    return found


def _labels(paths: list[Path]) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """slug -> arXiv ids labelled yes, and slug -> ambiguous ones, over all the files."""
    yes: dict[str, set[str]] = {}
    ambiguous: dict[str, set[str]] = {}
    for path in paths:
        for name, entry in load_labels(path).topics.items():
            topic = find_catalogue_topic(name)
            if topic is None:
                raise SystemExit(f"{path}: topic {name!r} is no catalogue topic")
            yes.setdefault(topic.slug, set()).update(entry.yes)
            ambiguous.setdefault(topic.slug, set()).update(entry.ambiguous)
    return yes, ambiguous


def _best_threshold(scores: np.ndarray, relevant: np.ndarray) -> tuple[float, float]:
    """The threshold (midway between two scores) that gives the best F1, and that F1."""
    order = np.argsort(-scores)
    right = np.cumsum(relevant[order])
    chosen = np.arange(1, len(scores) + 1)
    f1 = 2 * right / (chosen + relevant.sum())
    # Only cut between different scores: equal scores are taken together.
    distinct = np.append(scores[order][1:] != scores[order][:-1], True)
    f1 = np.where(distinct, f1, -1.0)
    best = int(f1.argmax())
    below = scores[order][best + 1] if best + 1 < len(scores) else scores[order][best] - 1
    return float((scores[order][best] + below) / 2), float(f1[best])


def fit(
    papers: Papers, vectors: np.ndarray, embedder: Embedder, yes: dict[str, set[str]], amb: dict
) -> dict[str, object]:
    entries = {t.slug: t for t in catalogue()}
    slugs = [s for s in yes if len(yes[s] & set(papers.ids)) >= MACRO_MIN_RELEVANT]
    columns = [list(entries).index(s) for s in slugs]
    descriptions = {s: f"{entries[s].name}: {entries[s].description}" for s in slugs}
    similarity = vectors @ embedder.embed([descriptions[s] for s in slugs]).T
    labelled = np.array([[i in yes[s] for s in slugs] for i in papers.ids])
    to_examples = vectors @ vectors.T
    np.fill_diagonal(to_examples, -np.inf)
    neighbours = np.argpartition(-to_examples, K - 1, axis=1)[:, :K]
    share = labelled[neighbours].mean(axis=1)
    best: tuple[float, float, float, dict[str, float]] | None = None
    for desc, vote in GRID:
        total = papers.query[:, columns] + desc * similarity + vote * share
        thresholds, f1s = {}, []
        for n, slug in enumerate(slugs):
            scored = np.array([i not in amb.get(slug, set()) for i in papers.ids])
            threshold, f1 = _best_threshold(total[scored, n], labelled[scored, n])
            thresholds[slug] = round(threshold, 2)
            f1s.append(f1)
        macro = float(np.mean(f1s))
        print(f"desc weight {desc:g}, vote weight {vote:g}: macro F1 {macro:.3f} on these papers")
        if best is None or macro > best[0]:
            best = (macro, desc, vote, thresholds)
    assert best is not None
    print(f"chosen: desc weight {best[1]:g}, vote weight {best[2]:g} ({best[0]:.3f})")
    return {
        "model": embedder.model_id,
        "k": K,
        "desc_weight": best[1],
        "vote_weight": best[2],
        "fit_macro_f1": round(best[0], 3),
        "thresholds": best[3],
        "descriptions": descriptions,
        "examples": [
            {"id": i, "title": t, "topics": [s for s in slugs if i in yes[s]]}
            for i, t in zip(papers.ids, papers.titles, strict=True)
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labels", nargs="+", type=Path, help="labels files (days/ beside them)")
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: here)")
    args = parser.parse_args()
    embedder = load_embedder(get_settings().embedding_model)
    if embedder is None:
        raise SystemExit("no model: see PAPERBOY_EMBEDDING_MODEL")
    papers = labelled_papers(args.labels, held=False)
    # Fitted on the vectors as they are shipped (float16), so what runs is what was fitted.
    vectors = embedder.embed(papers.texts).astype(np.float16).astype(np.float32)
    calibration = fit(papers, vectors, embedder, *_labels(args.labels))
    (args.out / CALIBRATION).write_text(json.dumps(calibration, indent=1, ensure_ascii=False))
    np.save(args.out / EXAMPLE_VECTORS, vectors.astype(np.float16))
    print(f"wrote {args.out / CALIBRATION} and {EXAMPLE_VECTORS}: {len(papers.ids)} examples")


if __name__ == "__main__":
    main()
