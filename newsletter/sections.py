"""What a delivery holds: matched papers grouped by topic, for a mail, a post or a DM.

Shared by the mail and Discord sides so both show the same papers under the same topics;
built for many deliveries in a few queries, not a few queries per delivery.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Row
from sqlmodel import Session, col, select

from newsletter.matcher import explain
from newsletter.models import Paper, PaperMatch, Subscription, Topic

ABSTRACT_CHARS = 600
AUTHORS_SHOWN = 8


class PaperFields(Protocol):
    """What a view reads of a paper: a `Paper`, or a row of just these columns."""

    @property
    def title(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def authors(self) -> Sequence[str] | None: ...
    @property
    def abstract(self) -> str | None: ...
    @property
    def upvotes(self) -> int | None: ...


@dataclass(frozen=True)
class PaperView:
    title: str
    url: str
    authors: str
    terms: tuple[str, ...]
    abstract: str
    upvotes: int | None = None
    score: float | None = None

    @property
    def why(self) -> str:
        """What made it match, as mails and embeds say it."""
        return explain(self.terms, self.score)

    @classmethod
    def of(
        cls, paper: PaperFields, terms: tuple[str, ...], score: float | None = None
    ) -> PaperView:
        names = list(paper.authors or [])
        authors = ", ".join(names[:AUTHORS_SHOWN]) + (
            " et al." if len(names) > AUTHORS_SHOWN else ""
        )
        abstract = paper.abstract or ""
        if len(abstract) > ABSTRACT_CHARS:
            abstract = abstract[:ABSTRACT_CHARS].rsplit(" ", 1)[0] + " …"
        return cls(paper.title, paper.url or "", authors, terms, abstract, paper.upvotes, score)


@dataclass(frozen=True)
class Section:
    topic: str
    papers: tuple[PaperView, ...]
    more: int = 0
    """Papers on the topic left out of a mail to keep it small (see `mail.budget`)."""


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


@dataclass(frozen=True)
class Window:
    """What one delivery covers: a reader's topics over a range of digests (ids, so a digest
    matched after the window was fixed falls in the next one), or over the digests `only`."""

    delivery_id: int
    topic_ids: tuple[int, ...]
    after_digest_id: int
    digest_id: int
    only: frozenset[int] | None = None


def sections_for(session: Session, windows: Iterable[Window]) -> dict[int, list[Section]]:
    """Each mail's sections, for a batch of mails in three queries, not three per mail.

    A paper matched by several of a reader's topics appears once, under the topic where it
    scored best, with the terms of all of them; sections come best paper first. Readers
    following the same topics over the same digests share one computation (many readers
    follow few topic sets); sections are immutable, so sharing them is safe. Matches and
    papers are read as rows of the columns shown, not as ORM objects, whose set-up (and the
    JSON columns nobody shows) cost more than the rest of a batch's reads.
    """
    windows = list(windows)
    if not windows:
        return {}
    topic_ids = {t for w in windows for t in w.topic_ids}
    low = min(w.after_digest_id for w in windows)
    high = max(w.digest_id for w in windows)
    matches = session.exec(
        select(
            PaperMatch.topic_id,
            PaperMatch.digest_id,
            PaperMatch.paper_id,
            PaperMatch.score,
            PaperMatch.terms,
        ).where(
            col(PaperMatch.topic_id).in_(topic_ids),
            col(PaperMatch.digest_id) > low,
            col(PaperMatch.digest_id) <= high,
        )
    ).all()
    paper_ids = {m.paper_id for m in matches}
    shown = select(Paper.id, Paper.title, Paper.url, Paper.authors, Paper.abstract, Paper.upvotes)
    papers = {p.id: p for p in session.exec(shown.where(col(Paper.id).in_(paper_ids)))}
    names = dict(
        session.exec(select(Topic.id, Topic.name).where(col(Topic.id).in_(topic_ids))).all()
    )
    by_topic: dict[int, list[Row[Any]]] = {}
    for match in matches:
        by_topic.setdefault(match.topic_id, []).append(match)
    result = {}
    done: dict[tuple[object, ...], list[Section]] = {}
    for window in windows:
        alike = (window.topic_ids, window.after_digest_id, window.digest_id, window.only)
        if alike in done:
            result[window.delivery_id] = list(done[alike])
            continue
        best: dict[int, tuple[float, int, list[str]]] = {}
        for topic in window.topic_ids:
            for match in by_topic.get(topic, ()):
                if not window.after_digest_id < match.digest_id <= window.digest_id or (
                    window.only is not None and match.digest_id not in window.only
                ):
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
            views = tuple(
                PaperView.of(papers[p], tuple(terms), score) for score, p, terms in entries
            )
            sections.append((-entries[0][0], names[topic], Section(names[topic], views)))
        sections.sort(key=lambda entry: (entry[0], entry[1]))
        done[alike] = [section for *_, section in sections]
        result[window.delivery_id] = list(done[alike])
    return result
