"""Ingest -> match -> fan-out: a stored digest's papers matched to every topic at once.

Matching costs papers x distinct topics (each topic's query compiled once, each paper
tokenised once); who gets what is then one database join, not a loop over subscribers.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, delete, func, literal, union_all
from sqlmodel import Session, col, select

from newsletter.config import get_settings
from newsletter.db import writing
from newsletter.embedding.semantic import Evidence, TopicSpace, combine, topic_space
from newsletter.embedding.store import paper_vectors
from newsletter.feeds import queue_posts
from newsletter.matcher import DigestIndex, Hit
from newsletter.models import (
    ChannelFeed,
    Digest,
    DigestPaper,
    Paper,
    PaperMatch,
    Subscription,
    Topic,
)
from newsletter.queries import UnknownDigest
from newsletter.query import Node, parse
from newsletter.topics import sync_catalogue, topic_node

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PaperHit:
    paper: Paper
    score: float
    terms: tuple[str, ...]


@dataclass(frozen=True)
class TopicMatches:
    topic: Topic
    hits: list[PaperHit]


def latest_digest_id(engine: Engine) -> int | None:
    with Session(engine) as session:
        return session.exec(select(Digest.id).order_by(col(Digest.id).desc())).first()


def _papers(session: Session, digest_id: int) -> list[Paper]:
    if session.get(Digest, digest_id) is None:
        raise UnknownDigest(digest_id)
    query = (
        select(Paper)
        .join(DigestPaper, col(DigestPaper.paper_id) == col(Paper.id))
        .where(DigestPaper.digest_id == digest_id)
        .order_by(col(DigestPaper.position))
    )
    return list(session.exec(query))


def _resolve(papers: list[Paper], hits: list[Hit]) -> list[PaperHit]:
    return [PaperHit(papers[h.paper], h.score, h.terms) for h in hits]


def _index(papers: list[Paper]) -> DigestIndex:
    return DigestIndex([(p.title, p.abstract) for p in papers], [p.categories for p in papers])


def _store(session: Session, digest_id: int, results: list[TopicMatches]) -> int:
    """Insert the matches of one digest; returns how many."""
    # Many hits share their terms, so each distinct list is encoded once.
    encoded: dict[tuple[str, ...], str] = {}
    rows = [
        (
            digest_id,
            result.topic.id,
            hit.paper.id,
            hit.score,
            encoded.get(hit.terms) or encoded.setdefault(hit.terms, json.dumps(hit.terms)),
        )
        for result in results
        for hit in result.hits
    ]
    if rows:
        # Hundreds of thousands of rows on a big day: straight to the driver, whose
        # executemany costs a fraction of SQLAlchemy's per-row parameter handling.
        mark = "?" if session.get_bind().dialect.paramstyle == "qmark" else "%s"
        session.connection().exec_driver_sql(
            "INSERT INTO paper_match (digest_id, topic_id, paper_id, score, terms) "
            f"VALUES ({', '.join([mark] * 5)})",
            rows,
        )
    return len(rows)


def match_query(engine: Engine, digest_id: int, query: str | Node) -> list[PaperHit]:
    """One query against one digest, nothing stored: for trying a query out."""
    node = parse(query) if isinstance(query, str) else query
    with Session(engine) as session:
        papers = _papers(session, digest_id)
    return _resolve(papers, _index(papers).match(node))


def match_recent(session: Session, topic: Topic, since: datetime) -> None:
    """Match a topic someone has just made (a query of their own) against the digests
    matched since `since`, so their first mail and `/digest` hold today's papers instead of
    waiting for the next digest. Digests not matched yet get the topic when they are, with
    every other."""
    matched = select(PaperMatch.digest_id).distinct()
    digests = session.exec(
        select(Digest.id).where(Digest.ingested_at >= since, col(Digest.id).in_(matched))
    ).all()
    node = topic_node(topic)
    stored = 0
    for digest_id in digests:
        papers = _papers(session, digest_id)
        hits = _resolve(papers, _index(papers).match(node, topic.min_score))
        stored += _store(session, digest_id, [TopicMatches(topic, hits)])
    log.info(
        "new topic %s matched %d paper(s) in %d recent digest(s)", topic.id, stored, len(digests)
    )


def _evidence(engine: Engine, digest_id: int) -> tuple[TopicSpace, Evidence] | None:
    """The digest's semantic evidence, its papers embedded first where they are not yet (out
    of the write transaction: the model takes most of a minute for 1,000 papers)."""
    space = topic_space(get_settings().embedding_model)
    if space is None:
        return None
    with Session(engine) as session:
        papers = _papers(session, digest_id)
    return space, space.evidence(paper_vectors(engine, papers, space.embedder))


def _hits(
    index: DigestIndex, topic: Topic, semantic: tuple[TopicSpace, Evidence] | None
) -> list[Hit]:
    """A topic's matches: its query's, or with a calibrated topic its query's evidence and
    the semantic evidence combined against the topic's calibrated threshold."""
    threshold = semantic[0].threshold(topic.slug) if semantic and topic.builtin else None
    if semantic is None or threshold is None or topic.slug is None:
        return index.match(topic_node(topic), topic.min_score)
    return combine(index.match(topic_node(topic)), semantic[1], topic.slug, threshold, index.size)


