"""Posts through the real discord.py HTTP client to a local stand-in of Discord: rate
limits waited out, a refused channel disabling its feed, a crash resumed without repeats."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import discord.http
import pytest
from paperboy_bot.posting import post_due
from paperboy_bot.transports import RestPosts
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from newsletter.feeds import add_feed, list_feeds, queue_posts
from newsletter.ingest import ingest_bytes
from newsletter.models import Delivery, Subscriber
from newsletter.outbox import claim
from newsletter.pacing import Pace
from newsletter.people import set_dm
from newsletter.pipeline import match_digest
from newsletter.subscriptions import Who, subscribe
from tests.conftest import CHANNEL, DATA, GUILD, NOW
from tests.discord_standin import DiscordStandIn
from tests.mailing import CLOCK, Clock, free_port
from tests.test_discord_posts import seed_matched

ADMIN = 77


@pytest.fixture
async def http() -> AsyncIterator[discord.http.HTTPClient]:
    client = discord.http.HTTPClient(asyncio.get_running_loop())
    await client.static_login("test-token")
    yield client
    await client.close()


def feed_with_papers(engine: Engine, topic: str = "reinforcement-learning") -> int:
    add_feed(engine, GUILD, CHANNEL, topic, added_by=ADMIN, post_format="full")
    digest_id = seed_matched(engine)
    queue_posts(engine, digest_id, CLOCK)
    return digest_id


def statuses(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return {d.kind: d.status for d in session.exec(select(Delivery))}


async def test_a_post_reaches_the_channel_with_mentions_off_and_a_nonce(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    feed_with_papers(engine)
    summary = await post_due(engine, RestPosts(http), clock=Clock())
    assert summary.sent == 1
    posted = standin.messages[CHANNEL]
    assert len(posted) >= 3
    assert all(m["allowed_mentions"] == {"parse": []} for m in posted)
    assert all(m["enforce_nonce"] is True for m in posted)
    assert len({m["nonce"] for m in posted}) == len(posted)


async def test_a_429_is_waited_out_and_the_message_lands_once(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    feed_with_papers(engine, "agents")
    standin.fail_next("POST", f"/channels/{CHANNEL}/messages", status=429, retry_after=0.1)
    summary = await post_due(engine, RestPosts(http), clock=Clock())
    assert (summary.sent, summary.retried) == (1, 0)
    assert standin.rate_limited == 1
    contents = [m.get("content") for m in standin.messages[CHANNEL]]
    assert contents.count(contents[0]) == 1


async def test_a_500_is_retried_by_discord_py_and_the_message_lands_once(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    feed_with_papers(engine, "agents")
    standin.fail_next("POST", f"/channels/{CHANNEL}/messages", status=500)
    summary = await post_due(engine, RestPosts(http), clock=Clock())
    assert summary.sent == 1
    answered = [r.status for r in standin.requests if r.path.endswith("/messages")]
    assert answered[:2] == [500, 200]
    assert len(standin.messages[CHANNEL]) == len(answered) - 1


async def test_a_503_mid_post_is_retried_later_from_the_message_that_failed(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    feed_with_papers(engine)
    clock = Clock()
    standin.fail_next("POST", f"/channels/{CHANNEL}/messages", status=503, after=1)
    assert (await post_due(engine, RestPosts(http), clock=clock)).retried == 1
    assert len(standin.messages[CHANNEL]) == 1
    clock.advance(timedelta(minutes=1))
    assert (await post_due(engine, RestPosts(http), clock=clock)).sent == 1
    posted = standin.messages[CHANNEL]
    assert [("content" in m) for m in posted] == [True] + [False] * (len(posted) - 1)
    nonces = [m["nonce"] for m in posted]
    assert len(set(nonces)) == len(nonces)  # no message twice


def many_short_papers(engine: Engine) -> int:
    """A real day of Hugging Face papers made hard to post: every abstract one line, so
    many embeds fit in 6,000 characters, and one title far past Discord's 256."""
    day = json.loads((DATA / "2025-09-09.json").read_text())
    for number, entry in enumerate(day):
        entry["paper"]["summary"] = entry["title"] = entry["paper"]["title"] = (
            f"zzqx study {number}: " + ("a very long title " * 20 if number == 3 else "short")
        )
    digest = ingest_bytes(engine, json.dumps(day).encode(), "short-papers", NOW)
    match_digest(engine, digest.digest_id)
    return digest.digest_id


