"""What `paperboy status` reports: read from the database, so any process can ask."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from newsletter.failures import listed
from newsletter.mail.pause import Pause, current
from newsletter.models import (
    ChannelFeed,
    Delivery,
    Digest,
    DigestFailure,
    SourceState,
    Subscriber,
    Worker,
)

# A worker that has not reported for this long is taken for dead (it reports every
# `lead_seconds`, 15 s by default).
STALE = timedelta(minutes=2)


@dataclass(frozen=True)
class Status:
    digests: int
    newest: Digest | None
    subscribers: dict[str, int]
    """Email status (`confirmed`, `pending`, ...; `discord only`) -> people."""
    feeds: tuple[int, int]
    """Enabled and disabled channel feeds."""
    deliveries: dict[tuple[str, str], int]
    """(kind, status) -> deliveries, for the ones not yet settled or that failed."""
    sources: list[SourceState]
    workers: list[tuple[Worker, bool]]
    """Each reporting process and whether it is still alive."""
    mail_paused: Pause | None
    """Why mail sending paused (the SMTP server refused the session), if it did."""
    failures: list[DigestFailure]
    """Digests that could not be taken in, the most recent first."""


def gather(engine: Engine, now: datetime) -> Status:
    with Session(engine) as session:
        digests = session.exec(select(func.count()).select_from(Digest)).one()
        newest = session.exec(select(Digest).order_by(col(Digest.id).desc())).first()
        people = session.exec(
            select(Subscriber.email_status, func.count()).group_by(col(Subscriber.email_status))
        ).all()
        feeds = dict(
            session.exec(
                select(col(ChannelFeed.disabled_reason).is_(None), func.count()).group_by(
                    col(ChannelFeed.disabled_reason).is_(None)
                )
            ).all()
        )
        deliveries = session.exec(
            select(Delivery.kind, Delivery.status, func.count())
            .where(col(Delivery.status).in_(["pending", "sending", "failed"]))
            .group_by(col(Delivery.kind), col(Delivery.status))
        ).all()
        sources = list(session.exec(select(SourceState).order_by(col(SourceState.url))))
        workers = list(session.exec(select(Worker).order_by(col(Worker.name))))
    return Status(
        digests=digests,
        newest=newest,
        subscribers={status or "discord only": count for status, count in people},
        feeds=(feeds.get(True, 0), feeds.get(False, 0)),
        deliveries={(kind, status): count for kind, status, count in deliveries},
        sources=sources,
        workers=[(w, now - w.seen_at < STALE) for w in workers],
        mail_paused=current(engine),
        failures=listed(engine),
    )