def match_digest(engine: Engine, digest_id: int) -> list[TopicMatches]:
    """Match a digest against every topic and store the matches, replacing earlier ones."""
    semantic = _evidence(engine, digest_id)
    with Session(writing(engine), expire_on_commit=False) as session, session.begin():
        sync_catalogue(session)
        papers = _papers(session, digest_id)
        topics = list(session.exec(select(Topic).order_by(col(Topic.id))))
        index = _index(papers)
        results = [
            TopicMatches(topic, _resolve(papers, _hits(index, topic, semantic))) for topic in topics
        ]
        session.execute(delete(PaperMatch).where(col(PaperMatch.digest_id) == digest_id))
        stored = _store(session, digest_id, results)
    log.info("digest %s matched: %d matches over %d topics", digest_id, stored, len(topics))
    return results


@dataclass(frozen=True)
class TakenIn:
    topics: int
    """Topics with at least one matching paper."""
    deliveries: int
    """Discord posts and DMs queued."""


def take_in(engine: Engine, digest_id: int) -> TakenIn:
    """What a newly stored digest goes through before anything is sent, wherever it came
    from (`paperboy ingest`, the inbox, a source URL): matched to every topic and its
    Discord posts and DMs queued. Daily mails pick its matches up at each reader's hour."""
    matched = match_digest(engine, digest_id)
    return TakenIn(sum(1 for m in matched if m.hits), queue_posts(engine, digest_id))


@dataclass(frozen=True)
class FanOut:
    """Who gets something from a digest: each target with the topics that matched for it.

    A target's papers are its topics' stored matches (`papers_for`); fanning out topic ids
    instead of (target, paper) rows keeps the result as small as the subscription list,
    however many papers each topic matched.
    """

    subscribers: dict[int, list[int]]
    channel_feeds: dict[int, list[int]]


def fan_out(engine: Engine, digest_id: int) -> FanOut:
    """Subscribers and channel feeds whose topics matched the digest, in one query."""
    matched = select(col(PaperMatch.topic_id)).where(col(PaperMatch.digest_id) == digest_id)
    people = select(
        literal("subscriber").label("kind"),
        col(Subscription.subscriber_id).label("target_id"),
        col(Subscription.topic_id),
    ).where(col(Subscription.topic_id).in_(matched.distinct()))
    channels = select(
        literal("channel_feed").label("kind"),
        col(ChannelFeed.id).label("target_id"),
        col(ChannelFeed.topic_id),
    ).where(col(ChannelFeed.topic_id).in_(matched.distinct()))
    result = FanOut({}, {})
    with Session(engine) as session:
        for kind, target, topic in session.execute(union_all(people, channels)):
            targets = result.subscribers if kind == "subscriber" else result.channel_feeds
            targets.setdefault(target, []).append(topic)
    return result


def papers_for(engine: Engine, digest_id: int, topic_ids: list[int]) -> list[PaperMatch]:
    """One target's matches in a digest, best first: what its mail or post will hold."""
    with Session(engine) as session:
        query = (
            select(PaperMatch)
            .where(col(PaperMatch.digest_id) == digest_id, col(PaperMatch.topic_id).in_(topic_ids))
            .order_by(col(PaperMatch.score).desc(), col(PaperMatch.paper_id))
        )
        return list(session.exec(query))


# Papers /search looks through, newest first: weeks of digests. Tokenising costs most of a
# millisecond a paper, so all of a year's arXiv listings on every search would not do.
SEARCH_WINDOW = 5_000


class PaperSearch:
    """Stored papers against any query, best first and newest first among equals.

    Looks through the newest `window` papers, tokenised once and kept until a paper is added
    or updated (a digest lands), rather than on every search. Safe to share between threads.
    """

    def __init__(self, engine: Engine, window: int = SEARCH_WINDOW) -> None:
        self.engine, self.window = engine, window
        self._lock = threading.Lock()
        self._version: tuple[object, ...] | None = None
        self._papers: list[Paper] = []
        self._index = DigestIndex([])

    def search(self, query: str | Node, limit: int = 10) -> list[PaperHit]:
        node = parse(query) if isinstance(query, str) else query
        papers, index = self._current()
        hits = sorted(index.match(node), key=lambda h: (-h.score, h.paper))
        return _resolve(papers, hits[:limit])

    def _current(self) -> tuple[list[Paper], DigestIndex]:
        with self._lock, Session(self.engine) as session:
            newest_change = select(func.max(Paper.id), func.max(Paper.updated_at))
            version = tuple(session.exec(newest_change).one())
            if version != self._version:
                newest = select(Paper).order_by(col(Paper.id).desc()).limit(self.window)
                self._papers = list(session.exec(newest))
                self._index = _index(self._papers)
                self._version = version
            return self._papers, self._index
