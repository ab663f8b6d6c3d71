"""Discord posts without a token: the seed digest's posts written as JSON message payloads,
within Discord's limits, queued once per feed and digest, and hostile paper text inert."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from paperboy_bot.embeds import (
    CONTENT_CHARS,
    DESCRIPTION_CHARS,
    EMBEDS_PER_MESSAGE,
    MESSAGE_EMBED_CHARS,
    TITLE_CHARS,
)
from paperboy_bot.posting import post_due
from paperboy_bot.transports import FilePosts, Target
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from newsletter.feeds import FeedError, add_feed, list_feeds, queue_posts, remove_feed
from newsletter.ingest import ingest_bytes
from newsletter.models import Delivery, Paper, PaperMatch
from newsletter.people import set_dm
from newsletter.pipeline import match_digest
from newsletter.query import terms
from newsletter.subscriptions import Who, subscribe
from newsletter.topics import find_catalogue_topic
from tests.conftest import NOW, SEED
from tests.mailing import CLOCK, Clock

GUILD, CHANNEL = 1001, 2002


def seed_matched(engine: Engine) -> int:
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    match_digest(engine, digest.digest_id)
    return digest.digest_id


def written(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]


def embed_chars(embed: dict[str, Any]) -> int:
    """Discord's count: title, description, author, footer, field names and values."""
    fields = embed.get("fields", [])
    return (
        len(embed.get("title", ""))
        + len(embed.get("description", ""))
        + len(embed.get("author", {}).get("name", ""))
        + len(embed.get("footer", {}).get("text", ""))
        + sum(len(f["name"]) + len(f["value"]) for f in fields)
    )


def assert_within_discord_limits(message: dict[str, Any]) -> None:
    assert message["allowed_mentions"] == {"parse": []}
    assert len(message.get("content", "")) <= CONTENT_CHARS
    embeds = message.get("embeds", [])
    assert len(embeds) <= EMBEDS_PER_MESSAGE
    assert sum(embed_chars(e) for e in embeds) <= MESSAGE_EMBED_CHARS
    for embed in embeds:
        assert len(embed.get("title", "")) <= TITLE_CHARS
        assert len(embed.get("description", "")) <= DESCRIPTION_CHARS


async def test_the_seed_digest_is_posted_to_a_full_format_feed_as_an_embed_per_paper(
    engine: Engine, tmp_path: Path
) -> None:
    topic = add_feed(
        engine, GUILD, CHANNEL, "reinforcement-learning", added_by=7, post_format="full"
    ).id
    digest_id = seed_matched(engine)
    assert queue_posts(engine, digest_id, CLOCK) == 1
    summary = await post_due(engine, FilePosts(tmp_path), clock=Clock())
    assert (summary.sent, summary.failed) == (1, 0)
    messages = [record["message"] for record in written(tmp_path)]
    assert all(record["channel_id"] == CHANNEL for record in written(tmp_path))
    with Session(engine) as session:
        matched = len(session.exec(select(PaperMatch).where(PaperMatch.topic_id == topic)).all())
    assert matched > 10  # more than one message's worth
    assert messages[0]["content"] == (
        f"Hugging Face Daily Papers · 2026-09-09 · Reinforcement learning: {matched} papers"
    )
    assert sum(len(m["embeds"]) for m in messages) == matched
    for message in messages:
        assert_within_discord_limits(message)
    first = messages[0]["embeds"][0]
    assert first["url"].startswith("https://")
    [matched] = [f for f in first["fields"] if f["name"] == "Matched"]
    topic = find_catalogue_topic("reinforcement-learning")
    assert topic is not None
    words, score = matched["value"].split(" · ")
    assert "reinforcement learning" in words.split(", ")
    assert set(words.split(", ")) <= {term.text for term in terms(topic.node)}
    assert score.startswith("score ")


