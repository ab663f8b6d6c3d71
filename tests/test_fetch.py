"""Polling digest URLs over real HTTP: a local aiohttp server serving the real captures with
ETag / Last-Modified, the real client, and the real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import ValidationError
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from newsletter.config import Settings
from newsletter.fetch import MAX_BODY_BYTES, poll_urls
from newsletter.ingest import Outcome
from newsletter.models import Digest, SourceState
from tests.conftest import DATA

NOW = datetime(2026, 11, 25, 12, 0)
HF_DAY = (DATA / "2024-05-27.json").read_bytes()
RSS = (DATA / "arxiv-rss-cs.LG.xml").read_bytes()
ATOM = (DATA / "arxiv-atom-query.xml").read_bytes()
LAST_MODIFIED = "Mon, 27 May 2024 08:00:00 GMT"


@dataclass
class Document:
    body: bytes
    etag: str | None = None
    last_modified: str | None = None


@dataclass
class Origin:
    """A digest server: documents by path, every request it saw, and a few bad behaviours."""

    documents: dict[str, Document] = field(default_factory=dict)
    seen: list[web.Request] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    in_flight: int = 0
    most_in_flight: int = 0
    base: str = ""

    def url(self, path: str) -> str:
        return self.base + path

    def requests(self, path: str) -> list[web.Request]:
        return [r for r in self.seen if r.path_qs == path]

    async def serve(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.02)  # long enough for concurrent polls to overlap
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        document = self.documents.get(request.path_qs)
        if document is not None:
            return self._conditional(request, document)
        if request.path == "/broken":
            return web.Response(status=500, text="upstream exploded")
        if request.path == "/slow":
            await self.release.wait()
        if request.path == "/endless":
            return await self._stream(request, MAX_BODY_BYTES + 1024 * 1024)
        if request.path == "/declared-huge":
            return web.Response(body=b" " * (MAX_BODY_BYTES + 1))
        raise web.HTTPNotFound()

    def _conditional(self, request: web.Request, document: Document) -> web.Response:
        headers = {}
        if document.etag:
            headers["ETag"] = document.etag
        if document.last_modified:
            headers["Last-Modified"] = document.last_modified
        asked_etag = request.headers.get("If-None-Match")
        asked_since = request.headers.get("If-Modified-Since")
        if (asked_etag and asked_etag == document.etag) or (
            not asked_etag and asked_since and asked_since == document.last_modified
        ):
            return web.Response(status=304, headers=headers)
        return web.Response(body=document.body, headers=headers)

    async def _stream(self, request: web.Request, size: int) -> web.StreamResponse:
        """A body with no Content-Length, sent in chunks: only counting as it reads can stop it."""
        response = web.StreamResponse()
        await response.prepare(request)
        chunk = b"[" + b" " * (1024 * 1024 - 1)
        try:
            for _ in range(size // len(chunk)):
                await response.write(chunk)
        except ConnectionError:
            pass  # the client hung up, as it should
        return response


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    site = Origin()
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", site.serve)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    site.base = str(server.make_url("")).rstrip("/")
    yield site
    site.release.set()
    await server.close()


def digests(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Digest)).one()


def state(engine: Engine, url: str) -> SourceState:
    with Session(engine) as session:
        row = session.get(SourceState, url)
    assert row is not None, f"no source_state for {url}"
    return row


def refused_url() -> str:
    """A port that was just free: nothing listens there, so connecting is refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/feed"


