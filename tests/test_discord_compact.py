"""Compact posts through the real discord.py client to the Discord stand-in: a busy topic
is one post of at most two messages, best paper first, "N more" linking to the digest's
page; the full format stays an embed per paper; hostile titles stay inert in the list."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import discord.http
import pytest
from paperboy_bot.embeds import LISTED
from paperboy_bot.posting import post_due
from paperboy_bot.transports import RestPosts
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from newsletter.feeds import FeedError, add_feed, list_feeds, queue_posts
from newsletter.models import Paper, PaperMatch
from newsletter.people import set_dm
from newsletter.subscriptions import Who, subscribe
from tests.conftest import CHANNEL, GUILD
from tests.discord_standin import DiscordStandIn, shown
from tests.mailing import CLOCK, Clock
from tests.test_discord_inert import live
from tests.test_discord_posts import assert_within_discord_limits, seed_matched

# The seed's 76 papers: 44 of them mention data, a busy topic.
BUSY = "data"
DAY_PAGE = "https://huggingface.co/papers/date/2026-09-09"
# `N. [title](url) · reason`, the title's own brackets escaped.
LINE = re.compile(r"^(\d+)\. \[((?:\\.|[^\\\]])*)\]\(([^)\s]+)\) · (.*)$")
MORE = re.compile(r"^\*\*…and (\d+) more\*\* on \[the digest's page\]\(([^)\s]+)\)$")


@pytest.fixture
async def http() -> AsyncIterator[discord.http.HTTPClient]:
    client = discord.http.HTTPClient(asyncio.get_running_loop())
    await client.static_login("test-token")
    yield client
    await client.close()


async def posted(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient, **feed: Any
) -> list[dict[str, Any]]:
    add_feed(engine, GUILD, CHANNEL, feed.pop("topic", BUSY), **feed)
    assert queue_posts(engine, seed_matched(engine), CLOCK) == 1
    assert (await post_due(engine, RestPosts(http), clock=Clock())).sent == 1
    return standin.messages[CHANNEL]


def lines(messages: list[dict[str, Any]]) -> list[str]:
    return [line for m in messages for e in m["embeds"] for line in e["description"].split("\n")]


def scores(engine: Engine) -> list[float]:
    """The feed's topic's scores, best first."""
    (feed,) = list_feeds(engine)
    with Session(engine) as session:
        found = select(PaperMatch.score).where(PaperMatch.topic_id == feed.topic.id)
        return sorted(session.exec(found).all(), reverse=True)


async def test_a_busy_topic_is_at_most_two_messages_best_first_with_n_more(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    messages = await posted(engine, standin, http)
    assert 1 <= len(messages) <= 2
    for message in messages:
        assert_within_discord_limits(message)
    assert messages[0]["content"] == (f"Hugging Face Daily Papers · 2026-09-09 · {BUSY}: 44 papers")
    *listed, more = lines(messages)
    found = [LINE.match(line) for line in listed]
    assert all(found), listed
    assert [int(m[1]) for m in found if m] == list(range(1, LISTED + 1))
    listed_scores = [float(m[4].rsplit("score ", 1)[1]) for m in found if m]
    assert listed_scores == scores(engine)[:LISTED]  # the best, best first
    assert all(m[3].startswith("https://") for m in found if m)
    assert MORE.match(more) and MORE.match(more).groups() == (str(44 - LISTED), DAY_PAGE)  # type: ignore[union-attr]


async def test_the_full_format_posts_an_embed_per_paper_as_before(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    messages = await posted(engine, standin, http, post_format="full")
    embeds = [e for m in messages for e in m["embeds"]]
    assert len(embeds) == 44
    assert len(messages) >= 5  # ten embeds a message at most
    assert all(e["title"] and e["description"] for e in embeds)
    for message in messages:
        assert_within_discord_limits(message)


HOSTILE_TITLE = (
    "@everyone <@&123> **free** [click](https://evil.test) "
    "[[nested](http://a.example)](http://b.example) <t:0:R> </feed add:1>\r\n\u202eend"
)


async def test_hostile_titles_stay_inert_in_the_compact_list(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    add_feed(engine, GUILD, CHANNEL, BUSY)
    queue_posts(engine, seed_matched(engine), CLOCK)
    with Session(engine) as session, session.begin():
        session.execute(update(Paper).values(title=HOSTILE_TITLE, url="https://paper.test/a)(b<c>"))
    assert (await post_due(engine, RestPosts(http), clock=Clock())).sent == 1
    messages = standin.messages[CHANNEL]
    *listed, more = lines(messages)
    assert MORE.match(more)
    for line in listed:
        found = LINE.match(line)
        assert found, line
        title, url, why = found[2], found[3], found[4]
        assert live(title) == [] and live(why) == []  # no markup, mention or link of its own
        assert shown(title) == HOSTILE_TITLE.replace("\r\n", " ").replace("\u202e", "")
        assert url == "https://paper.test/a%29%28b%3Cc%3E"  # the link cannot be cut short
    assert all(m["allowed_mentions"] == {"parse": []} for m in messages)


async def test_a_dm_is_compact_with_a_titled_list_per_topic(
    engine: Engine, standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    standin.add_member(GUILD, 42)  # a DM reaches only someone who shares a server
    subscribe(engine, Who(discord_user_id=42), "reinforcement-learning")
    subscribe(engine, Who(discord_user_id=42), "agents")
    set_dm(engine, 42, True)
    queue_posts(engine, seed_matched(engine), CLOCK)
    assert (await post_due(engine, RestPosts(http), clock=Clock())).sent == 1
    (dm,) = [ms for channel, ms in standin.messages.items() if channel != CHANNEL]
    assert len(dm) <= 2
    assert dm[0]["content"].endswith("papers on your topics")
    titles = [e["title"] for m in dm for e in m["embeds"] if "title" in e]
    assert sorted(titles) == ["LLM agents", "Reinforcement learning"]
    *listed, more = lines(dm)
    assert len(listed) == LISTED and MORE.match(more)  # 3 agents papers among them


def test_adding_a_feed_again_with_another_format_switches_it(engine: Engine) -> None:
    add_feed(engine, GUILD, CHANNEL, "agents")
    assert [f.feed.post_format for f in list_feeds(engine)] == ["compact"]
    with pytest.raises(FeedError, match="already follows"):
        add_feed(engine, GUILD, CHANNEL, "agents", post_format="compact")
    add_feed(engine, GUILD, CHANNEL, "agents", post_format="full")
    assert [f.feed.post_format for f in list_feeds(engine)] == ["full"]
    add_feed(engine, GUILD, CHANNEL + 1, "agents", post_format="full")
    assert [f.feed.post_format for f in list_feeds(engine)] == ["full", "full"]


def test_an_unknown_format_is_refused_and_nothing_is_added(engine: Engine) -> None:
    with pytest.raises(FeedError, match="format 'long' is not one of compact, full"):
        add_feed(engine, GUILD, CHANNEL, "agents", post_format="long")
    assert list_feeds(engine) == []