async def test_a_digest_is_queued_once_per_feed_however_often_it_is_matched(
    engine: Engine, tmp_path: Path
) -> None:
    add_feed(engine, GUILD, CHANNEL, "reinforcement-learning")
    digest_id = seed_matched(engine)
    assert queue_posts(engine, digest_id, CLOCK) == 1
    await post_due(engine, FilePosts(tmp_path), clock=Clock())
    match_digest(engine, digest_id)
    assert queue_posts(engine, digest_id, CLOCK) == 0
    assert (await post_due(engine, FilePosts(tmp_path), clock=Clock())).sent == 0


async def test_hostile_paper_text_stays_inert_and_inside_the_limits_in_full_embeds(
    engine: Engine, tmp_path: Path
) -> None:
    add_feed(engine, GUILD, CHANNEL, "reinforcement-learning", post_format="full")
    digest_id = seed_matched(engine)
    with Session(engine) as session, session.begin():
        session.execute(
            update(Paper).values(
                title="@everyone <@&123> **free** [click](https://evil.test)\r\nX-Header: 1 " * 20,
                abstract="reinforcement learning ` @here " + "\u202ebidi 🎉 " * 200_000,
                authors=["@everyone"] * 500,
                url="javascript:alert(1)",
            )
        )
    queue_posts(engine, digest_id, CLOCK)
    assert (await post_due(engine, FilePosts(tmp_path), clock=Clock())).sent == 1
    messages = [record["message"] for record in written(tmp_path)]
    for message in messages:
        assert_within_discord_limits(message)
        for embed in message["embeds"]:
            assert "url" not in embed  # not an http(s) link: left out, not refused by Discord
            assert "@everyone" not in embed["title"].replace("\\@", "")  # escaped, never live
            assert "\r" not in embed["title"] and "\n" not in embed["title"]
            assert "\\*\\*free\\*\\*" in embed["title"]
            assert "@here" not in embed["description"].replace("\\@", "")


async def test_a_dm_goes_to_people_who_asked_for_one_with_their_topics(
    engine: Engine, tmp_path: Path
) -> None:
    subscribe(engine, Who(discord_user_id=42), "reinforcement-learning")
    subscribe(engine, Who(discord_user_id=42), "agents")
    subscribe(engine, Who(discord_user_id=43), "agents")  # no DMs asked: nothing
    set_dm(engine, 42, True)
    digest_id = seed_matched(engine)
    assert queue_posts(engine, digest_id, CLOCK) == 1
    await post_due(engine, FilePosts(tmp_path), clock=Clock())
    records = written(tmp_path)
    assert {r["user_id"] for r in records} == {42}
    assert records[0]["message"]["content"].endswith("papers on your topics")
    topics = {e.get("title") for r in records for e in r["message"]["embeds"]} - {None}
    assert topics == {"Reinforcement learning", "LLM agents"}  # a compact list per topic


async def test_turning_dms_off_before_sending_skips_the_dm(engine: Engine, tmp_path: Path) -> None:
    subscribe(engine, Who(discord_user_id=42), "agents")
    set_dm(engine, 42, True)
    queue_posts(engine, seed_matched(engine), CLOCK)
    set_dm(engine, 42, False)
    summary = await post_due(engine, FilePosts(tmp_path), clock=Clock())
    assert (summary.sent, summary.skipped) == (0, 1)
    assert written(tmp_path) == []


async def test_a_removed_feed_gets_nothing_already_queued(engine: Engine, tmp_path: Path) -> None:
    add_feed(engine, GUILD, CHANNEL, "agents")
    queue_posts(engine, seed_matched(engine), CLOCK)
    remove_feed(engine, GUILD, CHANNEL, "agents")
    summary = await post_due(engine, FilePosts(tmp_path), clock=Clock())
    assert summary.sent == 0
    with Session(engine) as session:
        assert session.exec(select(Delivery)).all() == []  # the feed's deliveries went with it


