"""`paperboy feeds ...`: channel feeds for admins and scripts (the bot's /feed does the same)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer
from rich.table import Table

from newsletter.cli_common import EXIT_BAD_INPUT, fail, open_engine, out
from newsletter.feeds import FeedError, add_feed, list_feeds, remove_feed
from newsletter.query import QueryError

feeds_app = typer.Typer(help="Discord channel feeds: add, list, remove.", no_args_is_help=True)

Guild = Annotated[int, typer.Option("--guild", help="The server's id.")]
Channel = Annotated[int, typer.Option("--channel", help="The channel's id.")]


class Format(StrEnum):
    """What `--format` takes: the post formats a feed can have (`POST_FORMATS`)."""

    compact = "compact"
    full = "full"


TopicText = Annotated[str, typer.Argument(help="Catalogue topic (slug or name) or a query.")]


@feeds_app.command("add")
def add(
    guild: Guild,
    channel: Channel,
    topic: TopicText,
    post_format: Annotated[
        Format | None,
        typer.Option(
            "--format",
            help="compact: a list of linked titles, at most 2 messages (a new feed's "
            "default); full: an embed per paper. Given for a feed that exists, switches it.",
        ),
    ] = None,
) -> None:
    """Post a topic's papers to a channel whenever a digest is matched."""
    try:
        found = add_feed(
            open_engine(), guild, channel, topic, post_format=post_format and post_format.value
        )
    except (FeedError, QueryError) as problem:
        raise fail(str(problem), EXIT_BAD_INPUT) from None
    shape = f" ({post_format.value})" if post_format else ""
    out.print(f"channel {channel} now follows {found.name!r}{shape}")


@feeds_app.command("remove")
def remove(guild: Guild, channel: Channel, topic: TopicText) -> None:
    """Stop a channel's feed of one topic."""
    try:
        found = remove_feed(open_engine(), guild, channel, topic)
    except (FeedError, QueryError) as problem:
        raise fail(str(problem), EXIT_BAD_INPUT) from None
    out.print(f"channel {channel} no longer follows {found.name!r}")


@feeds_app.command("list")
def list_(
    guild: Annotated[int | None, typer.Option("--guild", help="Only this server.")] = None,
) -> None:
    """Every channel feed, with why it stopped if Discord refused it."""
    feeds = list_feeds(open_engine(), guild)
    table = Table(title=f"{len(feeds)} channel feed(s)")
    for name in ("server", "channel", "topic", "format", "state"):
        table.add_column(name, overflow="fold")
    for item in feeds:
        reason = item.feed.disabled_reason
        table.add_row(
            str(item.feed.guild_id),
            str(item.feed.channel_id),
            item.topic.name,
            item.feed.post_format,
            f"disabled: {reason}" if reason else "posting",
        )
    out.print(table)
