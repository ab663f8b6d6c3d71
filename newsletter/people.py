"""A Discord user's own settings: their mail address, delivery time and DMs.

The bot calls these for the person who ran a command; each is one transaction and refuses
with a `SubscriptionError` or `OptInError` that says what was wrong, writing nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from sqlalchemy import Engine, func
from sqlmodel import Session, select

from newsletter.db import writing
from newsletter.feeds import digest_label
from newsletter.models import Digest, Subscriber
from newsletter.optin import (
    EmailStatus,
    OptInError,
    confirm_with_code,
    request_confirmation,
    unsubscribe_address,
)
from newsletter.sections import Section, Window, followed_topics, sections_for
from newsletter.subscriptions import SubscriptionError, Who, checked, checked_delivery


def _person(session: Session, discord_user_id: int) -> Subscriber:
    """The person behind a Discord id, made on first use (settings may come before topics)."""
    checked(Who(discord_user_id=discord_user_id))
    found = session.exec(
        select(Subscriber).where(Subscriber.discord_user_id == discord_user_id)
    ).first()
    if found is None:
        found = Subscriber(discord_user_id=discord_user_id)
        session.add(found)
        session.flush()
    return found


def find_person(engine: Engine, discord_user_id: int) -> Subscriber | None:
    with Session(engine) as session:
        return session.exec(
            select(Subscriber).where(Subscriber.discord_user_id == discord_user_id)
        ).first()


def set_email(engine: Engine, discord_user_id: int, address: str, now: datetime) -> bool:
    """Give a Discord user a mail address, pending until they confirm it (double opt-in).

    An address another person already has is refused: joining two people would need proof
    that both are the same owner. Returns whether a confirmation mail was queued (at most
    one an hour goes to an address).
    """
    email = checked(Who(email=address)).email
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        person = _person(session, discord_user_id)
        owner = session.exec(select(Subscriber).where(Subscriber.email == email)).first()
        if owner is not None and owner.id != person.id:
            raise SubscriptionError(
                f"{email} already gets paperboy's mail as a subscriber of its own: manage its "
                "topics with the “manage topics” link at the end of any of its mails (an "
                "address cannot be joined to a Discord account yet)"
            )
        if person.email != email:
            person.email, person.email_status = email, None
            person.email_confirmed_at = person.confirmation_sent_at = None
        if person.email_status == EmailStatus.CONFIRMED:
            raise OptInError(f"{email} is already confirmed")
        return request_confirmation(session, person, now)


def verify_email(
    engine: Engine,
    discord_user_id: int,
    code: str,
    code_of: Callable[[int, str, datetime], str],
    now: datetime,
) -> str:
    """Confirm the person's address with the code from their mail; returns the address."""
    person = find_person(engine, discord_user_id)
    if person is None or person.email is None:
        raise OptInError("you have no address yet: use /email set first")
    confirm_with_code(engine, person.email, code, code_of, now)
    return person.email


def email_off(engine: Engine, discord_user_id: int) -> str:
    """Stop mail to the person's address (kept, so /email set brings it back after a new
    confirmation); returns the address."""
    person = find_person(engine, discord_user_id)
    if person is None or person.email is None or person.id is None:
        raise OptInError("you have no address with paperboy")
    if person.email_status == EmailStatus.UNSUBSCRIBED:
        raise OptInError(f"paperboy already sends no mail to {person.email}")
    unsubscribe_address(engine, person.id, person.email)
    return person.email


def set_delivery(engine: Engine, discord_user_id: int, hour: int, timezone: str) -> None:
    checked_delivery(timezone, hour)
    with Session(writing(engine)) as session, session.begin():
        person = _person(session, discord_user_id)
        person.delivery_hour, person.timezone = hour, timezone


def set_dm(engine: Engine, discord_user_id: int, on: bool) -> None:
    with Session(writing(engine)) as session, session.begin():
        _person(session, discord_user_id).discord_dm = on


def papers_of_day(
    engine: Engine, discord_user_id: int, day: date | None
) -> tuple[str, list[Section]]:
    """The person's matched papers in the digests of a day (default: the newest digest's
    day), grouped by topic as in their mail; with a label naming the digests."""
    with Session(engine) as session:
        person = session.exec(
            select(Subscriber).where(Subscriber.discord_user_id == discord_user_id)
        ).first()
        topics = followed_topics(session, [person.id]).get(person.id, ()) if person else ()
        if not topics:
            raise SubscriptionError("you follow no topics yet: try /subscribe")
        if day is None:
            day = session.exec(select(func.max(Digest.digest_date))).one()
            if day is None:
                raise SubscriptionError("no digest has been stored yet")
        digests = session.exec(select(Digest).where(Digest.digest_date == day)).all()
        if not digests:
            raise SubscriptionError(f"no digest is dated {day.isoformat()}")
        ids = frozenset(d.id for d in digests if d.id is not None)
        window = Window(0, topics, min(ids) - 1, max(ids), ids)
        label = ", ".join(sorted({digest_label(d) for d in digests}))
        return label, sections_for(session, [window]).get(0, [])