class InHand:
    """Writes files like FilePosts, noting at each message how many claimed posts still
    have messages to send. A post whose last message went out counts no more, even while
    it waits to be settled: settling runs in a thread, and when it ends is up to the
    machine, not to the poster."""

    def __init__(self, engine: Engine, folder: Path) -> None:
        self.files, self.engine, self.unsent = FilePosts(folder), engine, [0]
        self.finished: set[str] = set()
        self.description = self.files.description

    async def send(self, target: Target, payload: dict[str, Any], name: str, left: int = 1) -> None:
        with Session(self.engine) as session:
            sending = select(Delivery.key).where(Delivery.status == "sending")
            claimed = set(session.exec(sending).all())
        self.unsent.append(len(claimed - self.finished))
        await self.files.send(target, payload, name, left)
        if left == 1:
            self.finished.add(name.rsplit(".", 1)[0])

    async def close(self) -> None:
        return None


async def test_claiming_pauses_while_the_posts_in_hand_hold_enough_messages(
    engine: Engine, tmp_path: Path
) -> None:
    topics = ["reinforcement-learning", "agents", "reasoning-llms"]
    for number, topic in enumerate(topics):
        add_feed(engine, GUILD, CHANNEL + number, topic)
    assert queue_posts(engine, seed_matched(engine), CLOCK) == 3
    in_hand = InHand(engine, tmp_path)
    summary = await post_due(engine, in_hand, clock=Clock(), batch=1, held=1)
    assert summary.sent == 3
    # The next post is claimed only once the last message of the one before has gone.
    assert max(in_hand.unsent) == 1
    with Session(engine) as session, session.begin():  # the same posts, due again
        session.execute(update(Delivery).values(status="pending", progress=0))
    all_at_once = InHand(engine, tmp_path)
    assert (await post_due(engine, all_at_once, clock=Clock())).sent == 3
    assert max(all_at_once.unsent) == 3


async def test_two_posts_to_one_channel_do_not_interleave(engine: Engine, tmp_path: Path) -> None:
    add_feed(engine, GUILD, CHANNEL, "reinforcement-learning")
    add_feed(engine, GUILD, CHANNEL, "agents")
    assert queue_posts(engine, seed_matched(engine), CLOCK) == 2
    order: list[str] = []

    class Noting(FilePosts):
        async def send(
            self, target: Target, payload: dict[str, Any], name: str, left: int = 1
        ) -> None:
            order.append(name.rsplit(".", 1)[0])
            await super().send(target, payload, name, left)

    assert (await post_due(engine, Noting(tmp_path), clock=Clock())).sent == 2
    first = order[0]
    second = [key for key in order if key != first]
    assert len(set(second)) == 1 and order == [first] * order.count(first) + second


def test_a_channel_follows_a_topic_once(engine: Engine) -> None:
    add_feed(engine, GUILD, CHANNEL, "agents")
    with pytest.raises(FeedError, match="already follows 'LLM agents'"):
        add_feed(engine, GUILD, CHANNEL, "Agents")
    assert len(list_feeds(engine, GUILD)) == 1


def test_another_server_cannot_remove_or_take_over_a_feed(engine: Engine) -> None:
    add_feed(engine, GUILD, CHANNEL, "agents")
    with pytest.raises(FeedError, match="does not follow"):
        remove_feed(engine, GUILD + 1, CHANNEL, "agents")
    with pytest.raises(FeedError, match="belongs to another server"):
        add_feed(engine, GUILD + 1, CHANNEL, "agents")
    assert [f.feed.guild_id for f in list_feeds(engine)] == [GUILD]


def test_the_newsletter_package_never_imports_discord() -> None:
    code = (
        "import importlib, pkgutil, sys, newsletter\n"
        "for m in pkgutil.walk_packages(newsletter.__path__, 'newsletter.'):\n"
        "    if '.migrations' not in m.name: importlib.import_module(m.name)\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] == 'discord'))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
