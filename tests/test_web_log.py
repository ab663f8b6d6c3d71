"""A malformed HTTP request leaves one log line, not a traceback spread over many."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from sqlalchemy import Engine

from newsletter.web import make_app
from tests.mailing import composer, free_port

BAD_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: x\r\nno colon in this header\r\n\r\n",
    b"GET /\x00\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 10_000 + b"\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS spoken to the HTTP port\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
]


async def _send(port: int, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    return answer


async def test_each_malformed_request_is_logged_on_one_line_without_a_traceback(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    runner = web.AppRunner(make_app(engine, composer()), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    caplog.set_level(logging.DEBUG, logger="aiohttp.server")
    try:
        answers = [await _send(port, raw) for raw in BAD_REQUESTS]
    finally:
        await runner.cleanup()

    assert all(answer.split(b" ", 2)[1] == b"400" for answer in answers), answers
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == len(BAD_REQUESTS)
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    for record in records:
        line = formatter.format(record)
        assert "\n" not in line, line
        assert "Traceback" not in line
        assert line.split(": ", 1)[1].startswith("Error handling request from 127.0.0.1: ")
