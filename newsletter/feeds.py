"""Channel feeds and Discord direct messages: who gets a post when a digest lands.

Everything here is data: which channel follows which topic, which posts and DMs a digest
queues in the outbox, and what each holds. How a post reaches Discord is the bot's business
(`bot/posting.py`); this module never imports `discord`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, func, update
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.models import (
    ChannelFeed,
    Delivery,
    Digest,
    PaperMatch,
    Subscriber,
    Subscription,
    Topic,
    utcnow,
)
from newsletter.outbox import Status, enqueue
from newsletter.sections import Section, Window, followed_topics, sections_for
from newsletter.topics import find_topic, topic_for

POST_KINDS = ("post", "dm", "notice")
# How a feed posts a digest: `compact`, a list of linked titles in at most two messages (the
# default, and what DMs get), or `full`, an embed per paper.
POST_FORMATS = ("compact", "full")


class FeedError(ValueError):
    """A feed request that cannot be carried out; nothing was written.

    A refusal about one channel keeps its id apart from the words, so each front end names
    the channel its own way: `str()` says "channel 2" (the CLI), `naming()` takes the
    bot's form (a channel mention)."""

    def __init__(self, message: str, channel_id: int | None = None) -> None:
        self.message, self.channel_id = message, channel_id
        super().__init__(self.naming(lambda channel: f"channel {channel}"))

    def naming(self, channel: Callable[[int], str]) -> str:
        """The refusal with its channel named by `channel(id)`."""
        if self.channel_id is None:
            return self.message
        return f"{channel(self.channel_id)} {self.message}"


@dataclass(frozen=True)
class Feed:
    feed: ChannelFeed
    topic: Topic


def add_feed(
    engine: Engine,
    guild_id: int,
    channel_id: int,
    text: str,
    added_by: int | None = None,
    post_format: str | None = None,
) -> Topic:
    """Make a channel follow a topic; adding a disabled feed again turns it back on, and
    adding a feed with another `post_format` switches it (unset: compact for a new feed,
    unchanged for an existing one)."""
    if guild_id <= 0 or channel_id <= 0:
        raise FeedError("guild and channel ids are positive numbers")
    if post_format is not None and post_format not in POST_FORMATS:
        raise FeedError(f"format {post_format!r} is not one of {', '.join(POST_FORMATS)}")
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        topic, _ = topic_for(session, text)
        feed = session.exec(
            select(ChannelFeed).where(
                ChannelFeed.channel_id == channel_id, ChannelFeed.topic_id == topic.id
            )
        ).first()
        if feed is not None and feed.guild_id != guild_id:
            raise FeedError("belongs to another server", channel_id)
        switching = feed is not None and post_format not in (None, feed.post_format)
        if feed is not None and feed.disabled_reason is None and not switching:
            raise FeedError(f"already follows {topic.name!r}", channel_id)
        feed = feed or ChannelFeed(guild_id=guild_id, channel_id=channel_id, topic_id=topic.id)
        feed.post_format = post_format or feed.post_format or "compact"
        feed.disabled_reason = feed.disabled_at = None
        feed.added_by = added_by or feed.added_by
        session.add(feed)
        return topic


def remove_feed(engine: Engine, guild_id: int, channel_id: int, text: str) -> Topic:
    """Stop a channel's feed of one topic; only a feed of that server can be removed."""
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        topic = find_topic(session, text)
        feed = (
            session.exec(
                select(ChannelFeed).where(
                    ChannelFeed.guild_id == guild_id,
                    ChannelFeed.channel_id == channel_id,
                    ChannelFeed.topic_id == topic.id,
                )
            ).first()
            if topic is not None
            else None
        )
        if feed is None or topic is None:
            raise FeedError(f"does not follow {text.strip()!r}", channel_id)
        session.delete(feed)
        return topic


def list_feeds(engine: Engine, guild_id: int | None = None) -> list[Feed]:
    with Session(engine) as session:
        query = (
            select(ChannelFeed, Topic)
            .join(Topic, col(Topic.id) == col(ChannelFeed.topic_id))
            .order_by(col(ChannelFeed.guild_id), col(ChannelFeed.channel_id), col(Topic.name))
        )
        if guild_id is not None:
            query = query.where(ChannelFeed.guild_id == guild_id)
        return [Feed(feed, topic) for feed, topic in session.exec(query)]


