"""Slash commands end to end: the real bot (discord.py's client, command tree and cogs) fed
INTERACTION_CREATE payloads as its gateway would deliver them, answering over HTTP to the
local Discord stand-in, and what each answer did to the database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from paperboy_bot.client import Paperboy
from paperboy_bot.cogs import papers as papers_cog
from paperboy_bot.cogs import topics as topics_cog
from paperboy_bot.cogs.topics import PAGE
from sqlalchemy import Engine
from sqlmodel import Session, select

from newsletter.feeds import add_feed, disable_feed, list_feeds
from newsletter.mail.links import Links
from newsletter.models import Delivery, Subscriber
from newsletter.query import terms
from newsletter.subscriptions import Who, list_subscriptions, subscribe
from newsletter.topics import catalogue, find_catalogue_topic
from tests.discord_standin import MANAGE_GUILD, DiscordStandIn, deliver, running, shown
from tests.mailing import CLOCK, Clock
from tests.test_discord_posts import seed_matched

GUILD, CHANNEL, USER = 1001, 2002, 42
EPHEMERAL = 64
LINKS = Links("test-secret-key-of-32-characters", "http://paperboy.test")


@pytest.fixture
async def standin() -> AsyncIterator[DiscordStandIn]:
    server = DiscordStandIn()
    await server.start()
    server.add_guild(GUILD, channels={CHANNEL: "papers"})
    yield server
    await server.close()


@pytest.fixture
async def bot(engine: Engine, standin: DiscordStandIn) -> AsyncIterator[Paperboy]:
    client = Paperboy(engine, LINKS, clock=Clock(), sync_on_start=False)
    async with running(client, standin):
        yield client


def option(name: str, value: Any, kind: int = 3) -> dict[str, Any]:
    return {"name": name, "type": kind, "value": value}


def group(name: str, *options: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": name, "type": 1, "options": list(options)}]


async def run(
    bot: Paperboy,
    standin: DiscordStandIn,
    name: str,
    options: list[dict[str, Any]] | None = None,
    **where: Any,
) -> dict[str, Any]:
    """Invoke a command; returns the answer the bot sent (the last callback or follow-up),
    its message body under "data" either way."""
    where.setdefault("user_id", USER)
    responses, followups = len(standin.interaction_responses), len(standin.followups)
    await deliver(bot, standin.command_interaction(name, options, **where))
    if len(standin.followups) > followups:
        return {"type": "followup", "data": standin.followups[-1]}
    assert len(standin.interaction_responses) > responses, f"/{name} sent no answer"
    return standin.interaction_responses[-1]


def text(answer: dict[str, Any]) -> str:
    """The answer as Discord displays it."""
    return shown((answer.get("data") or answer).get("content") or "")


def flags(answer: dict[str, Any]) -> int:
    return (answer.get("data") or answer).get("flags", 0)


async def test_subscribe_follows_a_topic_and_answers_only_the_user(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    answer = await run(bot, standin, "subscribe", [option("topic", "continual-learning")])
    assert text(answer) == "You now follow **Continual learning**."
    assert flags(answer) & EPHEMERAL
    (listed,) = list_subscriptions(engine, Who(discord_user_id=USER))
    assert listed.topic.slug == "continual-learning"


async def test_subscribing_to_a_query_that_does_not_parse_says_where(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    answer = await run(bot, standin, "subscribe", [option("topic", "agents (tools")])
    assert "does not parse" in text(answer) and "^" in text(answer)
    assert "Traceback" not in text(answer)
    assert flags(answer) & EPHEMERAL
    with Session(engine) as session:
        assert session.exec(select(Subscriber)).all() == []


async def test_unsubscribe_and_subscriptions_show_what_is_left(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    subscribe(engine, Who(discord_user_id=USER), "agents")
    subscribe(engine, Who(discord_user_id=USER), "title:diffusion")
    answer = await run(bot, standin, "unsubscribe", [option("topic", "agents")])
    assert text(answer) == "You no longer follow **LLM agents**."
    answer = await run(bot, standin, "subscriptions")
    assert text(answer) == "You follow 1 topic(s):\n• title:diffusion"


async def test_unsubscribing_from_a_topic_not_followed_is_explained(
    bot: Paperboy, standin: DiscordStandIn
) -> None:
    answer = await run(bot, standin, "unsubscribe", [option("topic", "agents")])
    assert text(answer) == "Discord user 42 is not subscribed to 'agents'"


async def test_subscribe_autocompletes_from_own_queries_and_the_catalogue(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    subscribe(engine, Who(discord_user_id=USER), "reinforcement OR bandits")
    typed = option("topic", "rein") | {"focused": True}
    await deliver(bot, standin.command_interaction("subscribe", [typed], user_id=USER, kind=4))
    answer = standin.interaction_responses[-1]
    assert answer["type"] == 8  # autocomplete result
    names = [c["name"] for c in answer["data"]["choices"]]
    assert names == ["reinforcement OR bandits", "Reinforcement learning"]


async def test_topics_pages_through_the_catalogue_with_buttons(
    bot: Paperboy, standin: DiscordStandIn
) -> None:
    answer = await run(bot, standin, "topics")
    data = answer["data"]
    pages = -(-len(catalogue()) // PAGE)
    assert pages >= 3
    assert data["flags"] & EPHEMERAL
    assert data["embeds"][0]["footer"]["text"].startswith(f"page 1 of {pages}")
    page = shown(data["embeds"][0]["description"])
    described = [t for t in catalogue() if f"**{t.name}** · 0 follower(s)\n{t.description}" in page]
    assert len(described) == PAGE
    buttons = data["components"][0]["components"]
    assert [b["label"] for b in buttons] == ["Previous", "Next"]
    assert buttons[0]["disabled"] is True
    message = standin.answered[-1]
    click = standin.component_interaction(buttons[1]["custom_id"], message=message, user_id=USER)
    await deliver(bot, click)
    turned = standin.interaction_responses[-1]
    assert turned["type"] == 7  # the message updated in place
    assert turned["data"]["embeds"][0]["footer"]["text"].startswith(f"page 2 of {pages}")


async def test_email_set_starts_double_opt_in_and_verify_confirms(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    answer = await run(bot, standin, "email", group("set", option("address", "Ann@Example.org")))
    assert "confirmation mail is on its way" in text(answer)
    with Session(engine) as session:
        person = session.exec(select(Subscriber)).one()
        queued = session.exec(select(Delivery.kind)).all()
    assert (person.email, person.email_status, queued) == (
        "ann@example.org",
        "pending",
        ["confirm"],
    )
    wrong = await run(bot, standin, "email", group("verify", option("code", "12")))
    assert text(wrong) == "that code is not the one in the latest confirmation mail"
    assert person.id is not None and person.confirmation_sent_at is not None
    code = LINKS.code(person.id, "ann@example.org", person.confirmation_sent_at)
    answer = await run(bot, standin, "email", group("verify", option("code", code)))
    assert text(answer) == "Confirmed: the daily mail will go to ann@example.org."


async def test_email_set_refuses_an_address_that_is_not_one(
    bot: Paperboy, standin: DiscordStandIn
) -> None:
    answer = await run(bot, standin, "email", group("set", option("address", "not-an-address")))
    assert "is not an email address" in text(answer)


async def test_email_set_refuses_an_address_someone_else_has_and_says_where_to_manage_it(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    subscribe(engine, Who(email="ann@example.org"), "agents")
    answer = await run(bot, standin, "email", group("set", option("address", "ann@example.org")))
    assert "already gets paperboy's mail" in text(answer)
    assert "manage topics" in text(answer)
    with Session(engine) as session:
        owners = session.exec(select(Subscriber.email).where(Subscriber.email.is_not(None)))
        assert owners.all() == ["ann@example.org"]  # one owner, nothing joined or changed


async def test_email_off_stops_the_mail(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    await run(bot, standin, "email", group("set", option("address", "ann@example.org")))
    answer = await run(bot, standin, "email", group("off"))
    assert text(answer) == "No more mail to ann@example.org."
    with Session(engine) as session:
        assert session.exec(select(Subscriber.email_status)).one() == "unsubscribed"


async def test_delivery_hour_takes_a_time_zone_and_refuses_an_unknown_one(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    bad = await run(
        bot,
        standin,
        "delivery",
        group("hour", option("hour", 7, 4), option("timezone", "Mars/Olympus")),
    )
    assert text(bad) == "'Mars/Olympus' is not a time zone (try Europe/Paris)"
    answer = await run(
        bot,
        standin,
        "delivery",
        group("hour", option("hour", 7, 4), option("timezone", "Europe/Paris")),
    )
    assert text(answer) == "Your daily mail now comes at 07:00, Europe/Paris time."
    with Session(engine) as session:
        person = session.exec(select(Subscriber)).one()
    assert (person.delivery_hour, person.timezone) == (7, "Europe/Paris")


async def test_delivery_dm_turns_direct_messages_on(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    await run(bot, standin, "delivery", group("dm", option("state", "on")))
    with Session(engine) as session:
        assert session.exec(select(Subscriber.discord_dm)).one() is True


async def test_digest_shows_my_papers_of_the_newest_digest(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    subscribe(engine, Who(discord_user_id=USER), "knowledge-distillation")
    seed_matched(engine)
    answer = await run(bot, standin, "digest")
    data = answer["data"]
    assert data["content"].startswith("Hugging Face Daily Papers · 2026-09-09: ")
    assert 1 <= len(data["embeds"]) <= 10
    topic = find_catalogue_topic("knowledge-distillation")
    assert topic is not None
    wanted = {term.text for term in terms(topic.node)}
    for embed in data["embeds"]:
        matched = next(f["value"] for f in embed["fields"] if f["name"] == "Matched")
        assert set(matched.split(" · ")[0].split(", ")) <= wanted


async def test_digest_refuses_a_date_that_is_not_one(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    subscribe(engine, Who(discord_user_id=USER), "agents")
    answer = await run(bot, standin, "digest", [option("day", "yesterday")])
    assert text(answer) == "'yesterday' is not a date like 2026-11-25"


async def test_search_finds_stored_papers_best_first(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    seed_matched(engine)
    answer = await run(bot, standin, "search", [option("query", 'title:"knowledge distillation"')])
    embeds = answer["data"].get("embeds") or []
    assert embeds and all("distillation" in e["title"].lower() for e in embeds)
    assert "Best" in answer["data"]["content"]


def admin(**extra: Any) -> dict[str, Any]:
    return {"guild_id": GUILD, "channel_id": CHANNEL, "permissions": MANAGE_GUILD, **extra}


def channel_option(standin: DiscordStandIn) -> tuple[dict[str, Any], dict[str, Any]]:
    payload = standin.guilds[GUILD]["channels"][0]
    resolved = {"channels": {str(CHANNEL): {**payload, "permissions": str(1 << 11)}}}
    return option("channel", str(CHANNEL), 7), resolved


async def test_feed_add_makes_a_channel_follow_a_topic(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    channel, resolved = channel_option(standin)
    answer = await run(
        bot,
        standin,
        "feed",
        group("add", channel, option("topic", "agents")),
        resolved=resolved,
        **admin(),
    )
    assert text(answer) == f"<#{CHANNEL}> now gets **LLM agents**."
    (feed,) = list_feeds(engine, GUILD)
    assert (feed.feed.channel_id, feed.feed.added_by) == (CHANNEL, USER)


async def test_feed_commands_are_refused_to_members_without_manage_server(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    channel, resolved = channel_option(standin)
    answer = await run(
        bot,
        standin,
        "feed",
        group("add", channel, option("topic", "agents")),
        resolved=resolved,
        **admin(permissions=0),
    )
    assert text(answer) == "Only members with the Manage Server permission can change feeds."
    assert list_feeds(engine) == []


async def test_feed_commands_are_hidden_from_members_without_manage_server(
    bot: Paperboy, standin: DiscordStandIn
) -> None:
    await bot.sync_commands()
    (feed,) = [c for c in standin.commands if c["name"] == "feed"]
    assert int(feed["default_member_permissions"]) == MANAGE_GUILD
    assert feed["contexts"] == [0]  # servers only


async def test_feed_add_takes_the_post_format_the_admin_picks(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    channel, resolved = channel_option(standin)
    chosen = group("add", channel, option("topic", "agents"), option("format", "full"))
    answer = await run(bot, standin, "feed", chosen, resolved=resolved, **admin())
    assert text(answer) == f"<#{CHANNEL}> now gets **LLM agents** (full)."
    assert [f.feed.post_format for f in list_feeds(engine, GUILD)] == ["full"]


async def test_feed_list_shows_why_a_feed_stopped(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    add_feed(engine, GUILD, CHANNEL, "agents")
    with Session(engine) as session, session.begin():
        disable_feed(session, 1, "channel 2002: 404 Unknown Channel", CLOCK)
    answer = await run(bot, standin, "feed", group("list"), **admin())
    assert (
        text(answer)
        == f"<#{CHANNEL}> · LLM agents · compact · **stopped**: channel 2002: 404 Unknown Channel"
    )


async def test_feed_test_posts_a_sample_without_pinging_anyone(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    add_feed(engine, GUILD, CHANNEL, "agents")
    seed_matched(engine)
    channel, resolved = channel_option(standin)
    answer = await run(bot, standin, "feed", group("test", channel), resolved=resolved, **admin())
    assert text(answer) == f"Posted a test to <#{CHANNEL}>."
    (posted,) = standin.messages[CHANNEL]
    assert posted["allowed_mentions"] == {"parse": []}
    assert 1 <= len(posted["embeds"]) <= 3


async def test_feed_remove_of_a_feed_that_does_not_exist_is_explained(
    bot: Paperboy, standin: DiscordStandIn
) -> None:
    channel, resolved = channel_option(standin)
    answer = await run(
        bot,
        standin,
        "feed",
        group("remove", channel, option("topic", "agents")),
        resolved=resolved,
        **admin(),
    )
    assert text(answer) == f"<#{CHANNEL}> does not follow 'agents'"


async def test_feed_add_of_a_feed_already_there_names_the_channel_as_a_mention(
    bot: Paperboy, standin: DiscordStandIn, engine: Engine
) -> None:
    add_feed(engine, GUILD, CHANNEL, "agents")
    channel, resolved = channel_option(standin)
    answer = await run(
        bot,
        standin,
        "feed",
        group("add", channel, option("topic", "agents")),
        resolved=resolved,
        **admin(),
    )
    assert text(answer) == f"<#{CHANNEL}> already follows 'LLM agents'"


async def test_a_mention_in_a_query_is_echoed_inert(bot: Paperboy, standin: DiscordStandIn) -> None:
    answer = await run(bot, standin, "subscribe", [option("topic", "@everyone agents")])
    content = answer["data"]["content"]
    assert "\\@everyone" in content and "@everyone" in text(answer)  # shown, never a mention
    assert answer["data"]["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize(
    ("name", "options", "slow"),
    [
        ("subscribe", [option("topic", 'ICL OR "in-context"')], "subscribe"),
        ("digest", None, "papers_of_day"),
        ("topics", None, "topic_counts"),
        ("search", [option("query", "agents")], None),
    ],
)
async def test_a_command_slower_than_3_seconds_still_answers(
    bot: Paperboy,
    standin: DiscordStandIn,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    options: list[dict[str, Any]] | None,
    slow: str | None,
) -> None:
    """The work takes 5 s on Discord's clock (a new query matched against a busy day, say):
    the command said "thinking" at once, so its follow-up is taken."""
    seed_matched(engine)
    now = [0.0]
    standin.clock = lambda: now[0]
    cogs = {"subscribe": topics_cog, "papers_of_day": papers_cog, "topic_counts": topics_cog}

    def slowly(real: Any) -> Any:
        def work(*args: Any) -> Any:
            now[0] += 5.0
            return real(*args)

        return work

    if slow is not None:
        monkeypatch.setattr(cogs[slow], slow, slowly(getattr(cogs[slow], slow)))
    else:
        search = bot.get_cog("Papers").papers.search  # type: ignore[union-attr]
        monkeypatch.setattr(bot.get_cog("Papers").papers, "search", slowly(search))  # type: ignore[union-attr]
    answer = await run(bot, standin, name, options)
    assert standin.interaction_responses[-1]["type"] == 5  # "thinking", within 3 s
    assert answer["type"] == "followup" and flags(answer) & EPHEMERAL
    assert now[0] == 5.0 and not [r for r in standin.requests if r.status == 404]
