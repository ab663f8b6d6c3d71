"""Which daily mails are due, and what each holds.

A subscriber's day is their local date; the mail for it is queued once their local delivery
hour has come, under the key `daily:<subscriber>:<date>`, so queueing as often as one likes
never makes a second mail for a day. A mail holds the matches of every digest since the
previous mail (by digest id), grouped by topic, each paper once.

A day's mail is owed when a digest not yet mailed was there at the reader's hour: a digest
that lands later in the day waits for tomorrow's hour instead of making an evening mail (a
new reader's first mail excepted: it goes as soon as there is something to send). So
after downtime the first queueing still sends a mail whose hour passed meanwhile (late, and
once), while a reader whose whole local day passed in the downtime gets that day's papers in
the next day's mail.
"""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.models import Delivery, Digest, PaperMatch, Subscriber, Subscription
from newsletter.optin import EmailStatus
from newsletter.outbox import Status, enqueue
from newsletter.sections import Section, Window, followed_topics, sections_for

# A new reader's first mail reaches back this far, so confirming today brings today's papers.
FIRST_MAIL_REACH = timedelta(days=1)


def local_day(now: datetime, timezone: str) -> tuple[date, int]:
    """The reader's date and hour at `now` (naive UTC)."""
    local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))
    return local.date(), local.hour


def delivery_moment(day: date, hour: int, timezone: str) -> datetime:
    """When the reader's hour began on their `day`, as naive UTC."""
    local = datetime.combine(day, time(hour), tzinfo=ZoneInfo(timezone))
    return local.astimezone(UTC).replace(tzinfo=None)


class _Starts:
    """Where each reader's next mail starts: after the digest their last daily mail that did
    not fail reached or, for a first mail, after the last digest stored a day before they
    confirmed (so confirming today brings today's papers). Digest ids follow ingest time."""

    def __init__(self, session: Session, subscriber_ids: list[int] | None = None) -> None:
        # A failed mail's papers were never read: the next mail starts where it did.
        last = select(Delivery.subscriber_id, func.max(Delivery.digest_id)).where(
            Delivery.kind == "daily", Delivery.status != Status.FAILED
        )
        if subscriber_ids is not None:
            last = last.where(col(Delivery.subscriber_id).in_(subscriber_ids))
        self._last = dict(session.exec(last.group_by(col(Delivery.subscriber_id))).all())
        digests = session.exec(select(Digest.ingested_at, Digest.id).order_by(col(Digest.id)))
        self._stamps: list[datetime] = []
        self._ids: list[int] = []
        for stamp, digest_id in digests:
            self._stamps.append(stamp)
            self._ids.append(digest_id)

    def after(self, reader: Subscriber, now: datetime) -> int:
        last = self._last.get(reader.id)
        if last is not None:
            return last
        return self._newest_by((reader.email_confirmed_at or now) - FIRST_MAIL_REACH)

    def newest_at(self, reader: Subscriber, moment: datetime) -> int:
        """The newest digest stored by `moment` (0: none); for a reader who has had no mail
        yet, simply the newest."""
        if reader.id not in self._last:
            return self._ids[-1] if self._ids else 0
        return self._newest_by(moment)

    def _newest_by(self, moment: datetime) -> int:
        """The newest digest stored by `moment` (0: none)."""
        before = bisect.bisect_right(self._stamps, moment)
        return self._ids[before - 1] if before else 0


def newest_matched_digest(session: Session) -> int | None:
    return session.exec(select(func.max(PaperMatch.digest_id))).one()


def queue_daily(engine: Engine, now: datetime) -> int:
    """Queue today's mail for every confirmed reader whose hour has come; returns how many."""
    with Session(writing(engine)) as session, session.begin():
        newest = newest_matched_digest(session)
        if newest is None:
            return 0
        readers = session.exec(
            select(Subscriber).where(
                Subscriber.email_status == EmailStatus.CONFIRMED,
                col(Subscriber.id).in_(select(Subscription.subscriber_id)),
            )
        ).all()
        starts = _Starts(session)
        rows = []
        for reader in readers:
            day, hour = local_day(now, reader.timezone)
            if hour < reader.delivery_hour:
                continue
            after = starts.after(reader, now)
            moment = delivery_moment(day, reader.delivery_hour, reader.timezone)
            if min(newest, starts.newest_at(reader, moment)) <= after:
                continue  # nothing new was there at the reader's hour today
            rows.append(
                {
                    "key": f"daily:{reader.id}:{day.isoformat()}",
                    "kind": "daily",
                    "subscriber_id": reader.id,
                    "day": day,
                    "after_digest_id": after,
                    "digest_id": newest,
                    "status": Status.PENDING,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
        return enqueue(session, rows)


def preview_sections(engine: Engine, subscriber: Subscriber, now: datetime) -> list[Section]:
    """What the reader's next mail would hold if it were queued now (nothing is written)."""
    assert subscriber.id is not None
    with Session(engine) as session:
        newest = newest_matched_digest(session) or 0
        after = _Starts(session, [subscriber.id]).after(subscriber, now)
        topics = followed_topics(session, [subscriber.id]).get(subscriber.id, ())
        return sections_for(session, [Window(0, topics, after, newest)]).get(0, [])
