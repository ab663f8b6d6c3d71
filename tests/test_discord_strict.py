"""The stand-in refuses what Discord refuses: bodies its OpenAPI schema or its documented
limits reject (400, code 50035, the complaint at its path), a late first answer to an
interaction, an expired interaction token, a bad gateway token, a silent gateway session;
and it keeps Discord's memory of enforced nonces."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import discord.http
import pytest
from discord import app_commands
from discord.ext import commands
from discord.http import Route, handle_message_parameters
from paperboy_bot.tree import PaperboyTree

from tests.discord_standin import DiscordStandIn, running

GUILD, CHANNEL, USER = 1001, 2002, 42


class Clock:
    """The stand-in's clock, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def standin(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> AsyncIterator[DiscordStandIn]:
    server = DiscordStandIn(clock=clock)
    await server.start()
    server.add_guild(GUILD, channels={CHANNEL: "papers"})
    server.add_member(GUILD, USER, name="ann")
    monkeypatch.setattr(discord.http.Route, "BASE", server.base_url)
    yield server
    await server.close()


@pytest.fixture
async def http(standin: DiscordStandIn) -> AsyncIterator[discord.http.HTTPClient]:
    client = discord.http.HTTPClient(asyncio.get_running_loop())
    await client.static_login("test-token")
    yield client
    await client.close()


async def post(http: discord.http.HTTPClient, body: dict[str, Any]) -> Any:
    route = Route("POST", "/channels/{channel_id}/messages", channel_id=CHANNEL)
    return await http.request(route, json=body)


async def refusal(http: discord.http.HTTPClient, body: dict[str, Any]) -> str:
    """Discord's complaint about a message body, as discord.py reports it."""
    with pytest.raises(discord.HTTPException) as refused:
        await post(http, body)
    assert (refused.value.status, refused.value.code) == (400, 50035)
    return refused.value.text


