"""Who follows which topic: subscribe, unsubscribe, list. Every change is one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.mail.daily import FIRST_MAIL_REACH
from newsletter.models import ChannelFeed, Subscriber, Subscription, Topic, utcnow
from newsletter.optin import EmailStatus, ImportRow, request_confirmation
from newsletter.pipeline import match_recent
from newsletter.query import QueryError
from newsletter.topics import find_topic, sync_catalogue, topic_for


class SubscriptionError(ValueError):
    """A request that cannot be carried out; nothing was written."""


@dataclass(frozen=True)
class Who:
    """A subscriber as given on the command line or by the bot: an address, a Discord id."""

    email: str | None = None
    discord_user_id: int | None = None

    def __str__(self) -> str:
        return self.email or f"Discord user {self.discord_user_id}"


def checked(who: Who) -> Who:
    """Normalise the address (case of the domain, Unicode) or refuse it with the reason."""
    if who.email is None and who.discord_user_id is None:
        raise SubscriptionError("give an email address or a Discord user id")
    if who.discord_user_id is not None and who.discord_user_id <= 0:
        raise SubscriptionError(f"{who.discord_user_id} is not a Discord user id")
    if who.email is None:
        return who
    try:
        # Mail systems treat local parts case-blind in practice; one person, one row.
        email = validate_email(who.email, check_deliverability=False).normalized.lower()
    except EmailNotValidError as err:
        raise SubscriptionError(f"{who.email!r} is not an email address: {err}") from None
    return Who(email, who.discord_user_id)


def _find(session: Session, who: Who) -> Subscriber | None:
    by_email = by_discord = None
    if who.email is not None:
        by_email = session.exec(select(Subscriber).where(Subscriber.email == who.email)).first()
    if who.discord_user_id is not None:
        by_discord = session.exec(
            select(Subscriber).where(Subscriber.discord_user_id == who.discord_user_id)
        ).first()
    if by_email and by_discord and by_email.id != by_discord.id:
        raise SubscriptionError(
            f"{who.email} and Discord user {who.discord_user_id} are two people"
        )
    return by_email or by_discord


def checked_delivery(timezone: str | None, hour: int | None) -> None:
    if timezone is not None:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SubscriptionError(f"{timezone!r} is not a time zone (try Europe/Paris)") from None
    if hour is not None and not 0 <= hour <= 23:
        raise SubscriptionError(f"delivery hour {hour} is not between 0 and 23")


def _subscribe(
    session: Session,
    who: Who,
    text: str,
    timezone: str | None,
    hour: int | None,
    now: datetime,
    confirmed: bool,
) -> Topic:
    topic, new_topic = topic_for(session, text)
    if new_topic:
        match_recent(session, topic, now - FIRST_MAIL_REACH)
    subscriber = _find(session, who)
    if subscriber is None:
        subscriber = Subscriber(email=who.email, discord_user_id=who.discord_user_id)
    new_address = who.email is not None and subscriber.email_status is None
    subscriber.email = subscriber.email or who.email
    subscriber.discord_user_id = subscriber.discord_user_id or who.discord_user_id
    subscriber.timezone = timezone or subscriber.timezone
    subscriber.delivery_hour = subscriber.delivery_hour if hour is None else hour
    session.add(subscriber)
    session.flush()
    if session.get(Subscription, (subscriber.id, topic.id)) is not None:
        raise SubscriptionError(f"{who} is already subscribed to {topic.name!r}")
    session.add(Subscription(subscriber_id=subscriber.id, topic_id=topic.id))
    if confirmed:
        subscriber.email_status = EmailStatus.CONFIRMED
        subscriber.email_confirmed_at = subscriber.email_confirmed_at or now
    elif new_address:
        request_confirmation(session, subscriber, now)
    return topic


def subscribe(
    engine: Engine,
    who: Who,
    text: str,
    timezone: str | None = None,
    hour: int | None = None,
    now: datetime | None = None,
) -> Topic:
    """Subscribe to a catalogue topic or a query; a duplicate is refused, nothing written.

    A new email address starts `pending` and is sent a confirmation mail: no digest goes to
    it until its owner confirms.
    """
    who = checked(who)
    checked_delivery(timezone, hour)
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        return _subscribe(session, who, text, timezone, hour, now or utcnow(), confirmed=False)


def import_subscribers(
    engine: Engine, rows: list[ImportRow], confirmed: bool, now: datetime | None = None
) -> int:
    """Add a list of people in one transaction: a bad row refuses the whole file.

    Without `confirmed` everyone gets a confirmation mail first; with it, the admin vouches
    that these people already agreed to receive mail (as when moving a list from elsewhere).
    """
    checked_rows = []
    for number, row in enumerate(rows, start=1):
        try:
            who = checked(Who(email=row.email))
            checked_delivery(row.timezone, row.hour)
        except SubscriptionError as err:
            raise SubscriptionError(f"row {number}: {err}") from None
        checked_rows.append((number, who, row))
    added = 0
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        for number, who, row in checked_rows:
            for text in row.topics:
                try:
                    _subscribe(
                        session, who, text, row.timezone, row.hour, now or utcnow(), confirmed
                    )
                except (SubscriptionError, QueryError) as err:
                    raise SubscriptionError(f"row {number}: {text!r}: {err}") from None
                added += 1
    return added


def unsubscribe(engine: Engine, who: Who, text: str) -> Topic:
    """End one subscription; an unknown person or topic is refused, nothing written."""
    who = checked(who)
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        subscriber = _find(session, who)
        topic = find_topic(session, text)
        link = (
            session.get(Subscription, (subscriber.id, topic.id))
            if subscriber is not None and topic is not None
            else None
        )
        if link is None or topic is None:
            raise SubscriptionError(f"{who} is not subscribed to {text.strip()!r}")
        session.delete(link)
        return topic


def set_delivery(engine: Engine, who: Who, timezone: str, hour: int) -> Subscriber:
    """When the person's daily mail comes: local `hour` in `timezone`; checked first."""
    who = checked(who)
    checked_delivery(timezone, hour)
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        subscriber = _find(session, who)
        if subscriber is None:
            raise SubscriptionError(f"{who} has no subscriptions")
        subscriber.timezone, subscriber.delivery_hour = timezone, hour
        session.add(subscriber)
        return subscriber


