"""`paperboy bot sync`: the command that needs discord.py itself.

It joins the `paperboy` command through the `paperboy.cli` entry point, so the newsletter
package, which never imports discord, still offers it. (The bot runs inside `paperboy run`.)
"""

from __future__ import annotations

import asyncio

import discord
import typer
from paperboy_bot.client import Paperboy

from newsletter.cli_common import EXIT_UNAVAILABLE, fail, open_engine, out
from newsletter.config import get_settings
from newsletter.mail.links import links_for

bot_app = typer.Typer(help="The Discord bot's slash commands.", no_args_is_help=True)


@bot_app.command("sync")
def sync() -> None:
    """Register the slash commands with Discord now (`paperboy run` does this on start)."""
    settings = get_settings()
    if settings.discord_token is None:
        raise fail(
            "set PAPERBOY_DISCORD_TOKEN to the bot's token (see the README)", EXIT_UNAVAILABLE
        )
    engine = open_engine()

    async def run() -> tuple[int, list[int]]:
        bot = Paperboy(
            engine,
            links_for(engine),
            sync_guild=settings.discord_guild_id,
            sync_on_start=False,
        )
        async with bot:
            await bot.login(settings.discord_token.get_secret_value())
            count = len(await bot.sync_commands())
            return count, bot.cleared

    try:
        count, cleared = asyncio.run(run())
    except discord.LoginFailure as problem:
        raise fail(f"Discord refused the token: {problem}", EXIT_UNAVAILABLE) from None
    where = f"server {settings.discord_guild_id}" if settings.discord_guild_id else "every server"
    out.print(f"{count} slash command(s) registered for {where}")
    for guild_id in cleared:
        out.print(f"removed the commands synced to server {guild_id} alone (they showed twice)")


def register(app: typer.Typer) -> None:
    app.add_typer(bot_app, name="bot")
