"""The Discord stand-in against the real discord.py client: login, gateway, on_ready, messages,
rate limits, errors, slash commands and their answers, all without reaching Discord."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import discord
import discord.http
import pytest
from discord import app_commands
from discord.app_commands import Choice
from discord.ext import commands
from paperboy_bot.tree import PaperboyTree

from tests.discord_standin import DiscordStandIn, running

GUILD, CHANNEL, OTHER, USER = 1001, 2002, 2003, 42
EPHEMERAL = 64


@pytest.fixture
async def standin(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordStandIn]:
    server = DiscordStandIn()
    await server.start()
    server.add_guild(GUILD, name="Lab", channels={CHANNEL: "papers", OTHER: "general"})
    server.add_member(GUILD, USER, name="ann")
    monkeypatch.setattr(discord.http.Route, "BASE", server.base_url)
    yield server
    await server.close()


@pytest.fixture
async def bot(standin: DiscordStandIn) -> AsyncIterator[commands.Bot]:
    client = commands.Bot(
        command_prefix=commands.when_mentioned,
        intents=discord.Intents.default(),
        tree_cls=PaperboyTree,
    )
    async with running(client, standin):
        yield client


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="discord")
    return caplog


def warnings(log: pytest.LogCaptureFixture) -> list[str]:
    """What discord.py logged at WARNING or above while the test set up and ran: it warns
    about payloads it cannot use and logs errors a command raised. Its notice that voice
    libraries are missing (once per process, when the first client is made) is no fault."""
    records = log.get_records("setup") + log.get_records("call")
    messages = [
        r.getMessage()
        for r in records
        if r.name.startswith("discord") and r.levelno >= logging.WARNING
    ]
    return [m for m in messages if "voice will NOT be supported" not in m]


def channel(bot: discord.Client, channel_id: int = CHANNEL) -> discord.TextChannel:
    found = bot.get_channel(channel_id)
    assert isinstance(found, discord.TextChannel)
    return found


async def test_a_client_logs_in_connects_and_sees_the_guild_and_its_channels(
    standin: DiscordStandIn, log: pytest.LogCaptureFixture
) -> None:
    client = discord.Client(intents=discord.Intents.default())
    async with running(client, standin):
        await asyncio.wait_for(client.wait_until_ready(), 1)
        guild = client.get_guild(GUILD)
        assert guild is not None and guild.name == "Lab"
        assert sorted(c.name for c in guild.text_channels) == ["general", "papers"]
        assert guild.me is not None and guild.me.id == client.user.id == 900
        assert client.application_id == standin.application_id
    (identify,) = standin.identified
    assert identify["intents"] == discord.Intents.default().value
    assert standin.gateway_queries == [{"v": "10", "encoding": "json", "compress": "zlib-stream"}]
    assert standin.unknown == []
    assert warnings(log) == []


async def test_an_auto_sharded_bot_asks_for_the_gateway_and_identifies_as_shard_0_of_1(
    standin: DiscordStandIn, log: pytest.LogCaptureFixture
) -> None:
    client = commands.AutoShardedBot(
        command_prefix=commands.when_mentioned, intents=discord.Intents.default()
    )
    async with running(client, standin):
        assert client.get_guild(GUILD) is not None
        assert client.shard_count == 1
    assert [r.path for r in standin.requests if r.path.startswith("/gateway")] == ["/gateway/bot"]
    assert standin.identified[0]["shard"] == [0, 1]
    assert standin.unknown == [] and warnings(log) == []


async def test_the_server_side_sees_the_client_ready(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    await standin.wait_ready(timeout=1)
    assert bot.is_ready()


async def test_privileged_intents_not_enabled_for_the_bot_are_refused_with_4014(
    standin: DiscordStandIn,
) -> None:
    client = discord.Client(intents=discord.Intents.all())
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with running(client, standin, timeout=2):
            pass


async def test_a_sent_embed_is_recorded_with_mentions_off(
    standin: DiscordStandIn, bot: commands.Bot, log: pytest.LogCaptureFixture
) -> None:
    embed = discord.Embed(title="Attention is all you need", url="https://arxiv.org/abs/1706.03762")
    sent = await channel(bot).send(embed=embed, allowed_mentions=discord.AllowedMentions.none())
    (posted,) = standin.messages[CHANNEL]
    assert posted["allowed_mentions"] == {"parse": []}
    assert posted["embeds"][0]["title"] == "Attention is all you need"
    assert sent.embeds[0].url == "https://arxiv.org/abs/1706.03762"
    assert sent.author.id == bot.user.id and sent.channel.id == CHANNEL
    assert warnings(log) == []


async def test_a_dm_opens_the_channel_once_and_lands_there(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    user = await bot.fetch_user(USER)
    await user.send("first")
    await user.send("second")
    opened = [r for r in standin.requests if r.path == "/users/@me/channels"]
    assert [r.json for r in opened] == [{"recipient_id": USER}]
    ((dm, posted),) = [(c, m) for c, m in standin.messages.items() if c not in (CHANNEL, OTHER)]
    assert [m["content"] for m in posted] == ["first", "second"]
    assert standin.channels[dm] == 0


async def test_an_injected_429_is_waited_out_and_the_message_lands_once(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    standin.fail_next("POST", f"/channels/{CHANNEL}/messages", status=429, retry_after=0.1)
    began = time.monotonic()
    await channel(bot).send("once")
    assert time.monotonic() - began >= 0.1
    assert [m["content"] for m in standin.messages[CHANNEL]] == ["once"]
    assert standin.rate_limited == 1
    answered = [r.status for r in standin.requests if r.path.endswith("/messages")]
    assert answered == [429, 200]


async def test_seven_quick_messages_wait_on_the_bucket_and_never_get_a_429(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standin = DiscordStandIn(channel_window=0.5)
    await standin.start()
    standin.add_guild(GUILD, channels={CHANNEL: "papers"})
    try:
        client = discord.Client(intents=discord.Intents.default())
        async with running(client, standin):
            await asyncio.gather(*(channel(client).send(f"m{n}") for n in range(7)))
    finally:
        await standin.close()
    assert sorted(m["content"] for m in standin.messages[CHANNEL]) == [f"m{n}" for n in range(7)]
    assert standin.rate_limited == 0
    times = [r.at for r in standin.requests if r.path.endswith("/messages")]
    # discord.py sent five, read Remaining: 0 and Reset-After, and held the rest until the
    # window ended. (Had a 429 come anyway, it would have slept `retry_after` and retried.)
    assert len(times) == 7
    assert times[5] - times[0] >= 0.5


async def test_the_global_limit_answers_429_and_discord_py_waits_it_out(
    log: pytest.LogCaptureFixture,
) -> None:
    standin = DiscordStandIn(global_per_second=5)
    await standin.start()
    standin.add_guild(GUILD, channels={CHANNEL: "papers"})
    try:
        client = discord.Client(intents=discord.Intents.default())
        async with running(client, standin):
            users = await asyncio.gather(*(client.fetch_user(900) for _ in range(6)))
    finally:
        await standin.close()
    assert all(u.id == 900 for u in users)
    assert standin.rate_limited >= 1
    assert any("Global rate limit" in message for message in warnings(log))


async def test_a_deleted_channel_raises_not_found_with_code_10003(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    standin.delete_channel(CHANNEL)
    with pytest.raises(discord.NotFound) as raised:
        await channel(bot).send("anyone?")
    assert raised.value.code == 10003 and raised.value.status == 404
    with pytest.raises(discord.NotFound):
        await bot.fetch_channel(CHANNEL)


async def test_a_denied_channel_raises_forbidden_with_code_50013(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    standin.deny_send(CHANNEL)
    with pytest.raises(discord.Forbidden) as raised:
        await channel(bot).send("hello")
    assert raised.value.code == 50013
    assert CHANNEL not in standin.messages


async def test_a_503_raises_discord_server_error_at_once(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    standin.fail_next("POST", f"/channels/{CHANNEL}/messages", status=503)
    with pytest.raises(discord.DiscordServerError):
        await channel(bot).send("later")
    await channel(bot).send("now")
    assert [m["content"] for m in standin.messages[CHANNEL]] == ["now"]


async def test_an_app_command_runs_and_answers_ephemerally(
    standin: DiscordStandIn, bot: commands.Bot, log: pytest.LogCaptureFixture
) -> None:
    callbacks: list[discord.InteractionCallbackResponse[commands.Bot]] = []

    @bot.tree.command(name="hello", description="Say hi")
    async def hello(interaction: discord.Interaction) -> None:
        callbacks.append(await interaction.response.send_message("hi", ephemeral=True))

    payload = standin.command_interaction("hello", user_id=USER, guild_id=GUILD, channel_id=CHANNEL)
    response = await standin.interact(payload)
    assert response["type"] == 4
    assert response["data"]["content"] == "hi" and response["data"]["flags"] == EPHEMERAL
    (callback,) = callbacks
    assert callback.is_ephemeral() and isinstance(callback.resource, discord.InteractionMessage)
    assert callback.resource.content == "hi"
    assert standin.unknown == [] and warnings(log) == []


async def test_subcommand_options_and_resolved_channels_reach_the_callback(
    standin: DiscordStandIn, bot: commands.Bot, log: pytest.LogCaptureFixture
) -> None:
    feed = app_commands.Group(name="feed", description="Feeds")
    seen: list[tuple[discord.abc.GuildChannel | app_commands.AppCommandChannel, str, int]] = []

    @feed.command(name="add", description="Add a feed")
    async def add(interaction: discord.Interaction, where: discord.TextChannel, topic: str) -> None:
        seen.append((where, topic, interaction.user.id))
        await interaction.response.send_message(f"{where.mention} gets {topic}")

    bot.tree.add_command(feed)
    options = [
        {
            "name": "add",
            "type": 1,
            "options": [
                {"name": "where", "type": 7, "value": str(OTHER)},
                {"name": "topic", "type": 3, "value": "agents"},
            ],
        }
    ]
    payload = standin.command_interaction("feed", options, user_id=USER, guild_id=GUILD)
    response = await standin.interact(payload)
    ((where, topic, user),) = seen
    assert (where.id, topic, user) == (OTHER, "agents", USER)
    assert response["data"]["content"] == f"<#{OTHER}> gets agents"
    assert warnings(log) == []


async def test_a_deferred_command_follows_up_and_edits_its_answer(
    standin: DiscordStandIn, bot: commands.Bot, log: pytest.LogCaptureFixture
) -> None:
    @bot.tree.command(name="slow", description="Think first")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("more", ephemeral=True)
        await interaction.edit_original_response(content="done")
        original = await interaction.original_response()
        assert original.content == "done"

    response = await standin.interact(standin.command_interaction("slow", user_id=USER))
    assert (response["type"], response["data"]["flags"]) == (5, EPHEMERAL)
    await standin.wait_for(lambda: bool(standin.edits))
    await standin.wait_for(
        lambda: any(r.path.endswith("@original") and r.method == "GET" for r in standin.requests)
    )
    (followup,) = standin.followups
    assert (followup["content"], followup["flags"]) == ("more", EPHEMERAL)
    assert standin.edits[0]["content"] == "done"
    assert standin.unknown == [] and warnings(log) == []


async def test_autocomplete_answers_with_choices(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    @bot.tree.command(name="follow", description="Follow a topic")
    async def follow(interaction: discord.Interaction, topic: str) -> None:
        await interaction.response.send_message(topic)

    @follow.autocomplete("topic")
    async def topics(interaction: discord.Interaction, typed: str) -> list[Choice[str]]:
        names = ["agents", "alignment", "diffusion"]
        return [Choice(name=n, value=n) for n in names if n.startswith(typed)]

    typed = [{"name": "topic", "type": 3, "value": "a", "focused": True}]
    payload = standin.command_interaction("follow", typed, user_id=USER, kind=4)
    response = await standin.interact(payload)
    assert response["type"] == 8
    assert [c["name"] for c in response["data"]["choices"]] == ["agents", "alignment"]


async def test_a_button_click_updates_the_message_in_place(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    class Pager(discord.ui.View):
        @discord.ui.button(label="Next", custom_id="pager:next")
        async def next(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            await interaction.response.edit_message(content="page 2")

    bot.add_view(Pager(timeout=None))
    message = standin._message(CHANNEL, {"content": "page 1"})
    click = standin.component_interaction(
        "pager:next", message=message, user_id=USER, guild_id=GUILD
    )
    response = await standin.interact(click)
    assert (response["type"], response["data"]["content"]) == (7, "page 2")
    assert standin.answered[-1]["content"] == "page 2"


async def test_tree_sync_stores_global_and_guild_commands(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    @bot.tree.command(name="hello", description="Say hi")
    async def hello(interaction: discord.Interaction) -> None: ...

    @bot.tree.command(name="admin", description="Server only", guild=discord.Object(GUILD))
    @app_commands.default_permissions(manage_guild=True)
    async def admin(interaction: discord.Interaction) -> None: ...

    synced = await bot.tree.sync()
    assert [c.name for c in synced] == ["hello"] == [c["name"] for c in standin.commands]
    assert synced[0].id == int(standin.commands[0]["id"])
    (guild_synced,) = await bot.tree.sync(guild=discord.Object(GUILD))
    (stored,) = standin.guild_commands[GUILD]
    assert guild_synced.name == stored["name"] == "admin"
    assert int(stored["default_member_permissions"]) == 1 << 5
    assert (await bot.tree.sync())[0].id == synced[0].id  # ids stay stable across syncs


async def test_a_guild_command_is_found_after_a_guild_sync(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    @bot.tree.command(name="local", description="Here only", guild=discord.Object(GUILD))
    async def local(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("local")

    await bot.tree.sync(guild=discord.Object(GUILD))
    payload = standin.command_interaction("local", user_id=USER, guild_id=GUILD)
    assert payload["data"]["guild_id"] == str(GUILD)
    assert (await standin.interact(payload))["data"]["content"] == "local"


async def test_the_client_resumes_its_session_after_a_reconnect_request(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    resumed = asyncio.Event()

    async def on_resumed() -> None:
        resumed.set()

    bot.add_listener(on_resumed)

    @bot.tree.command(name="ping", description="Still there?")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    await standin.request_reconnect()
    await asyncio.wait_for(resumed.wait(), 2)
    assert len(standin.identified) == 1  # resumed, not identified again
    assert len(standin.gateway_queries) == 2
    assert bot.get_guild(GUILD) is not None
    response = await standin.interact(standin.command_interaction("ping", user_id=USER))
    assert response["data"]["content"] == "pong"


async def test_unknown_routes_answer_404_and_are_recorded(
    standin: DiscordStandIn, bot: commands.Bot
) -> None:
    with pytest.raises(discord.NotFound):
        await bot.http.request(discord.http.Route("GET", "/nothing/here"))
    assert [(r.method, r.path) for r in standin.unknown] == [("GET", "/nothing/here")]