def _row(kind: str, key: str, now: datetime, **ids: int | None) -> dict[str, object]:
    return {
        "key": key,
        "kind": kind,
        "status": Status.PENDING,
        "attempts": 0,
        "progress": 0,
        "next_attempt_at": now,
        "created_at": now,
        **ids,
    }


def disable_feed(session: Session, feed_id: int, reason: str, now: datetime) -> bool:
    """Stop posting to a channel Discord refused for good, and queue one notice to whoever
    added the feed. True when this call disabled it (a second refusal tells nobody again)."""
    changed = session.execute(
        update(ChannelFeed)
        .where(col(ChannelFeed.id) == feed_id, col(ChannelFeed.disabled_reason).is_(None))
        .values(disabled_reason=reason[:500], disabled_at=now)
    ).rowcount
    if not changed:
        return False
    session.execute(
        update(Delivery)
        .where(col(Delivery.channel_feed_id) == feed_id, col(Delivery.status) == Status.PENDING)
        .values(status=Status.SKIPPED, last_error="feed disabled")
    )
    stamp = now.isoformat(timespec="seconds")
    enqueue(session, [_row("notice", f"notice:{feed_id}:{stamp}", now, channel_feed_id=feed_id)])
    return True


def queue_posts(engine: Engine, digest_id: int, now: datetime | None = None) -> int:
    """Queue a digest's posts: one per enabled feed whose topic it matched, and one DM per
    person who asked for DMs and has matches. Queueing again adds nothing (unique keys)."""
    now = now or utcnow()
    matched = select(PaperMatch.topic_id).where(PaperMatch.digest_id == digest_id).distinct()
    with Session(writing(engine)) as session, session.begin():
        feeds = session.exec(
            select(ChannelFeed.id).where(
                col(ChannelFeed.topic_id).in_(matched), col(ChannelFeed.disabled_reason).is_(None)
            )
        ).all()
        readers = session.exec(
            select(Subscriber.id)
            .where(
                col(Subscriber.discord_dm).is_(True),
                col(Subscriber.discord_user_id).is_not(None),
                col(Subscriber.id).in_(
                    select(Subscription.subscriber_id).where(
                        col(Subscription.topic_id).in_(matched)
                    )
                ),
            )
            .order_by(col(Subscriber.id))
        ).all()
        rows = [
            _row("post", f"post:{f}:{digest_id}", now, channel_feed_id=f, digest_id=digest_id)
            for f in feeds
        ] + [
            _row("dm", f"dm:{r}:{digest_id}", now, subscriber_id=r, digest_id=digest_id)
            for r in readers
        ]
        return enqueue(session, rows)


@dataclass(frozen=True)
class PostContent:
    """What one post, DM or notice says and where it goes (a channel, or a user's DMs)."""

    channel_id: int | None
    user_id: int | None
    header: str
    sections: list[Section]
    # A notice is about a channel: the bot names it after the header (the header is text
    # made inert for Discord, a channel mention is markup).
    about_channel: int | None = None
    post_format: str = "compact"
    # Where a reader finds the papers a compact post had no room for (the digest's page).
    more_url: str | None = None


# What people call each source; a feed's own title (arXiv's) wins where there is one.
SOURCE_NAMES = {
    "hf-daily-page-text": "Hugging Face Daily Papers",
    "hf-daily-papers-json": "Hugging Face Daily Papers",
    "hf-daily-papers-html": "Hugging Face Daily Papers",
    "arxiv-rss": "arXiv",
    "arxiv-atom": "arXiv",
    "arxiv-atom-listing": "arXiv",
}


# A feed's own title is the source's text: cut, so a header always shows topic and count.
LABEL_CHARS = 120


def digest_label(digest: Digest) -> str:
    name = digest.title or SOURCE_NAMES.get(digest.source_format, digest.source_format)
    if len(name) > LABEL_CHARS:
        name = name[: LABEL_CHARS - 1].rstrip() + "…"
    return f"{name} · {digest.digest_date.isoformat()}"


