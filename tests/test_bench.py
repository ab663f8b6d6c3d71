"""The benchmarks still run: each script once at tiny sizes, as a user starts it."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from newsletter.embedding import DEFAULT_MODEL
from tests.conftest import DATA, ROOT


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT / "bench",  # where a script's name could shadow a standard module
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_matching_bench_runs_and_reports_each_figure() -> None:
    day = DATA / "labels" / "days" / "2024-06-17.json"
    printed = _run(
        "match.py",
        *("--papers", "40", "--queries", "80", "--subscribers", "100", "--naive-sample", "100"),
        *("--real", str(day)),
    )
    for figure in ("match_digest:", "fan_out:", "naive loop:", "real days: 18 papers"):
        assert figure in printed


def test_the_ingest_bench_runs_and_reports_its_rates() -> None:
    printed = _run("ingest.py", "--papers", "20", "--repeat", "1")
    assert "papers/s" in printed


def test_the_fuzz_bench_runs_and_reports_each_figure() -> None:
    printed = _run("fuzz.py", "--count", "20", "--cli", "1", "--only", "sqlite")
    for figure in ("tracebacks:", "inputs over 10 s:", "peak memory", "partial ingests:"):
        assert figure in printed
    assert "SQLite: 20 mutated digests" in printed


def test_the_lease_bench_runs_and_counts_duplicates() -> None:
    """A smoke run: the figure itself is tests/test_mail_leases.py's and the bench's."""
    printed = _run("leases.py", "--readers", "40", "--rate", "40", "--lease", "1", "--batch", "20")
    assert "for 40 of 40 readers" in printed
    assert re.search(r"^duplicates: \d+ \(target 0\)$", printed, re.MULTILINE)


def test_the_discord_bench_runs_both_formats_and_the_compact_one_posts_one_message_each() -> None:
    printed = _run("discord.py", "--papers", "60", "--feeds", "8")
    compact, full = printed.split("-- full format")
    assert "-- compact format" in compact
    for part in (compact, full):
        assert "429s received: 0" in part and "time / bound:" in part
    messages = [
        re.search(r"messages a post: ([\d.]+) on average, (\d+) at most", p)
        for p in (compact, full)
    ]
    assert messages[0] and messages[1]
    assert int(messages[0][2]) <= 2  # the compact bound
    assert float(messages[1][1]) > float(messages[0][1])  # full takes more messages


def test_the_embedding_bench_runs_and_reports_both_figures() -> None:
    day = DATA / "labels" / "days" / "2024-06-17.json"
    model = {"PAPERBOY_EMBEDDING_MODEL": DEFAULT_MODEL}  # the suite turns it off elsewhere
    printed = _run("embed.py", "--papers", "8", "--topics", "50", str(day), env=model)
    assert "embedding: 8 papers" in printed
    assert "similarity: 8 papers x 50 topics" in printed


@pytest.mark.parametrize(
    "script",
    ["match.py", "ingest.py", "mail.py", "discord.py", "fuzz.py", "leases.py", "embed.py"],
)
def test_every_bench_script_imports_from_its_own_folder(script: str) -> None:
    """A script named like a standard module (bench/email.py was) breaks its neighbours."""
    _run(script, "--help")
