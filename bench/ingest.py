"""How fast digests go into the database: the seed, and a generated digest of its shape.

Ingest runs on every poll, so its cost per paper decides how large a backfill (months of
daily digests, an arXiv listing of hundreds of items) stays quick. Run by hand:

    python bench/ingest.py [--papers 10000] [--repeat 3]

Prints parse-only and full-ingest (parse + one SQLite transaction) rates, the re-ingest
("already ingested") path, the update path, and peak Python memory (tracemalloc).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.db import open_database  # noqa: E402
from newsletter.ingest import ingest_bytes  # noqa: E402
from newsletter.sources import parse_digest  # noqa: E402

SEED = ROOT / "seeds" / "000_c5e999339737264f.txt"
NOW = datetime(2026, 11, 25, tzinfo=UTC)
HEADER = "new\n\nDaily Papers\n\nSep 9"


def generate(papers: int, rng: random.Random, start: int = 0) -> list[str]:
    """`papers` unique title/abstract pairs, words and lengths drawn from the seed's papers."""
    seed = parse_digest(SEED.read_bytes(), "seed", NOW).papers
    title_words = [w for p in seed for w in p.title.split()]
    abstract_words = [w for p in seed for w in p.abstract.split()]
    pairs = []
    for number in range(start, start + papers):
        template = seed[number % len(seed)]
        title = " ".join(rng.choices(title_words, k=len(template.title.split()) - 1))
        abstract = " ".join(rng.choices(abstract_words, k=len(template.abstract.split())))
        pairs.append(f"Paper {number}: {title[:250]}\n\n{abstract}")
    return pairs


def capture(pairs: list[str]) -> bytes:
    return "\n\n".join([HEADER, *pairs]).encode()


def best_and_median(runs: list[float]) -> str:
    return f"best {min(runs):.3f} s, median {statistics.median(runs):.3f} s"


def timed(repeat: int, action: Callable[[], object]) -> list[float]:
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        action()
        runs.append(time.perf_counter() - began)
    return runs


def fresh_ingest(data: bytes, folder: Path, name: str) -> Callable[[], object]:
    """Each call ingests into a new database file, migrations included, as a first run does."""
    counter = iter(range(1_000_000))

    def action() -> object:
        engine = open_database(f"sqlite:///{folder / f'{name}-{next(counter)}.db'}")
        result = ingest_bytes(engine, data, name, NOW)
        engine.dispose()
        return result

    return action


def report(case: str, papers: int, data: bytes, runs: list[float]) -> float:
    rate = papers / min(runs)
    print(
        f"{case:<36} {papers:>7,} papers {len(data):>12,} bytes  "
        f"{best_and_median(runs)}  {rate:>10,.0f} papers/s"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(20260909)
    seed = SEED.read_bytes()
    pairs = generate(args.papers, rng)
    big = capture(pairs)
    half = args.papers // 2
    overlapping = capture(pairs[:half] + generate(args.papers - half, rng, start=args.papers))
    print(f"SQLite, Python {sys.version.split()[0]}, best of {args.repeat}, fresh database per run")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        report("seed: parse", 76, seed, timed(args.repeat, lambda: parse_digest(seed, "s", NOW)))
        seed_rate = report(
            "seed: full ingest", 76, seed, timed(args.repeat, fresh_ingest(seed, folder, "seed"))
        )
        report(
            "generated: parse",
            args.papers,
            big,
            timed(args.repeat, lambda: parse_digest(big, "g", NOW)),
        )
        big_rate = report(
            "generated: full ingest",
            args.papers,
            big,
            timed(args.repeat, fresh_ingest(big, folder, "big")),
        )
        tracemalloc.start()  # a run of its own: tracing slows Python several times over
        fresh_ingest(big, folder, "traced")()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()

        engine = open_database(f"sqlite:///{folder / 'shared.db'}")
        ingest_bytes(engine, big, "first", NOW)
        report(
            "generated again (already ingested)",
            args.papers,
            big,
            timed(args.repeat, lambda: ingest_bytes(engine, big, "again", NOW)),
        )
        began = time.perf_counter()
        result = ingest_bytes(engine, overlapping, "overlap", NOW)
        report("half known, half new", result.papers, overlapping, [time.perf_counter() - began])
        print(f"{'':<36} ({result.new:,} new, {result.papers - result.new:,} linked to known)")
        engine.dispose()
    print(f"peak Python memory (tracemalloc), {args.papers:,}-paper ingest: {peak / 2**20:.1f} MiB")
    print(
        f"seed: {seed_rate:,.0f} papers/s; generated {args.papers:,}: {big_rate:,.0f} papers/s "
        "(SQLite, full ingest)"
    )


if __name__ == "__main__":
    main()
