"""Answering a slash command: always ephemeral, whatever state the interaction is in.

Discord waits 3 seconds for the first answer, then refuses it (10062 Unknown interaction)
though the command's work is done. A command whose work can take longer says `thinking`
first (an ephemeral "paperboy is thinking...") and answers with a follow-up, which the
interaction's token takes for 15 minutes.
"""

from __future__ import annotations

from typing import Any

import discord


async def thinking(interaction: discord.Interaction) -> None:
    """The first answer at once, ephemeral: the real one follows when the work is done."""
    await interaction.response.defer(ephemeral=True, thinking=True)


async def reply(interaction: discord.Interaction, message: str, **extra: Any) -> None:
    """Answer ephemerally, whether or not the command already answered or deferred."""
    extra = {"ephemeral": True, **extra}
    if interaction.response.is_done():
        await interaction.followup.send(message, **extra)
    else:
        await interaction.response.send_message(message, **extra)
