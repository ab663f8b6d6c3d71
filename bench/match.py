"""Matching at scale: many subscribers share few distinct queries, so cost must follow queries.

Builds a SQLite database with a generated 1,000-paper digest (the seed's shape), the topic
catalogue plus generated keyword queries (5,000 distinct in all) and 100,000 subscribers
with one to three subscriptions each, skewed so popular topics are shared. Then times
`match_digest` (every topic against every paper, matches stored) and `fan_out` (who gets
what, one query), and a naive loop that tests each subscriber's query against each paper,
re-tokenising the paper every time, on a sample, extrapolated. With --real, also real days
(files or folders of digests): every one matched with the catalogue, and the share of papers
each catalogue topic takes, which says whether a topic floods its readers. Run by hand:

    python bench/match.py [--papers 1000] [--queries 5000] [--subscribers 100000]
                          [--real ../shared/samples/hf-daily-papers-unlabelled]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine, insert
from sqlmodel import Session, select

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The keyword path: embedding costs are bench/embed.py's (1,000 generated papers would take
# most of a minute to embed and say nothing about matching).
os.environ.setdefault("PAPERBOY_EMBEDDING_MODEL", "none")

from ingest import capture, generate  # noqa: E402

from newsletter.db import open_database  # noqa: E402
from newsletter.inbox import digest_files, read_digest  # noqa: E402
from newsletter.ingest import ingest_bytes  # noqa: E402
from newsletter.models import Subscriber, Subscription, Topic  # noqa: E402
from newsletter.pipeline import fan_out, match_digest, papers_for  # noqa: E402
from newsletter.query import And, Category, Node, Not, Term, canonical, parse  # noqa: E402
from newsletter.topics import CATALOGUE_QUERY_CHARS, catalogue, sync_catalogue  # noqa: E402
from newsletter.words import stems  # noqa: E402

NOW = datetime(2026, 11, 25, tzinfo=UTC)


def keyword_queries(papers: list[tuple[str, str]], wanted: int, rng: random.Random) -> list[str]:
    """Queries over words that 0.2-2% of papers use: as selective as real keyword topics."""
    frequency = Counter(w for t, a in papers for w in set(t.lower().split() + a.lower().split()))
    low, high = max(1, len(papers) * 0.002), max(3, len(papers) * 0.02)  # tiny smoke runs too
    words = sorted(w for w, n in frequency.items() if low <= n <= high and w.isalpha())
    shapes = ("{a} OR {b}", '"{a} {b}" OR {c}', "title:{a} OR {b}", "{a} -{b}", "({a} OR {b}) {c}")
    queries: dict[str, str] = {}
    while len(queries) < wanted:
        a, b, c = rng.sample(words, 3)
        query = rng.choice(shapes).format(a=a, b=b, c=c)
        queries.setdefault(canonical(parse(query)), query)
    return list(queries.values())


def populate(engine: Engine, queries: list[str], subscribers: int, rng: random.Random) -> None:
    now = NOW.replace(tzinfo=None)
    with Session(engine) as session, session.begin():
        sync_catalogue(session)
        session.execute(
            insert(Topic),
            [
                {"name": q, "query": q, "canonical": canonical(parse(q)), "created_at": now}
                for q in queries
            ],
        )
    with Session(engine) as session, session.begin():
        topic_ids = list(session.exec(select(Topic.id)))
        session.execute(
            insert(Subscriber),
            [
                {
                    "email": f"reader{n}@example.org",
                    "timezone": "UTC",
                    "delivery_hour": 8,
                    "created_at": now,
                }
                for n in range(subscribers)
            ],
        )
        people = list(session.exec(select(Subscriber.id)))
        # Zipf-like: topic k is chosen in proportion to 1/(k+1), so a few are very popular.
        weights = [1 / (k + 1) for k in range(len(topic_ids))]
        links = []
        for person in people:
            chosen = set(rng.choices(topic_ids, weights, k=rng.randint(1, 3)))
            links.extend(
                {"subscriber_id": person, "topic_id": t, "created_at": now} for t in chosen
            )
        session.execute(insert(Subscription), links)


def naive_matches(node: Node, title: str, abstract: str) -> bool:
    """What a per-subscriber loop does: tokenise the paper again and walk the query."""
    title_words, all_words = stems(title), stems(title) + stems(abstract)

    def holds(n: Node) -> bool:
        if isinstance(n, Term):
            words = title_words if n.title_only else all_words
            size = len(n.words)
            return any(tuple(words[i : i + size]) == n.words for i in range(len(words)))
        if isinstance(n, Category):
            return False  # the generated papers are listed in none
        if isinstance(n, Not):
            return not holds(n.child)
        results = (holds(c) for c in n.children)
        return all(results) if isinstance(n, And) else any(results)

    return holds(node)


def real_days(paths: list[str]) -> None:
    """Real digests through ingest and match: time per paper, and each topic's share."""
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_database(f"sqlite:///{Path(tmp) / 'real.db'}")
        papers, spent, taken = 0, 0.0, Counter[str]()
        names = {entry.slug: entry.name for entry in catalogue()}
        for name in digest_files(paths):
            stored = ingest_bytes(engine, read_digest(name), name, NOW)
            if stored.digest_id is None:
                continue
            papers += stored.papers
            began = time.perf_counter()
            for result in match_digest(engine, stored.digest_id):
                if result.topic.slug in names:
                    taken[result.topic.slug] += len(result.hits)
            spent += time.perf_counter() - began
        engine.dispose()
    print(f"real days: {papers:,} papers matched in {spent:.2f} s; share of papers per topic:")
    for slug in sorted(names, key=lambda s: -taken[s]):
        print(f"  {names[slug]:<48}{taken[slug]:>6,}  {taken[slug] / max(papers, 1):>6.1%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=5_000)
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--naive-sample", type=int, default=50)
    parser.add_argument("--real", nargs="*", default=[], help="real digest files or folders")
    args = parser.parse_args()
    rng = random.Random(7)
    pairs = generate(args.papers, rng)
    papers = [(p.split("\n\n")[0], p.split("\n\n")[1]) for p in pairs]
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_database(f"sqlite:///{Path(tmp) / 'match.db'}")
        digest = ingest_bytes(engine, capture(pairs), "bench", NOW)
        generated = keyword_queries(papers, args.queries - len(catalogue()), rng)
        began = time.perf_counter()
        populate(engine, generated, args.subscribers, rng)
        with Session(engine) as session:
            topics = len(list(session.exec(select(Topic.id))))
            links = list(session.exec(select(Subscription.subscriber_id, Subscription.topic_id)))
        print(
            f"setup: {args.papers:,} papers, {topics:,} distinct topics "
            f"({topics - len(generated):,} catalogue), {args.subscribers:,} subscribers, "
            f"{len(links):,} subscriptions ({time.perf_counter() - began:.1f} s)"
        )

        began = time.perf_counter()
        results = match_digest(engine, digest.digest_id)
        matched = time.perf_counter() - began
        began = time.perf_counter()
        targets = fan_out(engine, digest.digest_id)
        fanned = time.perf_counter() - began
        total = matched + fanned
        hits = sum(len(r.hits) for r in results)
        print(
            f"match_digest: {matched:.2f} s ({hits:,} matches stored, "
            f"{hits / len(results):.1f} per topic)"
        )
        print(f"fan_out:      {fanned:.2f} s ({len(targets.subscribers):,} subscribers get a mail)")
        print(f"total:        {total:.2f} s  (target < 5 s)")
        sample = rng.sample(sorted(targets.subscribers), min(200, len(targets.subscribers)))
        began = time.perf_counter()
        per_mail = [
            len(papers_for(engine, digest.digest_id, targets.subscribers[s])) for s in sample
        ]
        spent = (time.perf_counter() - began) / len(sample)
        print(
            f"papers_for:   {spent * 1000:.1f} ms per subscriber at send time "
            f"(sample of {len(sample)}, "
            f"{sum(per_mail) / len(sample):.0f} matched papers on average)"
        )

        tracemalloc.start()
        match_digest(engine, digest.digest_id)
        fan_out(engine, digest.digest_id)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        print(f"peak Python memory (tracemalloc) of match + fan-out: {peak / 2**20:.0f} MiB")

        with Session(engine) as session:
            query_of = dict(session.exec(select(Topic.id, Topic.query)).all())
        sample = rng.sample(range(args.subscribers), args.naive_sample)
        by_person: dict[int, list[int]] = {}
        for person, topic in links:
            by_person.setdefault(person, []).append(topic)
        people = sorted(by_person)
        began = time.perf_counter()
        naive_rows = 0
        for n in sample:
            for topic in by_person[people[n]]:
                node = parse(query_of[topic], CATALOGUE_QUERY_CHARS)
                naive_rows += sum(naive_matches(node, t, a) for t, a in papers)
        per_person = (time.perf_counter() - began) / args.naive_sample
        naive_total = per_person * args.subscribers
        print(
            f"naive loop: {per_person * 1000:.1f} ms per subscriber on a sample of "
            f"{args.naive_sample} -> {naive_total:,.0f} s for {args.subscribers:,} (extrapolated)"
        )
        print(f"ratio: {naive_total / total:,.0f}x faster than the naive loop (target >= 20x)")
        engine.dispose()
    if args.real:
        real_days(args.real)


if __name__ == "__main__":
    main()