async def test_a_post_of_many_short_papers_and_a_long_title_is_taken_by_discord(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    add_feed(engine, GUILD, CHANNEL, "zzqx", added_by=ADMIN, post_format="full")
    assert queue_posts(engine, many_short_papers(engine), CLOCK) == 1
    summary = await post_due(engine, RestPosts(http), clock=Clock())
    assert (summary.sent, summary.failed, standin.refused) == (1, 0, [])
    embeds = [e for m in standin.messages[CHANNEL] for e in m.get("embeds", [])]
    assert len(embeds) == 16 and 250 <= max(len(e["title"]) for e in embeds) <= 256


@pytest.mark.parametrize("how", ["close", "500"])
async def test_a_message_whose_answer_was_lost_is_not_posted_twice(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient, how: str
) -> None:
    feed_with_papers(engine)
    clock = Clock()
    standin.drop_answers(how)  # the first message is created, its answer never arrives
    first = await post_due(engine, RestPosts(http), clock=clock)
    clock.advance(timedelta(minutes=1))
    later = await post_due(engine, RestPosts(http), clock=clock)
    assert first.sent + later.sent == 1
    posted = standin.messages[CHANNEL]
    nonces = [m["nonce"] for m in posted]
    assert len(posted) >= 2 and len(set(nonces)) == len(nonces)  # each message once


async def test_discord_out_of_reach_leaves_the_post_queued_for_later(
    engine: Engine,
    standin: DiscordStandIn,
    http: discord.http.HTTPClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    feed_with_papers(engine, "agents")
    clock = Clock()
    monkeypatch.setattr(discord.http.Route, "BASE", f"http://127.0.0.1:{free_port()}/api/v10")
    assert (await post_due(engine, RestPosts(http), clock=clock)).retried == 1
    assert statuses(engine) == {"post": "pending"}
    monkeypatch.setattr(discord.http.Route, "BASE", standin.base_url)
    clock.advance(timedelta(minutes=1))
    assert (await post_due(engine, RestPosts(http), clock=clock)).sent == 1
    assert statuses(engine) == {"post": "sent"}


async def test_a_crash_mid_post_resumes_after_the_last_message_sent(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    feed_with_papers(engine)
    clock = Clock()
    (held,) = claim(engine, ["post"], "dead-sender", clock(), 10)
    with Session(engine) as session, session.begin():  # it sent two messages, then died
        session.execute(update(Delivery).where(Delivery.id == held.id).values(progress=2))
    clock.advance(timedelta(minutes=6))  # its lease runs out
    await post_due(engine, RestPosts(http), clock=clock)
    posted = standin.messages[CHANNEL]
    assert "content" not in posted[0]  # the header went out before the crash
    nonces = [m["nonce"] for m in posted]
    assert len(set(nonces)) == len(nonces)


async def test_a_deleted_channel_disables_its_feed_and_tells_the_admin_once(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    standin.add_member(GUILD, ADMIN)  # who added the feed, told by DM
    feed_with_papers(engine)
    standin.delete_channel(CHANNEL)
    summary = await post_due(engine, RestPosts(http), clock=Clock())
    assert (summary.sent, summary.failed) == (1, 1)  # the notice went, the post failed
    (feed,) = list_feeds(engine, GUILD)
    assert "Unknown Channel" in (feed.feed.disabled_reason or "")
    (notice,) = [m for c, ms in standin.messages.items() if c != CHANNEL for m in ms]
    assert f"<#{CHANNEL}>" in notice["content"] and "/feed add" in notice["content"]
    assert statuses(engine) == {"post": "failed", "notice": "sent"}
    assert queue_posts(engine, seed_matched(engine), CLOCK) == 0  # disabled: nothing queued


async def test_a_missing_permission_disables_the_feed_with_the_reason(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    feed_with_papers(engine)
    standin.deny_send(CHANNEL)
    await post_due(engine, RestPosts(http), clock=Clock())
    (feed,) = list_feeds(engine, GUILD)
    assert "Missing Permissions" in (feed.feed.disabled_reason or "")


async def test_closed_dms_turn_the_persons_dms_off(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    subscribe(engine, Who(discord_user_id=42), "agents")
    set_dm(engine, 42, True)
    queue_posts(engine, seed_matched(engine), CLOCK)
    standin.close_dms(42)
    summary = await post_due(engine, RestPosts(http), clock=Clock())
    assert summary.failed == 1
    with Session(engine) as session:
        assert session.exec(select(Subscriber)).one().discord_dm is False


async def test_the_pace_lets_the_post_with_most_messages_left_go_first() -> None:
    pace, interval = Pace(50), 1 / 50
    await pace.wait()  # the first slot is taken: the rest have to queue
    loop = asyncio.get_running_loop()
    went: list[tuple[int, float]] = []

    async def send(left: int) -> None:
        await pace.wait(-left)
        went.append((left, loop.time()))

    began = loop.time()
    await asyncio.gather(*(send(left) for left in (1, 7, 3, 7)))
    assert [left for left, _ in went] == [7, 7, 3, 1]
    times = [began] + [at for _, at in went]
    assert all(b - a > interval / 3 for a, b in itertools.pairwise(times))
    assert times[-1] - began >= 3.5 * interval


async def test_the_pace_does_not_make_up_for_a_busy_loop_with_a_burst() -> None:
    pace, interval = Pace(50), 1 / 50
    loop = asyncio.get_running_loop()
    went: list[float] = []

    async def send() -> None:
        await pace.wait()
        went.append(loop.time())

    senders = [asyncio.create_task(send()) for _ in range(6)]
    await asyncio.sleep(0)
    time.sleep(5 * interval)  # the loop is stuck while slots come and go
    await asyncio.gather(*senders)
    assert all(b - a > interval / 3 for a, b in itertools.pairwise(went))
