"""Looking papers up: /digest (a day's papers on your topics) and /search (any query)."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands
from paperboy_bot.embeds import clean, pack, paper_embed, section_embeds
from paperboy_bot.replies import reply, thinking

from newsletter.people import papers_of_day
from newsletter.pipeline import SEARCH_WINDOW, PaperSearch
from newsletter.sections import PaperView
from newsletter.subscriptions import SubscriptionError

if TYPE_CHECKING:
    from paperboy_bot.client import Paperboy

SEARCH_RESULTS = 10


async def _show(interaction: discord.Interaction, header: str, embeds: list[discord.Embed]) -> None:
    """The first message's worth of papers, and how many more there were."""
    first = pack(embeds)[0]
    more = len(embeds) - len(first)
    note = f"\n…and {more} more (your daily mail has them all)" if more else ""
    await reply(interaction, clean(header, 1800) + note, embeds=first)


class Papers(commands.Cog):
    """Stored papers on demand, shown only to the person who asked."""

    def __init__(self, bot: Paperboy) -> None:
        self.bot = bot
        self.papers = PaperSearch(bot.engine)

    @app_commands.command(name="digest")
    @app_commands.describe(day="A digest's date, YYYY-MM-DD (default: the newest digest)")
    async def digest(self, interaction: discord.Interaction, day: str | None = None) -> None:
        """The papers on your topics in a day's digests."""
        try:
            wanted = date.fromisoformat(day.strip()) if day else None
        except ValueError:
            raise SubscriptionError(f"{day!r} is not a date like 2026-11-25") from None
        await thinking(interaction)  # a day's digests and all their matches
        label, sections = await self.bot.db(
            papers_of_day, self.bot.engine, interaction.user.id, wanted
        )
        if not sections:
            await reply(interaction, f"{clean(label, 1800)}: nothing on your topics.")
            return
        count = sum(len(s.papers) for s in sections)
        await _show(
            interaction, f"{label}: {count} paper(s) on your topics", section_embeds(sections)
        )

    @app_commands.command(
        name="search",
        description=f"Search the newest {SEARCH_WINDOW:,} stored papers, best match first",
    )
    @app_commands.describe(query='Words, "phrases", AND/OR/NOT, title:word')
    async def search(self, interaction: discord.Interaction, query: str) -> None:
        """The newest papers only, tokenised once per digest: every paper ever stored, on
        every search, would cost seconds once a few months of arXiv listings are in."""
        await thinking(interaction)
        hits = await self.bot.db(self.papers.search, query, SEARCH_RESULTS)
        if not hits:
            await reply(interaction, "No stored paper matches that query.")
            return
        embeds = [paper_embed(PaperView.of(hit.paper, hit.terms, hit.score)) for hit in hits]
        await _show(interaction, f"Best {len(hits)} match(es) for {query}", embeds)
