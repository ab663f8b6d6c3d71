"""Posting while the bot runs: every `post_every` seconds, send the due posts and DMs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from discord.ext import commands, tasks

from bot.posting import post_due
from bot.transports import RestPosts

if TYPE_CHECKING:
    from bot.client import Paperboy

log = logging.getLogger(__name__)


class Posting(commands.Cog):
    """Sends what the outbox holds for Discord through the bot's own HTTP client."""

    def __init__(self, bot: Paperboy) -> None:
        self.bot = bot
        self.transport = RestPosts(bot.http)
        if bot.post_every:
            self.loop.change_interval(seconds=bot.post_every)
            self.loop.start()

    async def cog_unload(self) -> None:
        self.loop.cancel()

    @tasks.loop(seconds=30)
    async def loop(self) -> None:
        summary = await post_due(self.bot.engine, self.transport, clock=self.bot.clock)
        if summary.sent or summary.failed or summary.retried:
            log.info(
                "discord: %d sent, %d retried, %d failed",
                summary.sent,
                summary.retried,
                summary.failed,
            )

    @loop.before_loop
    async def _ready(self) -> None:
        await self.bot.wait_until_ready()

    @loop.error
    async def _failed(self, error: BaseException) -> None:
        log.error("posting failed; trying again next round", exc_info=error)
        self.loop.restart()
