"""The paperboy bot: one cog per area, slash commands only, no privileged intents.

It reads no messages (slash commands arrive as interactions), so the only intent it asks
for is `guilds`, which keeps channels and permissions in its cache for `/feed`. Database
calls run in a worker thread so a slow query never stalls the gateway heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import discord
from discord import app_commands
from discord.ext import commands
from paperboy_bot.cogs import COGS
from paperboy_bot.replies import reply
from paperboy_bot.tree import PaperboyTree
from sqlalchemy import Engine

from newsletter.feeds import FeedError
from newsletter.mail.links import Links
from newsletter.models import utcnow
from newsletter.optin import OptInError
from newsletter.queries import UnknownDigest
from newsletter.query import QueryError
from newsletter.subscriptions import SubscriptionError

log = logging.getLogger(__name__)

T = TypeVar("T")

# What a person can get wrong: their message is the whole answer.
USER_ERRORS = (SubscriptionError, OptInError, FeedError, QueryError, UnknownDigest)


def intents() -> discord.Intents:
    wanted = discord.Intents.none()
    wanted.guilds = True
    return wanted


class Paperboy(commands.AutoShardedBot):
    """The bot: slash commands. Posts and DMs are sent by the service's scheduler, through
    this bot's HTTP client (see `bot.service`)."""

    def __init__(
        self,
        engine: Engine,
        links: Links,
        *,
        clock: Callable[[], datetime] = utcnow,
        sync_guild: int | None = None,
        sync_on_start: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            tree_cls=PaperboyTree,
            **options,
        )
        self.engine = engine
        self.links = links
        self.clock = clock
        self.sync_guild = sync_guild
        self.sync_on_start = sync_on_start
        self.cleared: list[int] = []  # servers whose own commands the last sync removed

    async def db(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)

    async def setup_hook(self) -> None:
        for cog in COGS:
            await self.add_cog(cog(self))
        self.tree.on_error = self.on_app_command_error
        if self.sync_on_start:
            await self.sync_commands()

    async def sync_commands(self) -> list[app_commands.AppCommand]:
        """Register the slash commands with Discord: globally, or on one server at once.
        A global sync clears the commands an earlier sync put on single servers, which
        would otherwise show twice there (`cleared` lists those servers)."""
        guild = discord.Object(self.sync_guild) if self.sync_guild else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        synced = await self.tree.sync(guild=guild)
        log.info("synced %d slash commands %s", len(synced), "to one server" if guild else "")
        self.cleared = [] if guild is not None else await self._clear_guild_commands()
        return synced

    async def _clear_guild_commands(self) -> list[int]:
        """Empty the command list of every server the bot is in that still has one."""
        assert self.application_id is not None
        cleared: list[int] = []
        for entry in await self.http.get_guilds(200):
            guild_id = int(entry["id"])
            if await self.http.get_guild_commands(self.application_id, guild_id):
                await self.http.bulk_upsert_guild_commands(self.application_id, guild_id, [])
                log.info("cleared the slash commands synced to server %s", guild_id)
                cleared.append(guild_id)
        return cleared

    async def on_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        """A short ephemeral answer for every failure, never a traceback."""
        original = getattr(error, "original", error)
        if isinstance(original, QueryError):
            message = f"That query does not parse: {original}\n```\n{original.pointer()}\n```"
        elif isinstance(original, FeedError):
            message = original.naming(lambda channel: f"<#{channel}>")
        elif isinstance(original, USER_ERRORS):
            message = str(original)
        elif isinstance(error, app_commands.MissingPermissions):
            message = "Only members with the Manage Server permission can change feeds."
        elif isinstance(error, app_commands.NoPrivateMessage):
            message = "This command works in a server, not in DMs."
        elif isinstance(error, app_commands.CheckFailure):
            message = "You cannot use this command here."
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("/%s failed", command, exc_info=original)
            message = "Something went wrong on paperboy's side; it has been logged."
        await reply(interaction, message)
