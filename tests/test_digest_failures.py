"""Every digest stands alone: a poison digest among good ones, in the inbox and at a source
URL, costs one recorded failure and nothing else, through the real scheduler jobs.

The poison: a real Daily Papers day with one title marked, and a trigger in the test
database that refuses a paper row with that mark. It parses and passes every limit, then the
database raises something paperboy has no name for, as a parser bug, a full disk or a DBA's
constraint would: the kind of failure that used to stop every later digest and source.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import Engine, func, text
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from newsletter.cli import with_plugins
from newsletter.cli_common import err, out
from newsletter.config import get_settings
from newsletter.failures import FIRST_RETRY, listed
from newsletter.feeds import add_feed
from newsletter.inbox import Inbox
from newsletter.intake import take_digest
from newsletter.models import Delivery, Digest, DigestFailure, PaperMatch
from newsletter.scheduler import Intervals, Jobs, Service
from tests.conftest import DATA, SEED
from tests.mailing import CLOCK, Clock

MARK = "POISON-PILL"


def poisoned(day: Path) -> bytes:
    """A real HF day whose first title carries the mark the trigger refuses."""
    entries = json.loads(day.read_bytes())
    entries[0]["paper"]["title"] += f" {MARK}"
    return json.dumps(entries).encode()


def refuse_marked_papers(engine: Engine) -> None:
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON paper "
                    f"WHEN NEW.title LIKE '%{MARK}%' "
                    "BEGIN SELECT RAISE(ABORT, 'paper refused by the database'); END"
                )
            )
        else:
            connection.execute(
                text(
                    "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                    f"IF NEW.title LIKE '%{MARK}%' THEN "
                    "RAISE EXCEPTION 'paper refused by the database'; END IF; "
                    "RETURN NEW; END $$ LANGUAGE plpgsql"
                )
            )
            connection.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON paper "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
                )
            )


def allow_marked_papers(engine: Engine) -> None:
    with engine.begin() as connection:
        on = "" if engine.dialect.name == "sqlite" else " ON paper"
        connection.execute(text(f"DROP TRIGGER refuse_poison{on}"))


def drop(folder: Path, name: str, data: bytes) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(data)
    os.utime(path, (0, 0))  # settled long ago
    return path


@pytest.fixture
async def site() -> AsyncIterator[tuple[dict[str, bytes], str]]:
    """A digest server on 127.0.0.1: documents by path, and its base URL."""
    documents: dict[str, bytes] = {}

    async def serve(request: web.Request) -> web.Response:
        if request.path not in documents:
            raise web.HTTPNotFound()
        return web.Response(body=documents[request.path])

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield documents, str(server.make_url("")).rstrip("/")
    await server.close()


def origins(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [d.origin for d in session.exec(select(Digest).order_by(col(Digest.id)))]


def matched_and_posted(engine: Engine) -> dict[str, tuple[int, int]]:
    """Each stored digest's origin -> (matches stored, Discord posts queued)."""
    with Session(engine) as session:
        found = {}
        for digest in session.exec(select(Digest)):
            matches = session.exec(
                select(func.count()).where(PaperMatch.digest_id == digest.id)
            ).one()
            posts = session.exec(
                select(func.count()).where(Delivery.digest_id == digest.id, Delivery.kind == "post")
            ).one()
            found[digest.origin] = (matches, posts)
        return found


