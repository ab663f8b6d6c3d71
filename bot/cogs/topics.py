"""Personal topics: /subscribe, /unsubscribe, /subscriptions and the /topics catalogue."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from paperboy_bot.embeds import COLOUR, clean
from paperboy_bot.replies import reply, thinking
from sqlmodel import Session, col, select

from newsletter.models import Subscriber, Subscription, Topic
from newsletter.subscriptions import Who, subscribe, topic_counts, unsubscribe
from newsletter.topics import catalogue

if TYPE_CHECKING:
    from paperboy_bot.client import Paperboy

CHOICES = 25  # Discord shows at most 25 autocomplete choices
PAGE = 10
CHOICE_CHARS = 100


def _own_topics(engine: object, discord_user_id: int) -> list[Topic]:
    with Session(engine) as session:  # type: ignore[arg-type]
        return list(
            session.exec(
                select(Topic)
                .join(Subscription, col(Subscription.topic_id) == col(Topic.id))
                .join(Subscriber, col(Subscriber.id) == col(Subscription.subscriber_id))
                .where(Subscriber.discord_user_id == discord_user_id)
                .order_by(col(Subscription.created_at).desc())
            )
        )


def _choices(names: list[str], typed: str) -> list[app_commands.Choice[str]]:
    wanted = typed.casefold().strip()
    seen: dict[str, None] = {}
    for name in names:
        if wanted in name.casefold() and len(name) <= CHOICE_CHARS:
            seen.setdefault(name)
    return [app_commands.Choice(name=n, value=n) for n in list(seen)[:CHOICES]]


class TopicPages(discord.ui.View):
    """The catalogue a page at a time; only the person who asked can turn the pages."""

    def __init__(self, owner: int, lines: list[str]) -> None:
        super().__init__(timeout=300)
        self.owner = owner
        self.lines = lines
        self.page = 0
        self.pages = max(1, -(-len(lines) // PAGE))
        self._update()

    def embed(self) -> discord.Embed:
        shown = self.lines[self.page * PAGE : (self.page + 1) * PAGE]
        embed = discord.Embed(title="Topics", description="\n".join(shown), colour=COLOUR)
        embed.set_footer(text=f"page {self.page + 1} of {self.pages} · /subscribe to follow one")
        return embed

    def _update(self) -> None:
        self.previous.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.owner

    async def _turn(self, interaction: discord.Interaction, step: int) -> None:
        self.page = min(max(0, self.page + step), self.pages - 1)
        self._update()
        await interaction.response.edit_message(embed=self.embed(), view=self)

    @discord.ui.button(label="Previous", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, _: discord.ui.Button[None]) -> None:
        await self._turn(interaction, -1)

    @discord.ui.button(label="Next", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, _: discord.ui.Button[None]) -> None:
        await self._turn(interaction, 1)


class Topics(commands.Cog):
    """Follow topics from Discord; papers on them come in the daily mail and in DMs."""

    def __init__(self, bot: Paperboy) -> None:
        self.bot = bot

    @app_commands.command(name="subscribe")
    @app_commands.describe(topic='A catalogue topic, or a query of your own: ICL OR "in-context"')
    async def subscribe(self, interaction: discord.Interaction, topic: str) -> None:
        """Follow a topic or a query of your own."""
        await thinking(interaction)  # a new query is matched against recent digests first
        found = await self.bot.db(
            subscribe, self.bot.engine, Who(discord_user_id=interaction.user.id), topic
        )
        await reply(interaction, f"You now follow **{clean(found.name, 200)}**.")

    @subscribe.autocomplete("topic")
    async def _subscribe_topics(
        self, interaction: discord.Interaction, typed: str
    ) -> list[app_commands.Choice[str]]:
        own = await self.bot.db(_own_topics, self.bot.engine, interaction.user.id)
        mine = [t.name for t in own if not t.builtin]
        return _choices(mine + [entry.name for entry in catalogue()], typed)

    @app_commands.command(name="unsubscribe")
    @app_commands.describe(topic="One of the topics you follow")
    async def unsubscribe(self, interaction: discord.Interaction, topic: str) -> None:
        """Stop following a topic."""
        found = await self.bot.db(
            unsubscribe, self.bot.engine, Who(discord_user_id=interaction.user.id), topic
        )
        await reply(interaction, f"You no longer follow **{clean(found.name, 200)}**.")

    @unsubscribe.autocomplete("topic")
    async def _followed_topics(
        self, interaction: discord.Interaction, typed: str
    ) -> list[app_commands.Choice[str]]:
        own = await self.bot.db(_own_topics, self.bot.engine, interaction.user.id)
        return _choices([t.name for t in own], typed)

    @app_commands.command(name="subscriptions")
    async def subscriptions(self, interaction: discord.Interaction) -> None:
        """The topics you follow."""
        own = await self.bot.db(_own_topics, self.bot.engine, interaction.user.id)
        if not own:
            await reply(interaction, "You follow no topics yet: try /subscribe.")
            return
        lines = "\n".join(f"• {clean(t.name, 200)}" for t in sorted(own, key=lambda t: t.name))
        await reply(interaction, f"You follow {len(own)} topic(s):\n{lines}"[:2000])

    @app_commands.command(name="topics")
    async def topics(self, interaction: discord.Interaction) -> None:
        """The topic catalogue, with how many people follow each."""
        await thinking(interaction)  # counts every subscription
        counts = await self.bot.db(topic_counts, self.bot.engine)
        described = {entry.slug: entry.description for entry in catalogue()}
        lines = [
            f"**{clean(c.topic.name, 100)}** · {c.subscribers} follower(s)\n"
            f"{clean(described.get(c.topic.slug or '', ''), 200)}"
            for c in counts
            if c.topic.builtin
        ]
        view = TopicPages(interaction.user.id, lines)
        await interaction.followup.send(embed=view.embed(), view=view, ephemeral=True)
