"""Shared fixtures: real digests, and a database per test on SQLite and (where set) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import discord.http
import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from newsletter.db import open_database
from tests.discord_standin import DiscordStandIn

# Semantic matching embeds every new paper (about 30 ms each on two cores): tests that are not
# about it match on the query alone; tests/test_semantic.py and the quality figures turn it on.
os.environ.setdefault("PAPERBOY_EMBEDDING_MODEL", "none")

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
SEED = ROOT / "seeds" / "000_c5e999339737264f.txt"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
PG_ENV = "PAPERBOY_TEST_DATABASE_URL"
# The name under which a test hands a measured figure to the run's summary (`record_property`).
FIGURES = "figures"
# The Discord server and channel of the `standin` fixture.
GUILD, CHANNEL = 1001, 2002


def seed_paragraphs() -> list[str]:
    """The seed split the way a reader sees it, independent of the parser under test."""
    return SEED.read_text(encoding="utf-8").split("\n\n")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a schema of its own on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'paperboy.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests need {PG_ENV} (CI sets it to the local server)")
    schema = f"paperboy_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = open_database(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
async def standin(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordStandIn]:
    """A local Discord with one server and channel, discord.py's REST calls routed to it."""
    server = DiscordStandIn()
    await server.start()
    server.add_guild(GUILD, channels={CHANNEL: "papers"})
    monkeypatch.setattr(discord.http.Route, "BASE", server.base_url)
    yield server
    await server.close()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What tests measured (matching quality, latencies), printed once after the run: under
    pytest-xdist a worker's own output never reaches the terminal, its reports do."""
    figures = [
        str(value)
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "call"
        for name, value in getattr(report, "user_properties", ())
        if name == FIGURES
    ]
    if figures:
        terminalreporter.section("measured")
        for text in figures:
            terminalreporter.write_line(text)