async def test_a_poison_file_and_a_poison_url_leave_the_good_ones_stored_matched_and_queued(
    engine: Engine,
    site: tuple[dict[str, bytes], str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    documents, base = site
    for topic in ("llm-agents", "reasoning-llms", "multimodal", "reinforcement-learning"):
        add_feed(engine, 1, 100, topic)
    refuse_marked_papers(engine)
    inbox = tmp_path / "inbox"
    # The poison sits between good files, so the ones after it must still be read.
    first = drop(inbox, "1-seed.txt", SEED.read_bytes())
    poison_file = drop(inbox, "2-poison.json", poisoned(DATA / "2025-09-09.json"))
    last = drop(inbox, "3-day.json", (DATA / "2025-03-03.json").read_bytes())
    documents["/poison"] = poisoned(DATA / "2026-08-21.json")
    documents["/rss"] = (DATA / "arxiv-rss-cs.LG.xml").read_bytes()
    poison_url, good_url = f"{base}/poison", f"{base}/rss"
    jobs = Jobs(engine, [], Inbox(inbox), [poison_url, good_url], clock=Clock())

    with caplog.at_level(logging.INFO):
        new = await jobs.poll()

    assert origins(engine) == [str(first), str(last), good_url]
    assert len(new) == 3
    shown = matched_and_posted(engine)
    for origin in (str(first), str(last), good_url):
        assert shown[origin][0] > 0, f"{origin} was not matched"
    assert shown[str(first)][1] > 0, "the seed's posts were not queued"
    failed = {f.origin: f for f in listed(engine)}
    assert set(failed) == {str(poison_file), poison_url}
    for failure in failed.values():
        assert "paper refused by the database" in failure.error
        assert "\n" not in failure.error
        assert (failure.attempts, failure.first_seen_at) == (1, CLOCK)
        assert failure.next_retry_at == CLOCK + FIRST_RETRY
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(lines) == 2 and all("\n" not in line for line in lines)


async def test_a_failed_digest_waits_for_its_backoff_then_goes_in_once_it_can(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    refuse_marked_papers(engine)
    poison = drop(tmp_path, "poison.json", poisoned(DATA / "2025-09-09.json"))
    clock = Clock()
    jobs = Jobs(engine, [], Inbox(tmp_path), clock=clock)
    await jobs.poll()
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        await jobs.poll()  # the same poll time: not due, not tried, not logged again
    assert caplog.records == []
    clock.now += FIRST_RETRY
    await jobs.poll()
    (failure,) = listed(engine)
    assert (failure.attempts, failure.next_retry_at) == (2, clock.now + 2 * FIRST_RETRY)

    allow_marked_papers(engine)  # the fault is gone (a fixed paperboy, a freed disk)
    clock.now += timedelta(minutes=10)
    assert len(await jobs.poll()) == 1
    assert origins(engine) == [str(poison)]
    assert listed(engine) == []


async def test_one_failing_digest_in_paperboy_runs_poll_does_not_stop_the_digests_after_it(
    engine: Engine, tmp_path: Path
) -> None:
    """The real service: APScheduler runs the poll job, the leader's lock is taken."""
    refuse_marked_papers(engine)
    drop(tmp_path, "a-poison.json", poisoned(DATA / "2025-09-09.json"))
    after = drop(tmp_path, "b-day.json", (DATA / "2024-05-27.json").read_bytes())
    service = Service(
        Jobs(engine, [], Inbox(tmp_path)), intervals=Intervals(0.2, 3600, 3600, 3600, grace=2)
    )
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        await until(lambda: origins(engine) == [str(after)] and len(listed(engine)) == 1)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    assert matched_and_posted(engine)[str(after)][0] > 0


async def until(condition: Callable[[], bool], timeout: float = 15) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError("condition not met")


def test_status_and_digests_show_which_input_failed_why_and_when(
    engine: Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refuse_marked_papers(engine)
    poison = drop(tmp_path, "poison.json", poisoned(DATA / "2025-09-09.json"))
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", database_url)
    for console in (out, err):
        monkeypatch.setattr(console, "width", 300)
    get_settings.cache_clear()
    runner, app = CliRunner(), with_plugins()
    try:
        ingested = runner.invoke(app, ["ingest", str(poison), str(SEED)])
        status = runner.invoke(app, ["status"]).stdout
        table = runner.invoke(app, ["digests"]).stdout
        as_json = json.loads(runner.invoke(app, ["digests", "--failed", "--json"]).stdout)
    finally:
        get_settings.cache_clear()
    assert ingested.exit_code == 2
    (line,) = ingested.stderr.splitlines()
    assert line.startswith(f"error: {poison}: ") and "paper refused by the database" in line
    assert "1 stored" in ingested.stdout  # the seed after it went in
    assert "digests that failed: 1" in status
    assert f"{poison}: " in status and "1 try" in status
    assert "digests that failed" in table and str(poison) in table
    assert [(f["origin"], f["attempts"]) for f in as_json] == [(str(poison), 1)]


def test_ingesting_the_failed_bytes_again_by_hand_counts_another_try(engine: Engine) -> None:
    refuse_marked_papers(engine)
    data = poisoned(DATA / "2025-09-09.json")
    for _ in range(2):
        assert take_digest(engine, data, "by-hand", CLOCK, retry_now=True).error
    with Session(engine) as session:
        (row,) = session.exec(select(DigestFailure))
    assert row.attempts == 2
