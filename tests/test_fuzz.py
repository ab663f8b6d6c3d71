"""The ingest contract on mutated real digests, through the real `paperboy ingest`: exit 0 or
2, one line per refused digest and never a traceback, nothing partial (a refused digest
leaves no rows; a stored one has all of its links). Time per input is measured and printed,
not asserted. `bench/fuzz.py` runs thousands of the same mutations, bigger ones included."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.db import open_database
from newsletter.models import Digest, DigestPaper, Paper
from tests.conftest import FIGURES
from tests.fuzzing import CAPTURES, MUTATIONS, mutated
from tests.test_cli import Run, paperboy, paperboy_process  # noqa: F401 (fixtures)


def _counter(database_url: str) -> Callable[[], tuple[int, int, int]]:
    engine = open_database(database_url)

    def counts() -> tuple[int, int, int]:
        with engine.connect() as connection:
            return tuple(  # type: ignore[return-value]
                connection.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (Digest, Paper, DigestPaper)
            )

    return counts


def _links_add_up(database_url: str) -> bool:
    engine = open_database(database_url)
    with engine.connect() as connection:
        links = dict(
            connection.execute(
                select(DigestPaper.digest_id, func.count()).group_by(DigestPaper.digest_id)  # type: ignore[arg-type]
            ).all()
        )
        counted = dict(connection.execute(select(Digest.id, Digest.paper_count)).all())  # type: ignore[call-overload]
    engine.dispose()
    return all(links.get(digest, 0) == papers for digest, papers in counted.items())


def test_mutated_real_digests_keep_the_contract_through_paperboy_ingest(
    paperboy: Run,  # noqa: F811
    database_url: str,
    tmp_path: Path,
    record_property: Callable[[str, object], None],
) -> None:
    counts = _counter(database_url)
    timings: list[float] = []

    @settings(
        max_examples=25,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(
        capture=st.sampled_from(CAPTURES),
        mutation=st.sampled_from(sorted(MUTATIONS)),
        seed=st.integers(0, 2**32),
    )
    def check(capture: Path, mutation: str, seed: int) -> None:
        path = tmp_path / "digest"
        path.write_bytes(mutated(capture, mutation, seed, small=True))
        before = counts()
        started = time.perf_counter()
        done = paperboy("ingest", str(path))  # an exception here is a traceback: it fails
        timings.append(time.perf_counter() - started)
        assert done.returncode in (0, 2), done.stderr
        lines = done.stderr.splitlines()
        if done.returncode == 2:
            assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), lines
            assert counts() == before, "a refused digest left rows"
        else:
            assert lines == []
        assert _links_add_up(database_url), "a stored digest's links do not add up"

    check()
    timings.sort()
    record_property(
        FIGURES,
        f"fuzz ({database_url.split(':')[0]}): {len(timings)} mutated digests through "
        f"`paperboy ingest`, median {timings[len(timings) // 2] * 1000:.0f} ms, "
        f"slowest {timings[-1]:.2f} s",
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_console_script_refuses_mutated_digests_in_one_line_each(
    paperboy_process: Run,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The installed command in a process of its own, one mutation of each kind at once."""
    files = []
    for number, mutation in enumerate(sorted(MUTATIONS)):
        path = tmp_path / f"digest-{number}"
        path.write_bytes(mutated(CAPTURES[number % len(CAPTURES)], mutation, number, small=True))
        files.append(str(path))
    done = paperboy_process("ingest", *files)
    assert done.returncode in (0, 2)
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines)
    assert len(lines) <= len(files)
    assert f"{len(files)} digest(s): " in done.stdout
