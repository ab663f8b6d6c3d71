"""The web copy of a daily mail: the papers it held, kept when it is built, shown as sent.

"View in your browser" must show the mail the reader got, not one rebuilt from today's
topics and matches, and must keep working for a while after the reader left. So a daily
mail's sections are stored when the mail is built (before it is sent: the link in it must
work as soon as it arrives), once per distinct list (readers of the same topics share one
row, named by the hash of its content), and the delivery names its copy. A copy is shown
for `KEPT_FOR` after its mail went out, whatever its reader did since.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Engine, bindparam, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.models import Delivery, Digest, Subscriber, WebCopy
from newsletter.sections import PaperView, Section

KEPT_FOR = timedelta(days=30)

_COPIES = WebCopy.__table__  # type: ignore[attr-defined]
_DELIVERIES = Delivery.__table__  # type: ignore[attr-defined]
_NAME_COPY = (
    update(_DELIVERIES)
    .where(_DELIVERIES.c.id == bindparam("delivery"))
    .values(web_copy=bindparam("copy"))
)


def serialised(sections: Sequence[Section]) -> list[dict[str, object]]:
    return [
        {
            "topic": section.topic,
            "papers": [
                {
                    "title": p.title,
                    "url": p.url,
                    "authors": p.authors,
                    "terms": list(p.terms),
                    "abstract": p.abstract,
                    "upvotes": p.upvotes,
                    "score": p.score,
                }
                for p in section.papers
            ],
        }
        for section in sections
    ]


def sections_of(stored: list[dict[str, object]]) -> list[Section]:
    return [
        Section(
            str(section["topic"]),
            tuple(
                PaperView(
                    title=p["title"],
                    url=p["url"],
                    authors=p["authors"],
                    terms=tuple(p["terms"]),
                    abstract=p["abstract"],
                    upvotes=p["upvotes"],
                    score=p["score"],
                )
                for p in section["papers"]  # type: ignore[attr-defined]
            ),
        )
        for section in stored
    ]


def keep(engine: Engine, sections: Mapping[int, list[Section]], now: datetime) -> None:
    """Store the copy of each delivery's sections (`delivery id -> sections`) and name it on
    the delivery, in one transaction. Readers of one batch share section objects, so each
    distinct list is serialised and hashed once."""
    if not sections:
        return
    copies: dict[str, list[dict[str, object]]] = {}
    named: list[dict[str, object]] = []
    by_identity: dict[tuple[int, ...], str] = {}
    for delivery_id, found in sections.items():
        alike = tuple(map(id, found))
        copy_id = by_identity.get(alike)
        if copy_id is None:
            data = serialised(found)
            text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            copy_id = by_identity[alike] = hashlib.sha256(text.encode()).hexdigest()
            copies[copy_id] = data
        named.append({"delivery": delivery_id, "copy": copy_id})
    rows = [{"id": key, "sections": data, "created_at": now} for key, data in copies.items()]
    with writing(engine).begin() as connection:
        dialect = connection.dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        # Another sender may store the same list at the same moment: same id, same content.
        connection.execute(insert(_COPIES).on_conflict_do_nothing(), rows)
        connection.execute(_NAME_COPY, named)


@dataclass(frozen=True)
class Shown:
    """What a web copy page needs: the mail's reader, digest date and papers."""

    subscriber_id: int
    email: str
    day: date
    sections: list[Section]


def shown(engine: Engine, delivery_id: int, now: datetime) -> Shown | None:
    """The web copy of the daily mail `delivery_id`, or None: no such mail, no copy kept
    (a mail built before copies were kept, or not built yet), its reader's row is gone, or
    the mail went out more than `KEPT_FOR` ago."""
    with Session(engine) as session:
        row = session.exec(
            select(
                Delivery.subscriber_id,
                Delivery.day,
                Delivery.sent_at,
                Delivery.created_at,
                Subscriber.email,
                Digest.digest_date,
                WebCopy.sections,
            )
            .join(WebCopy, col(WebCopy.id) == col(Delivery.web_copy))
            .join(Subscriber, col(Subscriber.id) == col(Delivery.subscriber_id))
            .outerjoin(Digest, col(Digest.id) == col(Delivery.digest_id))
            .where(col(Delivery.id) == delivery_id, col(Delivery.kind) == "daily")
        ).first()
    if row is None or row.email is None:
        return None
    if now - (row.sent_at or row.created_at) > KEPT_FOR:
        return None
    day = row.digest_date or row.day
    return Shown(row.subscriber_id, row.email, day, sections_of(row.sections))
