"""Tables. Times are naive UTC: SQLite keeps no time zone, so none is stored anywhere."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Digest(SQLModel, table=True):
    """One ingested digest file or download; its content hash makes ingesting idempotent."""

    id: int | None = Field(default=None, primary_key=True)
    content_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    source_format: str = Field(sa_column=Column(String(32), nullable=False))
    origin: str = Field(sa_column=Column(Text, nullable=False))
    title: str | None = Field(default=None, sa_column=Column(Text))
    digest_date: date = Field(index=True)
    date_note: str = Field(sa_column=Column(Text, nullable=False))
    """Where the date came from, e.g. the year inferred for a page capture that shows none."""
    paper_count: int
    ingested_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=False), nullable=False)
    )


class Paper(SQLModel, table=True):
    """A paper stored once however many digests list it: by arXiv id, else by normalised title."""

    __table_args__ = (
        # Title-only papers (page captures) are unique by title; papers with an arXiv id may
        # share a title, as real papers sometimes do.
        Index(
            "uq_paper_title_key_without_arxiv_id",
            "title_key",
            unique=True,
            sqlite_where=text("arxiv_id IS NULL"),
            postgresql_where=text("arxiv_id IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    arxiv_id: str | None = Field(default=None, sa_column=Column(String(64), unique=True))
    version: int | None = None
    title: str = Field(sa_column=Column(Text, nullable=False))
    title_key: str = Field(sa_column=Column(String(500), nullable=False, index=True))
    abstract: str = Field(sa_column=Column(Text, nullable=False))
    authors: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    categories: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    url: str = Field(sa_column=Column(Text, nullable=False))
    upvotes: int | None = None
    first_seen_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=False), nullable=False)
    )
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=False), nullable=False)
    )


class DigestPaper(SQLModel, table=True):
    """A paper's place in one digest, with what that digest said about it."""

    __tablename__ = "digest_paper"
    __table_args__ = (UniqueConstraint("digest_id", "position"),)

    digest_id: int = Field(
        sa_column=Column(Integer, ForeignKey("digest.id", ondelete="CASCADE"), primary_key=True)
    )
    paper_id: int = Field(
        sa_column=Column(Integer, ForeignKey("paper.id"), primary_key=True, index=True)
    )
    position: int
    announce_type: str | None = Field(default=None, sa_column=Column(String(32)))
    upvotes: int | None = None


class PaperEmbedding(SQLModel, table=True):
    """A paper's title-and-abstract vector (float32 bytes), computed once when it is first
    matched. `model` names the model and its file's digest: a vector from another model is
    recomputed, never compared with this one's."""

    __tablename__ = "paper_embedding"

    paper_id: int = Field(
        sa_column=Column(Integer, ForeignKey("paper.id", ondelete="CASCADE"), primary_key=True)
    )
    model: str = Field(sa_column=Column(String(200), nullable=False))
    dimension: int
    vector: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class Topic(SQLModel, table=True):
    """A named query. Catalogue topics have a slug; a subscriber's own query is a topic too,
    shared by everyone whose query means the same (same `canonical` form)."""

    id: int | None = Field(default=None, primary_key=True)
    slug: str | None = Field(default=None, sa_column=Column(String(64), unique=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    query: str = Field(sa_column=Column(Text, nullable=False))
    canonical: str = Field(sa_column=Column(String(2000), nullable=False, unique=True))
    builtin: bool = False
    # The score a paper needs to count as being about the topic (see `matcher.match`).
    min_score: float = Field(
        default=1.0, sa_column=Column(Float, nullable=False, server_default=text("1"))
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=False), nullable=False)
    )


class Subscriber(SQLModel, table=True):
    """A person, known by a Discord user id, an email address, or both."""

    __table_args__ = (
        CheckConstraint(
            "email IS NOT NULL OR discord_user_id IS NOT NULL", name="ck_subscriber_has_address"
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str | None = Field(default=None, sa_column=Column(String(320), unique=True))
    discord_user_id: int | None = Field(default=None, sa_column=Column(BigInteger, unique=True))
    timezone: str = Field(default="UTC", sa_column=Column(String(64), nullable=False))
    delivery_hour: int = Field(default=8, sa_column=Column(Integer, nullable=False))
    # Mail goes only to a `confirmed` address; see `EmailStatus` for the others.
    email_status: str | None = Field(default=None, sa_column=Column(String(16)))
    email_confirmed_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    confirmation_sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    # Wrong codes typed since the latest confirmation mail (see `optin.MAX_CODE_ATTEMPTS`).
    code_attempts: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    # Hard (5xx) failures in a row; the address is suspended at `MAX_HARD_FAILURES`.
    hard_failures: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    # Soft bounces (delivery status notifications with a 4.x.x status) received: counted for
    # the admin to see, never a reason to stop mail on their own.
    soft_bounces: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    # A Discord direct message whenever a digest has papers on the person's topics.
    discord_dm: bool = Field(
        default=False, sa_column=Column(Boolean, nullable=False, server_default=false())
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=False), nullable=False)
    )


class Subscription(SQLModel, table=True):
    subscriber_id: int = Field(
        sa_column=Column(Integer, ForeignKey("subscriber.id", ondelete="CASCADE"), primary_key=True)
    )
    topic_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=False), nullable=False)
    )


