"""Mutated real digests against the ingest contract, on SQLite and PostgreSQL.

Every input goes through `intake.take_digest`, what the inbox, the URL poller and `paperboy
ingest` run, in a worker process the bench kills when one input runs over the time limit
(so a hang is counted, not waited for). A few more go through the real `paperboy ingest`
command. Printed: tracebacks (exceptions that escaped, and internal errors that intake caught:
anything not a refusal), inputs over 10 s, the workers' peak memory, partial ingests (a
refused digest that left rows, or a stored one whose rows do not add up). Run by hand:

    python bench/fuzz.py [--count 5000] [--postgres URL] [--cli 20] [--only sqlite]

PostgreSQL is used when `--postgres` or PAPERBOY_TEST_DATABASE_URL is set (a schema of its
own, dropped at the end).
"""

from __future__ import annotations

import argparse
import collections
import itertools
import logging
import multiprocessing
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, make_url, select, text  # noqa: E402

from newsletter.db import open_database  # noqa: E402
from newsletter.intake import take_digest  # noqa: E402
from newsletter.models import Digest, DigestPaper, Paper  # noqa: E402
from tests.fuzzing import CAPTURES, MUTATIONS, mutated  # noqa: E402

SLOW = 10.0
NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def _counts(engine: Any) -> tuple[int, int, int]:
    with engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (Digest, Paper, DigestPaper)
        )


def _whole(engine: Any, digest_id: int, papers: int) -> bool:
    with engine.connect() as connection:
        count = connection.execute(
            select(Digest.paper_count).where(Digest.id == digest_id)  # type: ignore[arg-type]
        ).scalar_one()
        links = connection.execute(
            select(func.count()).where(DigestPaper.digest_id == digest_id)  # type: ignore[arg-type]
        ).scalar_one()
    return count == links == papers


