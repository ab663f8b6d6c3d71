"""The Discord side of a running paperboy, offered through the `paperboy.plugins` entry point.

No token: posts and DMs are written as JSON into the outbox folder. A token: they go to
Discord over REST and, under `paperboy run`, the bot also keeps a gateway connection to
answer slash commands; the scheduler then sends through the bot's own HTTP client, so posts
and command answers share one set of rate limits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

import discord
from discord.http import HTTPClient
from paperboy_bot.client import Paperboy
from paperboy_bot.posting import post_due
from paperboy_bot.transports import FilePosts, PostTransport, RestPosts
from sqlalchemy import Engine

from newsletter.config import get_settings
from newsletter.mail.links import links_for
from newsletter.outbox import Summary
from newsletter.service import Plugin, Unavailable, Wiring

log = logging.getLogger(__name__)


class DiscordSender:
    """Due posts, DMs and notices through one transport. Given `http` and `token`, it logs
    that client in on first use and closes it at the end (sending without the gateway)."""

    name = "discord"

    def __init__(
        self,
        engine: Engine,
        transport: PostTransport,
        clock: Callable[[], datetime],
        http: HTTPClient | None = None,
        token: str | None = None,
    ) -> None:
        self.engine, self.transport, self.clock = engine, transport, clock
        self.http, self._token = http, token
        self.description = transport.description

    async def send_due(self) -> Summary:
        if self.http is not None and self._token is not None:
            try:
                await self.http.static_login(self._token)
            except discord.LoginFailure as problem:
                raise Unavailable(f"Discord refused the token: {problem}") from None
            self._token = None
        return await post_due(self.engine, self.transport, clock=self.clock)

    async def close(self) -> None:
        await self.transport.close()
        if self.http is not None:
            await self.http.close()


class BotPart:
    """The bot's gateway connection, as a part of the service."""

    name = "discord"

    def __init__(self, bot: Paperboy, token: str) -> None:
        self.bot, self.token = bot, token

    async def start(self) -> asyncio.Task[None]:
        try:
            await self.bot.login(self.token)  # a bad token fails here, before anything runs
        except discord.LoginFailure as problem:
            raise Unavailable(f"Discord refused the token: {problem}") from None
        log.info("discord: logged in as %s", self.bot.user)
        return asyncio.create_task(self._connected(), name="discord-gateway")

    async def _connected(self) -> None:
        """The gateway connection, reconnecting by itself; what it cannot get past ends it."""
        try:
            await self.bot.connect()
        except discord.PrivilegedIntentsRequired:
            raise Unavailable(
                "Discord refused the bot's intents: paperboy asks for none that are privileged, "
                "so the token is probably another application's"
            ) from None
        except discord.ConnectionClosed as problem:
            raise Unavailable(f"Discord closed the gateway: {problem}") from None

    async def stop(self) -> None:
        await self.bot.close()


def plugin(wiring: Wiring) -> Plugin:
    engine, clock = wiring.engine, wiring.clock
    if wiring.discord_token is None:
        files = FilePosts(wiring.outbox_dir / "discord")
        return Plugin(senders=[DiscordSender(engine, files, clock)])
    if wiring.gateway:
        bot = Paperboy(
            engine,
            links_for(engine),
            clock=clock,
            sync_guild=get_settings().discord_guild_id,
        )
        return Plugin(
            senders=[DiscordSender(engine, RestPosts(bot.http), clock)],
            parts=[BotPart(bot, wiring.discord_token)],
        )
    http = HTTPClient(asyncio.get_running_loop())
    return Plugin(
        senders=[DiscordSender(engine, RestPosts(http), clock, http, wiring.discord_token)]
    )