def source_page(digest: Digest) -> str | None:
    """The page a person reads the digest on: Hugging Face's day page, arXiv's listing of
    the feed's category, or the web address it was fetched from; None for a local file."""
    day = digest.digest_date.isoformat()
    if digest.source_format.startswith("hf-daily"):
        return f"https://huggingface.co/papers/date/{day}"
    found = re.match(
        r"https?://(?:rss\.|export\.)?arxiv\.org/(?:rss|atom)/([\w.+-]+)", digest.origin
    )
    if found:
        return f"https://arxiv.org/list/{found.group(1)}/new"
    return digest.origin if re.match(r"https?://\S+$", digest.origin) else None


def contents(session: Session, deliveries: list[Delivery]) -> dict[int, PostContent | str]:
    """Each delivery's content, or why there is nothing to send any more (as a string)."""
    feed_ids = [d.channel_feed_id for d in deliveries if d.channel_feed_id is not None]
    feeds = {
        f.id: (f, t)
        for f, t in session.exec(
            select(ChannelFeed, Topic)
            .join(Topic, col(Topic.id) == col(ChannelFeed.topic_id))
            .where(col(ChannelFeed.id).in_(feed_ids))
        )
    }
    reader_ids = [d.subscriber_id for d in deliveries if d.subscriber_id is not None]
    readers = {
        s.id: s for s in session.exec(select(Subscriber).where(col(Subscriber.id).in_(reader_ids)))
    }
    topics = followed_topics(session, reader_ids)
    windows = []
    for d in deliveries:
        if d.kind == "post" and d.channel_feed_id in feeds and d.digest_id is not None:
            topic = feeds[d.channel_feed_id][1]
            windows.append(Window(d.id or 0, (topic.id or 0,), d.digest_id - 1, d.digest_id))
        elif d.kind == "dm" and d.subscriber_id is not None and d.digest_id is not None:
            found = topics.get(d.subscriber_id, ())
            windows.append(Window(d.id or 0, found, d.digest_id - 1, d.digest_id))
    sections = sections_for(session, windows)
    digests = {
        g.id: g
        for g in session.exec(
            select(Digest).where(col(Digest.id).in_({d.digest_id for d in deliveries}))
        )
    }
    result: dict[int, PostContent | str] = {}
    for d in deliveries:
        assert d.id is not None
        result[d.id] = _content(d, feeds, readers, digests, sections.get(d.id, []))
    return result


def _content(
    delivery: Delivery,
    feeds: dict[int | None, tuple[ChannelFeed, Topic]],
    readers: dict[int | None, Subscriber],
    digests: dict[int | None, Digest],
    sections: list[Section],
) -> PostContent | str:
    feed, topic = feeds.get(delivery.channel_feed_id, (None, None))
    if delivery.kind == "notice":
        if feed is None or feed.added_by is None:
            return "nobody to tell: the feed is gone or was added from the command line"
        return PostContent(
            None,
            feed.added_by,
            f"I stopped posting {topic.name if topic else 'papers'} to a channel: "
            f"{feed.disabled_reason}. Fix that, then run /feed add again.",
            [],
            about_channel=feed.channel_id,
        )
    digest = digests.get(delivery.digest_id)
    if digest is None:
        return "the digest is gone"
    if not sections:
        return "no matched papers"
    count = sum(len(s.papers) for s in sections)
    papers = f"{count} paper{'s' if count != 1 else ''}"
    if delivery.kind == "post":
        if feed is None or topic is None or feed.disabled_reason is not None:
            return "the feed was removed or disabled"
        header = f"{digest_label(digest)} · {topic.name}: {papers}"
        return PostContent(
            feed.channel_id,
            None,
            header,
            sections,
            post_format=feed.post_format,
            more_url=source_page(digest),
        )
    reader = readers.get(delivery.subscriber_id)
    if reader is None or not reader.discord_dm or reader.discord_user_id is None:
        return "the reader turned DMs off"
    header = f"{digest_label(digest)}: {papers} on your topics"
    return PostContent(None, reader.discord_user_id, header, sections, more_url=source_page(digest))


def feed_sample(engine: Engine, feed: Feed) -> list[Section]:
    """The feed topic's papers in the newest matched digest: what /feed test posts."""
    with Session(engine) as session:
        newest = session.exec(select(func.max(PaperMatch.digest_id))).one()
        if newest is None or feed.topic.id is None:
            return []
        window = Window(0, (feed.topic.id,), newest - 1, newest)
        return sections_for(session, [window]).get(0, [])
