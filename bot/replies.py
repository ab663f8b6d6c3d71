"""Answering a slash command: always ephemeral, whatever state the interaction is in."""

from __future__ import annotations

from typing import Any

import discord


async def reply(interaction: discord.Interaction, message: str, **extra: Any) -> None:
    """Answer ephemerally, whether or not the command already answered or deferred."""
    extra = {"ephemeral": True, **extra}
    if interaction.response.is_done():
        await interaction.followup.send(message, **extra)
    else:
        await interaction.response.send_message(message, **extra)