async def test_first_poll_stores_then_a_304_stores_nothing(engine: Engine, origin: Origin) -> None:
    origin.documents["/rss"] = Document(RSS, etag='"rss-1"', last_modified=LAST_MODIFIED)
    url = origin.url("/rss")

    (first,) = await poll_urls(engine, [url], NOW)
    assert (first.outcome, first.source_format, first.origin) == (Outcome.STORED, "arxiv-rss", url)
    assert first.papers > 0
    (request,) = origin.requests("/rss")
    assert "If-None-Match" not in request.headers
    assert request.headers["User-Agent"].startswith("paperboy/")
    saved = state(engine, url)
    assert (saved.etag, saved.last_modified) == ('"rss-1"', LAST_MODIFIED)
    assert saved.checked_at == saved.changed_at == NOW and saved.last_error is None

    later = NOW + timedelta(minutes=15)
    assert await poll_urls(engine, [url], later) == []
    second = origin.requests("/rss")[1]
    assert second.headers["If-None-Match"] == '"rss-1"'
    assert second.headers["If-Modified-Since"] == LAST_MODIFIED
    assert digests(engine) == 1
    saved = state(engine, url)
    assert (saved.checked_at, saved.changed_at, saved.etag) == (later, NOW, '"rss-1"')


async def test_last_modified_alone_is_enough_for_a_304(engine: Engine, origin: Origin) -> None:
    origin.documents["/atom"] = Document(ATOM, last_modified=LAST_MODIFIED)
    url = origin.url("/atom")
    assert [r.outcome for r in await poll_urls(engine, [url], NOW)] == [Outcome.STORED]
    assert await poll_urls(engine, [url], NOW) == []
    second = origin.requests("/atom")[1]
    assert "If-None-Match" not in second.headers
    assert second.headers["If-Modified-Since"] == LAST_MODIFIED
    assert digests(engine) == 1


async def test_a_changed_document_is_ingested(engine: Engine, origin: Origin) -> None:
    origin.documents["/feed"] = Document(RSS, etag='"v1"')
    url = origin.url("/feed")
    await poll_urls(engine, [url], NOW)
    origin.documents["/feed"] = Document(ATOM, etag='"v2"')

    (result,) = await poll_urls(engine, [url], NOW + timedelta(hours=1))
    assert (result.outcome, result.source_format) == (Outcome.STORED, "arxiv-atom")
    assert origin.requests("/feed")[1].headers["If-None-Match"] == '"v1"'
    assert state(engine, url).etag == '"v2"'
    assert digests(engine) == 2


async def test_a_new_etag_on_the_same_bytes_is_already_ingested(
    engine: Engine, origin: Origin
) -> None:
    """Servers that re-stamp unchanged documents cost a download, never a second digest."""
    origin.documents["/feed"] = Document(RSS, etag='"v1"')
    url = origin.url("/feed")
    await poll_urls(engine, [url], NOW)
    origin.documents["/feed"] = Document(RSS, etag='"v2"')

    (result,) = await poll_urls(engine, [url], NOW + timedelta(hours=1))
    assert result.outcome == Outcome.ALREADY
    saved = state(engine, url)
    assert (saved.etag, saved.changed_at) == ('"v2"', NOW)
    assert digests(engine) == 1