def find_subscriber(engine: Engine, who: Who) -> Subscriber | None:
    with Session(engine, expire_on_commit=False) as session:
        return _find(session, checked(who))


@dataclass(frozen=True)
class Listed:
    subscriber: Subscriber
    topic: Topic


def list_subscriptions(engine: Engine, who: Who | None = None) -> list[Listed]:
    with Session(engine) as session:
        query = (
            select(Subscriber, Topic)
            .join(Subscription, col(Subscription.subscriber_id) == col(Subscriber.id))
            .join(Topic, col(Topic.id) == col(Subscription.topic_id))
            .order_by(col(Subscriber.id), col(Topic.name))
        )
        if who is not None:
            who = checked(who)
            subscriber = _find(session, who)
            if subscriber is None:
                raise SubscriptionError(f"{who} has no subscriptions")
            query = query.where(col(Subscriber.id) == subscriber.id)
        return [Listed(s, t) for s, t in session.exec(query)]


@dataclass(frozen=True)
class TopicCount:
    topic: Topic
    subscribers: int
    channel_feeds: int


def topic_counts(engine: Engine) -> list[TopicCount]:
    """Every topic with how many people and channels follow it: catalogue first, then queries."""
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        sync_catalogue(session)
    with Session(engine) as session:
        subscribers = dict(
            session.exec(
                select(Subscription.topic_id, func.count()).group_by(col(Subscription.topic_id))
            ).all()
        )
        feeds = dict(
            session.exec(
                select(ChannelFeed.topic_id, func.count()).group_by(col(ChannelFeed.topic_id))
            ).all()
        )
        topics = session.exec(
            select(Topic).order_by(col(Topic.builtin).desc(), col(Topic.slug), col(Topic.id))
        ).all()
        return [TopicCount(t, subscribers.get(t.id, 0), feeds.get(t.id, 0)) for t in topics]
