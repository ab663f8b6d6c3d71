"""Which daily mails are due, and what each holds.

A subscriber's day is their local date; the mail for it is queued once their local delivery
hour has come, under the key `daily:<subscriber>:<date>`, so queueing as often as one likes
never makes a second mail for a day. A mail holds the matches of every digest since the
previous mail (by digest id), grouped by topic, each paper once.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.mail.compose import PaperView, Section
from newsletter.models import Delivery, Digest, Paper, PaperMatch, Subscriber, Subscription, Topic
from newsletter.optin import EmailStatus
from newsletter.outbox import Status, enqueue

# A new reader's first mail reaches back this far, so confirming today brings today's papers.
FIRST_MAIL_REACH = timedelta(days=1)


def local_day(now: datetime, timezone: str) -> tuple[date, int]:
    """The reader's date and hour at `now` (naive UTC)."""
    local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(timezone))
    return local.date(), local.hour


class _Starts:
    """Where each reader's next mail starts: after the digest their last daily mail reached
    or, for a first mail, after the last digest stored a day before they confirmed (so
    confirming today brings today's papers). Digest ids follow ingest time."""

    def __init__(self, session: Session, subscriber_ids: list[int] | None = None) -> None:
        last = select(Delivery.subscriber_id, func.max(Delivery.digest_id)).where(
            Delivery.kind == "daily"
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
        since = (reader.email_confirmed_at or now) - FIRST_MAIL_REACH
        before = bisect.bisect_right(self._stamps, since)
        return self._ids[before - 1] if before else 0


def newest_matched_digest(session: Session) -> int | None:
    return session.exec(select(func.max(PaperMatch.digest_id))).one()


def followed_topics(session: Session, subscriber_ids: Iterable[int]) -> dict[int, tuple[int, ...]]:
    """Each reader's topic ids, for many readers in one query."""
    topics: dict[int, list[int]] = {}
    for subscriber_id, topic_id in session.exec(
        select(Subscription.subscriber_id, Subscription.topic_id).where(
            col(Subscription.subscriber_id).in_(list(subscriber_ids))
        )
    ):
        topics.setdefault(subscriber_id, []).append(topic_id)
    return {reader: tuple(ids) for reader, ids in topics.items()}


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
            if newest <= after:
                continue
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


@dataclass(frozen=True)
class Window:
    """What one daily mail covers: a reader's topics over a range of digests."""

    delivery_id: int
    topic_ids: tuple[int, ...]
    after_digest_id: int
    digest_id: int


def sections_for(session: Session, windows: Iterable[Window]) -> dict[int, list[Section]]:
    """Each mail's sections, for a batch of mails in three queries, not three per mail.

    A paper matched by several of a reader's topics appears once, under the topic where it
    scored best, with the terms of all of them; sections come best paper first.
    """
    windows = list(windows)
    if not windows:
        return {}
    topic_ids = {t for w in windows for t in w.topic_ids}
    low = min(w.after_digest_id for w in windows)
    high = max(w.digest_id for w in windows)
    matches = session.exec(
        select(PaperMatch).where(
            col(PaperMatch.topic_id).in_(topic_ids),
            col(PaperMatch.digest_id) > low,
            col(PaperMatch.digest_id) <= high,
        )
    ).all()
    paper_ids = {m.paper_id for m in matches}
    papers = {p.id: p for p in session.exec(select(Paper).where(col(Paper.id).in_(paper_ids)))}
    names = dict(
        session.exec(select(Topic.id, Topic.name).where(col(Topic.id).in_(topic_ids))).all()
    )
    by_topic: dict[int, list[PaperMatch]] = {}
    for match in matches:
        by_topic.setdefault(match.topic_id, []).append(match)
    result = {}
    for window in windows:
        best: dict[int, tuple[float, int, list[str]]] = {}
        for topic in window.topic_ids:
            for match in by_topic.get(topic, ()):
                if not window.after_digest_id < match.digest_id <= window.digest_id:
                    continue
                score, where, terms = best.get(match.paper_id, (float("-inf"), topic, []))
                merged = terms + [t for t in match.terms if t not in terms]
                if match.score > score:
                    score, where = match.score, topic
                best[match.paper_id] = (score, where, merged)
        grouped: dict[int, list[tuple[float, int, list[str]]]] = {}
        for paper_id, (score, topic, terms) in best.items():
            grouped.setdefault(topic, []).append((score, paper_id, terms))
        sections = []
        for topic, entries in grouped.items():
            entries.sort(key=lambda e: (-e[0], e[1]))
            views = tuple(PaperView.of(papers[p], tuple(terms)) for _, p, terms in entries)
            sections.append((-entries[0][0], names[topic], Section(names[topic], views)))
        sections.sort(key=lambda entry: (entry[0], entry[1]))
        result[window.delivery_id] = [section for *_, section in sections]
    return result


def preview_sections(engine: Engine, subscriber: Subscriber, now: datetime) -> list[Section]:
    """What the reader's next mail would hold if it were queued now (nothing is written)."""
    assert subscriber.id is not None
    with Session(engine) as session:
        newest = newest_matched_digest(session) or 0
        after = _Starts(session, [subscriber.id]).after(subscriber, now)
        topics = followed_topics(session, [subscriber.id]).get(subscriber.id, ())
        return sections_for(session, [Window(0, topics, after, newest)]).get(0, [])