def _worker(url: str, inbox: Connection) -> None:
    logging.disable(logging.CRITICAL)
    engine = open_database(url)
    while (job := inbox.recv()) is not None:
        capture, mutation, seed = job
        data = mutated(CAPTURES[capture], mutation, seed)
        before = _counts(engine)
        started = time.perf_counter()
        answer: dict[str, Any] = {"bytes": len(data)}
        try:
            taken = take_digest(engine, data, f"fuzz-{seed}", NOW, retry_now=True)
        except BaseException:  # what would have been a traceback
            answer["escaped"] = traceback.format_exc().strip().splitlines()[-1]
        else:
            answer["seconds"] = time.perf_counter() - started
            after = _counts(engine)
            if taken.result is None:
                answer["outcome"] = "refused" if taken.refused else "internal"
                answer["error"] = taken.error
                answer["partial"] = after != before
            else:
                answer["outcome"] = taken.result.outcome.value
                digest = taken.result.digest_id
                answer["partial"] = taken.result.outcome.value == "stored" and not _whole(
                    engine, digest or 0, taken.result.papers
                )
        answer["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        inbox.send(answer)


@dataclass
class Tally:
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    internal: dict[str, str] = field(default_factory=dict)
    escaped: dict[str, str] = field(default_factory=dict)
    slow: list[str] = field(default_factory=list)
    partial: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    peak_mb: float = 0.0
    largest: int = 0


class Pool:
    """One worker at a time, replaced when an input outlives the limit."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._start()

    def _start(self) -> None:
        self.conn, child = multiprocessing.Pipe()
        self.process = multiprocessing.Process(target=_worker, args=(self.url, child))
        self.process.start()

    def run(self, job: tuple[int, str, int], limit: float) -> dict[str, Any] | None:
        self.conn.send(job)
        if self.conn.poll(limit):
            return self.conn.recv()  # type: ignore[no-any-return]
        self.process.kill()
        self.process.join()
        self._start()
        return None

    def close(self) -> None:
        self.conn.send(None)
        self.process.join(30)


def fuzz(url: str, count: int, limit: float) -> Tally:
    tally = Tally()
    pool = Pool(url)
    jobs = (
        (seed, capture, mutation)
        for seed in itertools.count()
        for capture in range(len(CAPTURES))
        for mutation in MUTATIONS
    )
    try:
        for seed, capture, mutation in itertools.islice(jobs, count):
            name = f"{CAPTURES[capture].name} {mutation} seed {seed}"
            answer = pool.run((capture, mutation, seed), limit)
            if answer is None:
                tally.slow.append(f"{name}: killed after {limit:g} s")
                tally.outcomes["over the limit"] += 1
                continue
            tally.peak_mb = max(tally.peak_mb, answer["rss_mb"])
            tally.largest = max(tally.largest, answer["bytes"])
            if "escaped" in answer:
                tally.escaped.setdefault(answer["escaped"], name)
                tally.outcomes["escaped"] += 1
                continue
            tally.outcomes[answer["outcome"]] += 1
            tally.seconds.append(answer["seconds"])
            if answer["seconds"] > SLOW:
                tally.slow.append(f"{name}: {answer['seconds']:.1f} s")
            if answer["outcome"] == "internal":
                tally.internal.setdefault((answer["error"] or "")[:160], name)
            if answer["partial"]:
                tally.partial.append(name)
    finally:
        pool.close()
    return tally


def cli_runs(url: str, count: int) -> tuple[int, list[str]]:
    """`paperboy ingest` on mutated digests in a process of its own: exit 0 or 2, at most
    one stderr line per refused file, never a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAPERBOY_")}
    env["PAPERBOY_DATABASE_URL"] = url
    problems = []
    paperboy = Path(sys.executable).with_name("paperboy")
    with tempfile.TemporaryDirectory() as folder:
        for number in range(count):
            capture, mutation = number % len(CAPTURES), list(MUTATIONS)[number % len(MUTATIONS)]
            path = Path(folder) / f"digest-{number}"
            path.write_bytes(mutated(CAPTURES[capture], mutation, 10_000 + number))
            done = subprocess.run(
                [str(paperboy), "ingest", str(path)], env=env, capture_output=True, text=True
            )
            lines = done.stderr.splitlines()
            if done.returncode not in (0, 2) or "Traceback" in done.stderr or len(lines) > 1:
                problems.append(f"{CAPTURES[capture].name} {mutation}: exit {done.returncode}")
    return count, problems


def report(name: str, tally: Tally, seconds: float, cli: tuple[int, list[str]]) -> None:
    times = sorted(tally.seconds)
    total = sum(tally.outcomes.values())
    print(f"{name}: {total:,} mutated digests in {seconds:.0f} s")
    print("  outcomes: " + ", ".join(f"{k} {v:,}" for k, v in tally.outcomes.most_common()))
    print(
        f"  tracebacks: {len(tally.escaped)} escaped kinds ({tally.outcomes['escaped']} inputs), "
        f"{tally.outcomes['internal']} internal errors caught by intake "
        f"({len(tally.internal)} kinds)"
    )
    for error, example in list(tally.escaped.items()) + list(tally.internal.items()):
        print(f"    {error}  <- {example}")
    print(f"  inputs over {SLOW:g} s: {len(tally.slow)}")
    for line in tally.slow[:10]:
        print(f"    {line}")
    if times:
        print(
            f"  time per input: median {times[len(times) // 2] * 1000:.0f} ms, "
            f"max {times[-1]:.2f} s"
        )
    print(
        f"  peak memory (worker RSS, imports included): {tally.peak_mb:.0f} MB; "
        f"largest input {tally.largest / 1e6:.1f} MB"
    )
    print(f"  partial ingests: {len(tally.partial)}")
    for line in tally.partial[:10]:
        print(f"    {line}")
    print(f"  through `paperboy ingest`: {cli[0]} inputs, {len(cli[1])} broke the contract")
    for line in cli[1]:
        print(f"    {line}")


def _postgres_schema(base: str) -> tuple[str, Any, str]:
    schema = f"paperboy_fuzz_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), admin, schema


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5_000, help="mutated digests per database")
    parser.add_argument("--cli", type=int, default=20, help="of them also through the CLI")
    parser.add_argument("--limit", type=float, default=60.0, help="seconds before a kill")
    parser.add_argument("--postgres", default=os.environ.get("PAPERBOY_TEST_DATABASE_URL"))
    parser.add_argument("--only", choices=["sqlite", "postgresql"], help="one database only")
    args = parser.parse_args()
    print(f"{len(CAPTURES)} real captures x {len(MUTATIONS)} mutations ({', '.join(MUTATIONS)})")
    if args.only != "postgresql":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{folder}/fuzz.db"
            started = time.perf_counter()
            tally = fuzz(url, args.count, args.limit)
            report("SQLite", tally, time.perf_counter() - started, cli_runs(url, args.cli))
    if args.postgres and args.only != "sqlite":
        url, admin, schema = _postgres_schema(args.postgres)
        try:
            started = time.perf_counter()
            tally = fuzz(url, args.count, args.limit)
            report("PostgreSQL", tally, time.perf_counter() - started, cli_runs(url, args.cli))
        finally:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


if __name__ == "__main__":
    main()