async def test_failing_sources_are_recorded_and_the_rest_still_ingested(
    engine: Engine, origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    origin.documents["/rss"] = Document(RSS, etag='"rss-1"')
    broken, slow, missing = origin.url("/broken"), origin.url("/slow"), origin.url("/gone")
    refused, good = refused_url(), origin.url("/rss")

    with caplog.at_level(logging.WARNING, logger="newsletter.fetch"):
        results = await poll_urls(engine, [broken, refused, slow, missing, good], NOW, timeout=0.5)

    assert [(r.origin, r.outcome) for r in results] == [(good, Outcome.STORED)]
    assert state(engine, broken).last_error == "HTTP 500 Internal Server Error"
    assert state(engine, missing).last_error == "HTTP 404 Not Found"
    assert "Cannot connect" in (state(engine, refused).last_error or "")
    assert state(engine, slow).last_error == "no complete answer within 0.5 s"
    lines = [r.getMessage() for r in caplog.records]
    for url in (broken, refused, slow, missing):
        (line,) = [line for line in lines if url in line]
        assert "\n" not in line
        failed = state(engine, url)
        assert (failed.checked_at, failed.etag, failed.changed_at) == (NOW, None, None)

    origin.documents["/broken"] = Document(HF_DAY)
    (recovered,) = await poll_urls(engine, [broken], NOW)
    assert recovered.outcome == Outcome.STORED
    assert state(engine, broken).last_error is None


async def test_a_malformed_body_is_refused_whole_and_fetched_again(
    engine: Engine, origin: Origin, caplog: pytest.LogCaptureFixture
) -> None:
    """The transfer was cut but the server's ETag names the whole document: had paperboy kept
    that ETag, every later poll would get a 304 and the digest would never arrive."""
    origin.documents["/api"] = Document(HF_DAY[: len(HF_DAY) // 2], etag='"day"')
    url = origin.url("/api")

    with caplog.at_level(logging.WARNING, logger="newsletter.fetch"):
        assert await poll_urls(engine, [url], NOW) == []
    assert digests(engine) == 0
    failed = state(engine, url)
    assert failed.etag is None
    assert "invalid JSON" in (failed.last_error or "")
    (line,) = [r.getMessage() for r in caplog.records]
    assert url in line and "invalid JSON" in line

    origin.documents["/api"] = Document(HF_DAY, etag='"day"')
    (result,) = await poll_urls(engine, [url], NOW)
    assert "If-None-Match" not in origin.requests("/api")[1].headers
    assert result.outcome == Outcome.STORED
    assert (state(engine, url).etag, state(engine, url).last_error) == ('"day"', None)


async def test_the_date_placeholder_asks_for_today_and_dates_the_digest(
    engine: Engine, origin: Origin
) -> None:
    today = "/api/daily_papers?date=2026-11-25"
    origin.documents[today] = Document(HF_DAY, etag='"d"')
    template = origin.url("/api/daily_papers?date={date}")

    (result,) = await poll_urls(engine, [template], NOW)
    assert result.origin == origin.url(today)
    # The captured reply's own entries say 2024-05-27; the date asked for wins.
    assert result.digest_date == NOW.date()
    assert state(engine, origin.url(today)).etag == '"d"'
    with Session(engine) as session:
        assert session.get(SourceState, template) is None


@pytest.mark.parametrize("path", ["/endless", "/declared-huge"])
async def test_an_oversized_body_is_refused(engine: Engine, origin: Origin, path: str) -> None:
    url = origin.url(path)
    assert await poll_urls(engine, [url], NOW) == []
    assert f"{MAX_BODY_BYTES:,}-byte limit" in (state(engine, url).last_error or "")
    assert digests(engine) == 0


async def test_polls_run_side_by_side_but_bounded(engine: Engine, origin: Origin) -> None:
    paths = [f"/empty?n={n}" for n in range(10)]
    for path in paths:
        origin.documents[path] = Document(b"[]")
    results = await poll_urls(engine, [origin.url(p) for p in paths], NOW)
    assert [r.origin for r in results] == [origin.url(p) for p in paths]
    assert {r.outcome for r in results} == {Outcome.EMPTY}
    assert 1 < origin.most_in_flight <= 4


def test_sources_setting_takes_commas_or_spaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "PAPERBOY_SOURCES",
        "https://huggingface.co/api/daily_papers?date={date}, https://rss.arxiv.org/rss/cs.LG\n"
        "  http://export.arxiv.org/api/query?search_query=cat:cs.LG,",
    )
    assert Settings().sources == [
        "https://huggingface.co/api/daily_papers?date={date}",
        "https://rss.arxiv.org/rss/cs.LG",
        "http://export.arxiv.org/api/query?search_query=cat:cs.LG",
    ]
    monkeypatch.setenv("PAPERBOY_SOURCES", "")
    assert Settings().sources == []


def test_sources_setting_refuses_other_schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAPERBOY_SOURCES", "https://rss.arxiv.org/rss/cs.LG,ftp://arxiv.org/x")
    with pytest.raises(ValidationError) as refused:
        Settings()
    (error,) = refused.value.errors()
    assert error["loc"] == ("sources",)
    assert "'ftp://arxiv.org/x' is not an http:// or https:// URL" in error["msg"]
