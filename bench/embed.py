"""Semantic matching's cost: embedding a digest's papers, and similarity against many topics.

Embeds the papers of real days (title and abstract, as matching does) once with the
configured model (PAPERBOY_EMBEDDING_MODEL, default the int8 ONNX all-MiniLM-L6-v2), then
times the one matrix product of their vectors against T topic vectors (random unit vectors:
the cost depends on the shape only) with each paper's best topic. Run by hand:

    python bench/embed.py [--papers 1000] [--topics 5000] [DIGEST...]

(default digests: tests/data/labels/days; papers are cycled if the days hold fewer).
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.config import get_settings  # noqa: E402
from newsletter.embedding import load_embedder, normalise, paper_text  # noqa: E402
from newsletter.inbox import digest_files, read_digest  # noqa: E402
from newsletter.sources import parse_digest  # noqa: E402

NOW = datetime.now(UTC)


def texts(paths: list[str], wanted: int) -> list[str]:
    found: list[str] = []
    for name in digest_files(paths):
        digest = parse_digest(read_digest(name), name, NOW)
        found += [paper_text(p.title, p.abstract) for p in digest.papers]
        if len(found) >= wanted:
            break
    if not found:
        raise SystemExit("no papers in the digests given")
    return [found[i % len(found)] for i in range(wanted)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1_000)
    parser.add_argument("--topics", type=int, default=5_000)
    parser.add_argument("digests", nargs="*", default=[str(ROOT / "tests/data/labels/days")])
    args = parser.parse_args()
    embedder = load_embedder(get_settings().embedding_model)
    if embedder is None:
        raise SystemExit("no model: see PAPERBOY_EMBEDDING_MODEL")
    papers = texts(args.digests, args.papers)
    started = time.perf_counter()
    vectors = embedder.embed(papers)
    took = time.perf_counter() - started
    each = took / len(papers) * 1e3
    print(f"embedding: {len(papers):,} papers in {took:.2f} s ({each:.1f} ms each)")
    rng = np.random.default_rng(1)
    topics = normalise(rng.standard_normal((args.topics, embedder.dimension)).astype(np.float32))
    started = time.perf_counter()
    similarity = vectors @ topics.T
    best = similarity.argmax(axis=1)
    took = time.perf_counter() - started
    print(
        f"similarity: {len(papers):,} papers x {args.topics:,} topics in {took:.3f} s "
        f"(one product; best topic of paper 0: {int(best[0])})"
    )


if __name__ == "__main__":
    main()
