"""The service's pieces in one process: the bot connecting through `paperboy run`'s parts to
a local stand-in of Discord (REST and gateway), leadership on a real database, `paperboy
demo` and `paperboy status` through the CLI."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import discord.http
import pytest
from aiosmtpd.controller import Controller
from paperboy_bot.service import plugin
from sqlalchemy import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from newsletter.cli import with_plugins
from newsletter.config import get_settings
from newsletter.feeds import add_feed, queue_posts
from newsletter.inbox import Inbox
from newsletter.leadership import Leadership
from newsletter.mail.daily import queue_daily
from newsletter.mail.transports import SmtpTransport
from newsletter.models import Delivery, Worker, utcnow
from newsletter.scheduler import Intervals, Jobs, Service
from newsletter.service import MailSender, Unavailable, Wiring
from tests.conftest import CHANNEL, GUILD, ROOT
from tests.discord_standin import DiscordStandIn
from tests.mailing import (
    CLOCK,
    Clock,
    Handler,
    SmtpServer,
    composer,
    free_port,
    readers_with_papers,
)
from tests.test_discord_posts import seed_matched

QUIET = Intervals(poll=3600, queue=3600, send=0.2, lead=3600, grace=2)


async def test_with_a_token_the_service_connects_the_bot_and_posts_through_it(
    engine: Engine, standin: DiscordStandIn, tmp_path: Path
) -> None:
    add_feed(engine, GUILD, CHANNEL, "reinforcement-learning")
    queue_posts(engine, seed_matched(engine))
    found = plugin(Wiring(engine, tmp_path, "test-token", gateway=True))
    service = Service(Jobs(engine, found.senders, Inbox(tmp_path / "inbox")), found.parts, QUIET)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        await standin.wait_ready()
        await standin.wait_for(lambda: len(standin.messages.get(CHANNEL, [])) >= 1)
        await standin.wait_for(lambda: bool(standin.commands))  # slash commands synced
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    assert standin.identified[0]["intents"] == discord.Intents(guilds=True).value
    with Session(engine) as session:
        assert [d.status for d in session.exec(select(Delivery))] == ["sent"]
        assert session.exec(select(Worker)).all() == []  # a clean stop leaves no worker row


async def test_a_refused_token_stops_the_service_with_a_clear_error(
    engine: Engine, standin: DiscordStandIn, tmp_path: Path
) -> None:
    standin.token = "the-real-token"
    found = plugin(Wiring(engine, tmp_path, "a-wrong-token", gateway=True))
    service = Service(Jobs(engine, found.senders, Inbox(tmp_path)), found.parts, QUIET)
    with pytest.raises(Unavailable, match="Discord refused the token"):
        await asyncio.wait_for(service.run(asyncio.Event()), 10)


def test_one_process_leads_and_another_takes_over_when_it_lets_go(engine: Engine) -> None:
    first, second = Leadership(engine), Leadership(engine)
    assert first.try_acquire()
    assert not second.try_acquire()
    assert first.try_acquire()  # keeping it is trying again
    first.release()
    assert second.try_acquire()
    second.release()


def test_the_demo_shows_the_whole_flow_and_gives_the_same_result_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    runner = CliRunner()
    seeds = str(ROOT / "seeds")
    first = runner.invoke(with_plugins(), ["demo", "--seeds", seeds], catch_exceptions=False)
    written = sorted(p.name for p in (tmp_path / "paperboy-demo" / "outbox").rglob("*.*"))
    second = runner.invoke(with_plugins(), ["demo", "--seeds", seeds], catch_exceptions=False)
    assert first.exit_code == second.exit_code == 0
    assert "76 papers" in first.stdout
    assert "4 mail(s) written" in first.stdout
    assert "Discord message(s) written as JSON" in first.stdout
    assert (tmp_path / "paperboy-demo" / "preview.html").read_text().startswith("<!DOCTYPE")
    again = sorted(p.name for p in (tmp_path / "paperboy-demo" / "outbox").rglob("*.*"))
    assert again == written  # the same files, none added
    assert first.stdout.splitlines()[-12:] == second.stdout.splitlines()[-12:]


def test_status_tells_digests_subscribers_waiting_deliveries_and_that_nothing_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAPERBOY_DATABASE_URL", f"sqlite:///{tmp_path / 'paperboy.db'}")
    get_settings.cache_clear()
    runner = CliRunner()
    app = with_plugins()
    runner.invoke(app, ["ingest", str(ROOT / "seeds")], catch_exceptions=False)
    runner.invoke(app, ["feeds", "add", "--guild", "1", "--channel", "2", "agents"])
    runner.invoke(app, ["match"], catch_exceptions=False)
    shown = runner.invoke(app, ["status"], catch_exceptions=False).stdout
    assert "digests: 1 (newest #1" in shown
    assert "channel feeds: 1 enabled, 0 disabled" in shown
    assert "post" in shown and "pending" in shown
    assert "service: not running" in shown


class StalledHandler(Handler):
    """Takes mail but never finishes answering DATA: a send stays in flight."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(60)
        return "250 OK"


async def test_a_stop_mid_send_gives_the_claimed_mails_back_to_the_outbox(
    engine: Engine, tmp_path: Path
) -> None:
    readers_with_papers(engine, ["ann@example.org", "bob@example.org"])
    queue_daily(engine, CLOCK)
    controller = Controller(StalledHandler(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        transport = SmtpTransport(SmtpServer(controller.port, Handler()).settings())
        sender = MailSender(engine, transport, composer(), Clock())
        jobs = Jobs(engine, [sender], Inbox(tmp_path), clock=Clock())
        service = Service(jobs, intervals=Intervals(3600, 3600, 0.1, 3600, grace=0.5))
        stop = asyncio.Event()
        running = asyncio.create_task(service.run(stop))
        await wait_until(lambda: statuses(engine) == {"sending"})
        stop.set()
        await asyncio.wait_for(running, 10)
    finally:
        controller.stop()
    with Session(engine) as session:
        rows = session.exec(select(Delivery).where(Delivery.kind == "daily")).all()
    assert [(d.status, d.claimed_by) for d in rows] == [("pending", None)] * 2


def statuses(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return {d.status for d in session.exec(select(Delivery).where(Delivery.kind == "daily"))}


async def wait_until(condition: Callable[[], bool], timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"condition not met: {condition()}")


async def test_the_leader_forgets_processes_that_died_without_a_word(
    engine: Engine, tmp_path: Path
) -> None:
    long_ago = utcnow() - timedelta(hours=1)
    with Session(engine) as session:
        session.add(Worker(name="gone:1", leader=True, started_at=long_ago, seen_at=long_ago))
        session.commit()
    service = Service(Jobs(engine, [], Inbox(tmp_path)), intervals=QUIET)
    stop = asyncio.Event()
    running = asyncio.create_task(service.run(stop))
    try:
        await wait_until(lambda: workers(engine) == [service.worker])
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)


def workers(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return [w.name for w in session.exec(select(Worker))]


def test_the_demo_takes_seeds_written_a_moment_ago(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A copy or a download has a modification time of now: the inbox would let it settle
    first and the demo would show 0 papers."""
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    fresh = tmp_path / "just-copied"
    fresh.mkdir()
    (fresh / "seed.txt").write_bytes((ROOT / "seeds" / "000_c5e999339737264f.txt").read_bytes())
    done = CliRunner().invoke(with_plugins(), ["demo", "--seeds", str(fresh)])
    assert done.exit_code == 0, done.output
    assert "76 papers" in done.stdout
    assert "4 mail(s) written" in done.stdout
