"""`paperboy bot sync` against the Discord stand-in: commands on one server while
PAPERBOY_DISCORD_GUILD_ID is set, and only global ones (that server's cleared) once unset."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import discord.http
import pytest
from typer.testing import CliRunner

from newsletter.cli import with_plugins
from newsletter.cli_common import err, out
from newsletter.config import get_settings
from tests.discord_standin import DiscordStandIn

GUILD, OTHER_GUILD = 1001, 1002


@pytest.fixture
async def standin(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordStandIn]:
    server = DiscordStandIn()
    server.token = "the-bot-token"
    await server.start()
    server.add_guild(GUILD, channels={2002: "papers"})
    server.add_guild(OTHER_GUILD, channels={2003: "general"})
    monkeypatch.setattr(discord.http.Route, "BASE", server.base_url)
    yield server
    await server.close()


async def sync(monkeypatch: pytest.MonkeyPatch, database_url: str, **env: str) -> tuple[int, str]:
    """`paperboy bot sync` with these settings, in a thread (the stand-in serves this loop)."""
    for key in [k for k in os.environ if k.startswith("PAPERBOY_")]:
        monkeypatch.delenv(key)
    for key, value in {
        "DATABASE_URL": database_url,
        "DISCORD_TOKEN": "the-bot-token",
        **env,
    }.items():
        monkeypatch.setenv(f"PAPERBOY_{key}", value)
    for console in (out, err):
        monkeypatch.setattr(console, "width", 200)
    get_settings.cache_clear()
    try:
        result = await asyncio.to_thread(CliRunner().invoke, with_plugins(), ["bot", "sync"])
    finally:
        get_settings.cache_clear()
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout + result.stderr


async def test_sync_to_one_server_puts_the_commands_there_only(
    standin: DiscordStandIn, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    code, said = await sync(monkeypatch, database_url, DISCORD_GUILD_ID=str(GUILD))
    assert code == 0 and f"registered for server {GUILD}" in said
    assert standin.commands == [] and standin.guild_commands[GUILD]


async def test_moving_to_global_sync_clears_the_servers_own_commands_and_says_so(
    standin: DiscordStandIn, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    await sync(monkeypatch, database_url, DISCORD_GUILD_ID=str(GUILD))
    names = sorted(c["name"] for c in standin.guild_commands[GUILD])
    code, said = await sync(monkeypatch, database_url)
    assert code == 0
    assert sorted(c["name"] for c in standin.commands) == names
    assert standin.guild_commands[GUILD] == []  # no longer shown twice there
    lines = said.strip().splitlines()
    assert lines[-1] == f"removed the commands synced to server {GUILD} alone (they showed twice)"
    assert not any(str(OTHER_GUILD) in line for line in lines)


async def test_a_global_sync_with_no_server_commands_clears_nothing(
    standin: DiscordStandIn, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    code, said = await sync(monkeypatch, database_url)
    assert code == 0 and said.strip().splitlines() == [
        f"{len(standin.commands)} slash command(s) registered for every server"
    ]
    overwrites = [r for r in standin.requests if r.method == "PUT" and "/guilds/" in r.path]
    assert overwrites == []