class ChannelFeed(SQLModel, table=True):
    """A Discord channel that gets a topic's papers whenever a digest lands."""

    __tablename__ = "channel_feed"
    __table_args__ = (UniqueConstraint("channel_id", "topic_id"),)

    id: int | None = Field(default=None, primary_key=True)
    guild_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    channel_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    topic_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("topic.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    added_by: int | None = Field(default=None, sa_column=Column(BigInteger))
    """The Discord user who added the feed: told when it stops working."""
    post_format: str = Field(
        default="compact",
        sa_column=Column(String(16), nullable=False, server_default="compact"),
    )
    """How a digest's papers are posted: `compact` (a list of linked titles, at most two
    messages) or `full` (an embed per paper, as many messages as that takes)."""
    # Set when Discord refused the channel for good (gone, or no permission to post): the
    # feed gets nothing until someone adds it again.
    disabled_reason: str | None = Field(default=None, sa_column=Column(Text))
    disabled_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=False), nullable=False)
    )


class PaperMatch(SQLModel, table=True):
    """A paper of a digest that a topic selected, with its score and the terms that hit."""

    __tablename__ = "paper_match"

    digest_id: int = Field(
        sa_column=Column(Integer, ForeignKey("digest.id", ondelete="CASCADE"), primary_key=True)
    )
    topic_id: int = Field(
        sa_column=Column(
            Integer, ForeignKey("topic.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )
    paper_id: int = Field(sa_column=Column(Integer, ForeignKey("paper.id"), primary_key=True))
    score: float
    terms: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class Delivery(SQLModel, table=True):
    """One message to send: the outbox row that makes sending crash-safe.

    `key` is unique, so a day's mail or a digest's post is queued once however often the
    scheduler runs; a sender claims the row (`sending`, with a lease), sends, then marks it
    `sent`. A sender that dies leaves a claim whose lease runs out and another sender retries
    it, with the same Message-ID, so a duplicate is recognisable.
    """

    __table_args__ = (Index("ix_delivery_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(sa_column=Column(String(200), nullable=False, unique=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    subscriber_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("subscriber.id", ondelete="CASCADE"), index=True),
    )
    channel_feed_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("channel_feed.id", ondelete="CASCADE"), index=True),
    )
    digest_id: int | None = Field(
        default=None, sa_column=Column(Integer, ForeignKey("digest.id", ondelete="CASCADE"))
    )
    day: date | None = Field(default=None, sa_column=Column(Date))
    # A daily mail holds the matches of digests after `after_digest_id` up to `digest_id`:
    # ids, not times, so a digest matched after the mail was queued is in the next one.
    after_digest_id: int | None = Field(default=None, sa_column=Column(Integer))
    status: str = Field(default="pending", sa_column=Column(String(16), nullable=False))
    attempts: int = Field(default=0, sa_column=Column(Integer, nullable=False))
    # Messages of this delivery already sent: a Discord post may take several, and a retry
    # goes on from the first one not sent.
    progress: int = Field(
        default=0, sa_column=Column(Integer, nullable=False, server_default=text("0"))
    )
    next_attempt_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime, nullable=False)
    )
    claimed_by: str | None = Field(default=None, sa_column=Column(String(100)))
    claimed_until: datetime | None = Field(default=None, sa_column=Column(DateTime))
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    # What a sent daily mail held (a `WebCopy` id), so "view in browser" shows that mail.
    web_copy: str | None = Field(default=None, sa_column=Column(String(64)))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=False), nullable=False)
    )


class WebCopy(SQLModel, table=True):
    """The papers a daily mail held, as sent: kept once per distinct list (readers of the same
    topics share one), named by the hash of its content."""

    __tablename__ = "web_copy"

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    sections: list[dict[str, object]] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=False), nullable=False)
    )


class AppSetting(SQLModel, table=True):
    """Values paperboy makes for itself once, such as the key that signs links in mails."""

    __tablename__ = "app_setting"

    name: str = Field(sa_column=Column(String(64), primary_key=True))
    value: str = Field(sa_column=Column(Text, nullable=False))


class SourceState(SQLModel, table=True):
    """What a polled URL last answered, so the next poll asks only for something newer
    (ETag / Last-Modified) and `paperboy status` can say when a source last worked."""

    __tablename__ = "source_state"

    url: str = Field(sa_column=Column(String(1000), primary_key=True))
    etag: str | None = Field(default=None, sa_column=Column(Text))
    last_modified: str | None = Field(default=None, sa_column=Column(Text))
    checked_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    changed_at: datetime | None = Field(default=None, sa_column=Column(DateTime))
    last_error: str | None = Field(default=None, sa_column=Column(Text))


class Worker(SQLModel, table=True):
    """A running `paperboy run` process, as it last reported itself: whether it leads the
    scheduler and when its jobs run next. `paperboy status` reads it from any process."""

    name: str = Field(sa_column=Column(String(100), primary_key=True))
    leader: bool = Field(sa_column=Column(Boolean, nullable=False, server_default=false()))
    started_at: datetime = Field(sa_column=Column(DateTime, nullable=False))
    seen_at: datetime = Field(sa_column=Column(DateTime, nullable=False))
    next_runs: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DigestFailure(SQLModel, table=True):
    """A digest that could not be taken in (refused, or failed for any other reason): kept so
    `paperboy status` and `paperboy digests` can say which input, why and since when, and so
    the inbox and the URL poller try it again only after a backoff, never in every poll.
    One row per content hash; an input that later goes in clears its rows."""

    __tablename__ = "digest_failure"

    id: int | None = Field(default=None, primary_key=True)
    content_hash: str = Field(sa_column=Column(String(64), nullable=False, unique=True))
    origin: str = Field(sa_column=Column(Text, nullable=False))
    """The file path or URL it last came from."""
    error: str = Field(sa_column=Column(Text, nullable=False))
    """One line: the place and what was wrong, or the exception's type and message."""
    first_seen_at: datetime = Field(sa_column=Column(DateTime, nullable=False))
    last_seen_at: datetime = Field(sa_column=Column(DateTime, nullable=False))
    attempts: int = Field(default=1, sa_column=Column(Integer, nullable=False))
    next_retry_at: datetime = Field(sa_column=Column(DateTime, nullable=False))
