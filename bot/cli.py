"""`paperboy deliver` and `paperboy bot ...`: the commands that need discord.py.

They join the `paperboy` command through the `paperboy.cli` entry point, so the newsletter
package, which never imports discord, still offers them.
"""

from __future__ import annotations

import asyncio

import discord
import typer
from discord.http import HTTPClient
from sqlalchemy import Engine

from bot.client import Paperboy
from bot.posting import post_due
from bot.transports import FilePosts, PostTransport, RestPosts
from newsletter.cli_common import EXIT_UNAVAILABLE, fail, open_engine, out, summary_table
from newsletter.cli_mail import configured_mail
from newsletter.config import get_settings
from newsletter.mail.daily import queue_daily
from newsletter.mail.links import links_for
from newsletter.mail.send import send_due
from newsletter.models import utcnow
from newsletter.outbox import Summary

bot_app = typer.Typer(help="The Discord bot: run it, or register its commands.")


def _token() -> str:
    token = get_settings().discord_token
    if token is None:
        raise fail(
            "set PAPERBOY_DISCORD_TOKEN to the bot's token (see the README)", EXIT_UNAVAILABLE
        )
    return token.get_secret_value()


async def _discord(engine: Engine) -> tuple[Summary, str]:
    """Send due posts and DMs: to Discord with a token, else into the outbox folder."""
    settings = get_settings()
    if settings.discord_token is None:
        files = FilePosts(settings.outbox_dir / "discord")
        return await post_due(engine, files), files.description
    http = HTTPClient(asyncio.get_running_loop())
    try:
        await http.static_login(settings.discord_token.get_secret_value())
        transport: PostTransport = RestPosts(http)
        return await post_due(engine, transport), transport.description
    except discord.LoginFailure as problem:
        raise fail(f"Discord refused the token: {problem}", EXIT_UNAVAILABLE) from None
    finally:
        await http.close()


def deliver() -> None:
    """One pass over everything due (mails, Discord posts and DMs); says where each went."""
    engine = open_engine()
    transport, composer = configured_mail(engine)
    queued = queue_daily(engine, utcnow())

    async def run() -> tuple[Summary, tuple[Summary, str]]:
        try:
            mail = await send_due(engine, transport, composer)
        finally:
            await transport.close()
        return mail, await _discord(engine)

    mail, (posts, where) = asyncio.run(run())
    title = f"deliver: {queued} daily mail(s) queued"
    out.print(summary_table(title, {"mail": mail, "discord": posts}))
    out.print(f"mail went to {transport.description}; Discord messages to {where}")


@bot_app.command("run")
def run_bot() -> None:
    """Connect to Discord: answer slash commands and send posts and DMs as they come due."""
    token = _token()
    engine = open_engine()
    settings = get_settings()
    bot = Paperboy(engine, links_for(engine), sync_guild=settings.discord_guild_id)
    try:
        bot.run(token, log_handler=None)
    except discord.LoginFailure as problem:
        raise fail(f"Discord refused the token: {problem}", EXIT_UNAVAILABLE) from None


@bot_app.command("sync")
def sync() -> None:
    """Register the slash commands with Discord now (`bot run` does this on start)."""
    token = _token()
    engine = open_engine()
    settings = get_settings()

    async def run() -> int:
        bot = Paperboy(
            engine,
            links_for(engine),
            sync_guild=settings.discord_guild_id,
            sync_on_start=False,
            post_every=None,
        )
        async with bot:
            await bot.login(token)
            return len(await bot.sync_commands())

    try:
        count = asyncio.run(run())
    except discord.LoginFailure as problem:
        raise fail(f"Discord refused the token: {problem}", EXIT_UNAVAILABLE) from None
    where = f"server {settings.discord_guild_id}" if settings.discord_guild_id else "every server"
    out.print(f"{count} slash command(s) registered for {where}")


def register(app: typer.Typer) -> None:
    app.command()(deliver)
    app.add_typer(bot_app, name="bot")
