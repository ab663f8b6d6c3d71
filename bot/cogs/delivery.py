"""When and how papers reach you: /delivery hour and /delivery dm."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Literal
from zoneinfo import available_timezones

import discord
from discord import app_commands
from discord.ext import commands
from paperboy_bot.replies import reply

from newsletter.people import set_delivery, set_dm

if TYPE_CHECKING:
    from paperboy_bot.client import Paperboy

CHOICES = 25


@cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


class Delivery(commands.Cog):
    """Your delivery settings: the local hour of the daily mail, and DMs per digest."""

    delivery = app_commands.Group(name="delivery", description="When papers reach you.")

    def __init__(self, bot: Paperboy) -> None:
        self.bot = bot

    @delivery.command(name="hour")
    @app_commands.describe(
        hour="Local hour of the daily mail, 0 to 23", timezone="Your time zone, e.g. Europe/Paris"
    )
    async def hour(
        self, interaction: discord.Interaction, hour: app_commands.Range[int, 0, 23], timezone: str
    ) -> None:
        """Set the local hour your daily mail arrives."""
        await self.bot.db(set_delivery, self.bot.engine, interaction.user.id, hour, timezone)
        await reply(interaction, f"Your daily mail now comes at {hour:02d}:00, {timezone} time.")

    @hour.autocomplete("timezone")
    async def _timezones(
        self, interaction: discord.Interaction, typed: str
    ) -> list[app_commands.Choice[str]]:
        wanted = typed.casefold().replace(" ", "_")
        found = [zone for zone in _zones() if wanted in zone.casefold()]
        return [app_commands.Choice(name=zone, value=zone) for zone in found[:CHOICES]]

    @delivery.command(name="dm")
    @app_commands.describe(state="on: a DM whenever a digest has papers on your topics")
    async def dm(self, interaction: discord.Interaction, state: Literal["on", "off"]) -> None:
        """Get (or stop) a direct message whenever a digest has papers on your topics."""
        await self.bot.db(set_dm, self.bot.engine, interaction.user.id, state == "on")
        if state == "on":
            await reply(interaction, "You will get a DM whenever a digest has papers for you.")
        else:
            await reply(interaction, "No more DMs; your daily mail is unchanged.")
