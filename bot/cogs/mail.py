"""Email from Discord: /email set, /email verify, /email off (double opt-in throughout)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from paperboy_bot.embeds import clean
from paperboy_bot.replies import reply

from newsletter.people import email_off, set_email, verify_email

if TYPE_CHECKING:
    from paperboy_bot.client import Paperboy


class Email(commands.Cog):
    """Your daily mail: give an address, confirm it with the code mailed to it, or stop it."""

    email = app_commands.Group(name="email", description="Your daily paperboy mail.")

    def __init__(self, bot: Paperboy) -> None:
        self.bot = bot

    @email.command(name="set")
    @app_commands.describe(address="Where the daily mail should go")
    async def set_(self, interaction: discord.Interaction, address: str) -> None:
        """Get the daily mail at this address (a confirmation mail with a code comes first)."""
        sent = await self.bot.db(
            set_email, self.bot.engine, interaction.user.id, address, self.bot.clock()
        )
        shown = clean(address.strip(), 320)
        if sent:
            await reply(
                interaction,
                f"A confirmation mail is on its way to {shown}. Follow its link, or type "
                "its code with /email verify.",
            )
        else:
            await reply(
                interaction,
                f"A confirmation mail went to {shown} within the hour; use its code with "
                "/email verify (a new one can be sent in an hour).",
            )

    @email.command(name="verify")
    @app_commands.describe(code="The six digits in the confirmation mail")
    async def verify(self, interaction: discord.Interaction, code: str) -> None:
        """Confirm your address with the code from the confirmation mail."""
        address = await self.bot.db(
            verify_email,
            self.bot.engine,
            interaction.user.id,
            code,
            self.bot.links.code,
            self.bot.clock(),
        )
        await reply(interaction, f"Confirmed: the daily mail will go to {clean(address, 320)}.")

    @email.command(name="off")
    async def off(self, interaction: discord.Interaction) -> None:
        """Stop the daily mail (your topics stay; /email set starts it again)."""
        address = await self.bot.db(email_off, self.bot.engine, interaction.user.id)
        await reply(interaction, f"No more mail to {clean(address, 320)}.")
