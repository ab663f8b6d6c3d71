"""Server feeds: /feed add, remove, list, test. For members with Manage Server only.

Discord hides the commands from other members (`default_permissions`), and each command
checks the permission again when it runs, since a server can override what is shown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import discord
from discord import app_commands
from discord.ext import commands
from paperboy_bot.embeds import clean, pack, section_embeds
from paperboy_bot.replies import reply, thinking

from newsletter.feeds import FeedError, add_feed, feed_sample, list_feeds, remove_feed

if TYPE_CHECKING:
    from paperboy_bot.client import Paperboy

TEST_PAPERS = 3
NO_MENTIONS = discord.AllowedMentions.none()


def _can_post(channel: discord.abc.GuildChannel, me: discord.Member) -> str | None:
    """What the bot lacks to post embeds in the channel, or None."""
    allowed = channel.permissions_for(me)
    missing = [
        name
        for name, ok in (
            ("View Channel", allowed.view_channel),
            ("Send Messages", allowed.send_messages),
            ("Embed Links", allowed.embed_links),
        )
        if not ok
    ]
    return f"I need {', '.join(missing)} in {channel.mention}" if missing else None


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class FeedCommands(commands.GroupCog, group_name="feed"):
    """Post the papers of a topic to a channel whenever a digest lands."""

    def __init__(self, bot: Paperboy) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:  # type: ignore[override]
        """Every /feed command, checked when run: a server may show them to anyone."""
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    @app_commands.command(name="add")
    @app_commands.describe(
        channel="Where to post",
        topic="A catalogue topic or a query",
        post_format="compact: a list of titles (default); full: an embed per paper",
    )
    @app_commands.rename(post_format="format")
    async def add(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel,
        topic: str,
        post_format: Literal["compact", "full"] | None = None,
    ) -> None:
        """Post a topic's papers to a channel whenever a digest lands."""
        assert interaction.guild is not None
        lacking = _can_post(channel, interaction.guild.me)
        if lacking:
            raise FeedError(lacking)
        found = await self.bot.db(
            add_feed,
            self.bot.engine,
            interaction.guild.id,
            channel.id,
            topic,
            interaction.user.id,
            post_format,
        )
        shape = f" ({post_format})" if post_format else ""
        await reply(interaction, f"{channel.mention} now gets **{clean(found.name, 200)}**{shape}.")

    @app_commands.command(name="remove")
    @app_commands.describe(channel="The channel", topic="The topic it follows")
    async def remove(
        self, interaction: discord.Interaction, channel: discord.TextChannel, topic: str
    ) -> None:
        """Stop posting a topic to a channel."""
        assert interaction.guild is not None
        found = await self.bot.db(
            remove_feed, self.bot.engine, interaction.guild.id, channel.id, topic
        )
        await reply(interaction, f"{channel.mention} no longer gets **{clean(found.name, 200)}**.")

    @app_commands.command(name="list")
    async def list_(self, interaction: discord.Interaction) -> None:
        """This server's feeds, and why any of them stopped."""
        assert interaction.guild is not None
        feeds = await self.bot.db(list_feeds, self.bot.engine, interaction.guild.id)
        if not feeds:
            await reply(interaction, "No feeds here yet: /feed add.")
            return
        lines = [
            f"<#{f.feed.channel_id}> · {clean(f.topic.name, 100)} · {f.feed.post_format}"
            + (
                f" · **stopped**: {clean(f.feed.disabled_reason, 200)}"
                if f.feed.disabled_reason
                else ""
            )
            for f in feeds
        ]
        await reply(interaction, "\n".join(lines)[:2000])

    @app_commands.command(name="test")
    @app_commands.describe(channel="The channel to test")
    async def test(self, interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        """Post a sample from the newest digest to a feed's channel, to check it works."""
        assert interaction.guild is not None
        await thinking(interaction)  # reads the newest digest, then posts to the channel
        feeds = [
            f
            for f in await self.bot.db(list_feeds, self.bot.engine, interaction.guild.id)
            if f.feed.channel_id == channel.id
        ]
        if not feeds:
            raise FeedError(f"{channel.mention} has no feed: /feed add first")
        sections = await self.bot.db(feed_sample, self.bot.engine, feeds[0])
        embeds = section_embeds(sections)[:TEST_PAPERS]
        header = f"Test post for **{clean(feeds[0].topic.name, 200)}**" + (
            "" if embeds else ": the newest digest has nothing on it"
        )
        try:
            await channel.send(
                header, embeds=pack(embeds)[0], allowed_mentions=discord.AllowedMentions.none()
            )
        except discord.HTTPException as err:
            raise FeedError(
                f"I could not post in {channel.mention}: {err.text or err.status}"
            ) from None
        await reply(interaction, f"Posted a test to {channel.mention}.")