@pytest.mark.parametrize(
    ("body", "where", "complaint"),
    [
        ({"embeds": [{"title": "t"}] * 11}, "In embeds:", "10 or fewer"),
        ({"embeds": [{"title": "t" * 300}]}, "In embeds.0.title:", "256 or fewer"),
        ({"embeds": [{"description": "d" * 4097}]}, "In embeds.0.description:", "4096"),
        ({"content": "x", "nonce": "n" * 26}, "In nonce:", "25 or fewer"),
        ({"content": "x" * 2001}, "In content:", "2000 or fewer"),
        ({"embeds": [{"description": "d" * 4000}] * 2}, "In embeds:", "6000"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v"}] * 26}]}, "fields", "25 or fewer"),
        ({"embeds": [{"fields": [{"name": "n", "value": "v" * 1025}]}]}, "value", "1024"),
        ({"embeds": [{"color": -1}]}, "In embeds.0.color:", "minimum"),
    ],
)
async def test_a_message_discord_refuses_gets_50035_with_the_complaint_at_its_path(
    standin: DiscordStandIn,
    http: discord.http.HTTPClient,
    body: dict[str, Any],
    where: str,
    complaint: str,
) -> None:
    text = await refusal(http, body)
    assert where in text and complaint in text
    assert CHANNEL not in standin.messages


async def test_a_message_at_every_limit_is_accepted(
    standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    embed = {"title": "t" * 256, "description": "d" * 1000, "fields": [{"name": "n", "value": "v"}]}
    await post(http, {"content": "c" * 2000, "nonce": "n" * 25, "embeds": [embed] * 4})
    assert len(standin.messages[CHANNEL]) == 1


async def test_an_enforced_nonce_answers_the_first_message_instead_of_a_second(
    standin: DiscordStandIn, http: discord.http.HTTPClient, clock: Clock
) -> None:
    body = {"content": "once", "nonce": "post-1", "enforce_nonce": True}
    first, again = await post(http, body), await post(http, body)
    assert first["id"] == again["id"] and len(standin.messages[CHANNEL]) == 1
    clock.now += 10 * 60  # Discord forgets a nonce after a few minutes
    later = await post(http, body)
    assert later["id"] != first["id"] and len(standin.messages[CHANNEL]) == 2


async def test_a_nonce_not_enforced_makes_two_messages(
    standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    body = {"content": "twice", "nonce": "post-1"}
    await post(http, body)
    await post(http, body)
    assert len(standin.messages[CHANNEL]) == 2


async def test_a_lost_answer_leaves_the_message_created(
    standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    standin.drop_answers("close")
    with pytest.raises(aiohttp.ClientError):
        await post(http, {"content": "lost", "nonce": "n1", "enforce_nonce": True})
    assert standin.messages[CHANNEL] == [{"content": "lost", "nonce": "n1", "enforce_nonce": True}]
    answer = await post(http, {"content": "lost", "nonce": "n1", "enforce_nonce": True})
    assert answer["content"] == "lost" and len(standin.messages[CHANNEL]) == 1


async def test_a_hidden_channel_answers_missing_access_50001(
    standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    standin.hide_channel(CHANNEL)
    with pytest.raises(discord.Forbidden) as refused:
        await post(http, {"content": "x"})
    assert refused.value.code == 50001


async def test_a_dm_to_an_unknown_id_is_unknown_user_10013(
    http: discord.http.HTTPClient,
) -> None:
    with pytest.raises(discord.NotFound) as refused:
        await http.start_private_message(5555)
    assert refused.value.code == 10013


async def test_a_dm_to_someone_sharing_no_server_is_refused_with_50007(
    standin: DiscordStandIn, http: discord.http.HTTPClient
) -> None:
    standin.add_user(5555)
    channel = await http.start_private_message(5555)
    with pytest.raises(discord.Forbidden) as refused:
        await http.send_message(int(channel["id"]), params=_params("hello"))
    assert refused.value.code == 50007


def _params(content: str) -> Any:
    return handle_message_parameters(content=content)


async def test_plain_discord_py_permissions_are_refused_and_paperboys_tree_sends_a_string(
    standin: DiscordStandIn,
) -> None:
    for tree, accepted in ((app_commands.CommandTree, False), (PaperboyTree, True)):
        bot = commands.Bot(command_prefix="!", intents=discord.Intents.none(), tree_cls=tree)

        @bot.tree.command(name="admin", description="Server only")
        @app_commands.default_permissions(manage_guild=True)
        async def admin(interaction: discord.Interaction) -> None: ...

        async with running(bot, standin):
            if accepted:
                await bot.tree.sync()
                assert standin.commands[0]["default_member_permissions"] == "32"
            else:
                with pytest.raises(app_commands.CommandSyncFailure, match="is not of type"):
                    await bot.tree.sync()


@pytest.mark.parametrize(
    ("description", "complaint"),
    [("d" * 101, "100 or fewer"), ("d" * 120, "100 or fewer"), ("", "between 1 and 100")],
)
async def test_a_command_description_outside_1_to_100_characters_is_refused(
    standin: DiscordStandIn, description: str, complaint: str
) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none(), tree_cls=PaperboyTree)
    command = app_commands.Command(name="hello", description="x", callback=_noop)
    command.description = description
    bot.tree.add_command(command)
    async with running(bot, standin):
        with pytest.raises(app_commands.CommandSyncFailure, match=complaint):
            await bot.tree.sync()
    assert standin.commands == []


async def _noop(interaction: discord.Interaction) -> None:
    return None


async def test_a_first_answer_after_3_seconds_is_unknown_interaction_10062(
    standin: DiscordStandIn, clock: Clock
) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none(), tree_cls=PaperboyTree)
    failures: list[discord.HTTPException] = []

    @bot.tree.command(name="slow", description="Answers late")
    async def slow(interaction: discord.Interaction) -> None:
        clock.now += 3.5  # the work took longer than Discord waits
        try:
            await interaction.response.send_message("too late")
        except discord.HTTPException as err:
            failures.append(err)

    async with running(bot, standin):
        await bot.tree.sync()
        await standin.dispatch(
            "INTERACTION_CREATE", standin.command_interaction("slow", user_id=USER)
        )
        await standin.wait_for(lambda: bool(failures))
    assert [(f.status, f.code) for f in failures] == [(404, 10062)]
    assert standin.answered == []


async def test_an_interaction_token_takes_followups_for_15_minutes_only(
    standin: DiscordStandIn, clock: Clock
) -> None:
    bot = commands.Bot(command_prefix="!", intents=discord.Intents.none(), tree_cls=PaperboyTree)
    outcomes: list[Any] = []

    @bot.tree.command(name="later", description="Follows up late")
    async def later(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        clock.now += 14 * 60
        outcomes.append(await interaction.followup.send("in time", wait=True))
        clock.now += 2 * 60
        try:
            await interaction.followup.send("too late")
        except discord.HTTPException as err:
            outcomes.append((err.status, err.code))

    async with running(bot, standin):
        await bot.tree.sync()
        await standin.interact(standin.command_interaction("later", user_id=USER))
        await standin.wait_for(lambda: len(outcomes) == 2)
    assert outcomes[0].content == "in time" and outcomes[1] == (401, 50027)


async def _gateway(standin: DiscordStandIn) -> tuple[aiohttp.ClientSession, Any]:
    session = aiohttp.ClientSession()
    ws = await session.ws_connect(standin.gateway_url)
    hello = json.loads((await ws.receive()).data)
    assert hello["op"] == 10
    return session, ws


async def test_the_gateway_closes_4004_on_a_token_that_is_not_the_bots(
    standin: DiscordStandIn,
) -> None:
    standin.token = "the-bot-token"
    session, ws = await _gateway(standin)
    async with session:
        await ws.send_json({"op": 2, "d": {"token": "someone-else", "intents": 1}})
        await ws.receive()
        assert ws.close_code == 4004


async def test_a_session_that_stops_heartbeating_is_closed() -> None:
    standin = DiscordStandIn(heartbeat_interval=200)
    await standin.start()
    try:
        session, ws = await _gateway(standin)
        async with session:
            await ws.send_json({"op": 2, "d": {"token": "t", "intents": 1}})
            for _ in range(2):  # READY stays alive while the heartbeats come
                await asyncio.sleep(0.15)
                await ws.send_json({"op": 1, "d": None})
            while (await ws.receive()).type is not aiohttp.WSMsgType.CLOSE:
                pass
            assert ws.close_code == 4009 and standin.heartbeat_closes == 1
    finally:
        await standin.close()
