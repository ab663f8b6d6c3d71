"""The topic catalogue, and turning what a person typed into a stored topic.

The catalogue is data (`catalogue.toml`), synced into the `topic` table so subscriptions
point at rows; a person's own query becomes a topic too, shared with everyone whose query
has the same canonical form.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from sqlmodel import Session, col, select

from newsletter.models import Topic
from newsletter.query import Node, QueryError, canonical, parse

# A catalogue topic asks for a title hit or two places in the abstract: one passing mention
# ("unlike knowledge distillation, we ...") does not make a paper about the topic. A person's
# own query keeps the model default of 1, any hit, because they wrote exactly what they want.
CATALOGUE_MIN_SCORE = 2.0
_SYNCED = "paperboy.catalogue_synced"


@dataclass(frozen=True)
class CatalogueTopic:
    slug: str
    name: str
    query: str
    node: Node
    min_score: float = CATALOGUE_MIN_SCORE


@cache
def catalogue() -> tuple[CatalogueTopic, ...]:
    """The built-in topics; a broken entry stops paperboy with its slug and the query error."""
    data = tomllib.loads(resources.files("newsletter").joinpath("catalogue.toml").read_text())
    topics = []
    for entry in data["topic"]:
        try:
            node = parse(entry["query"])
        except QueryError as err:
            raise ValueError(f"catalogue.toml: topic {entry['slug']!r}: {err}") from None
        min_score = float(entry.get("min_score", CATALOGUE_MIN_SCORE))
        topics.append(CatalogueTopic(entry["slug"], entry["name"], entry["query"], node, min_score))
    return tuple(topics)


def sync_catalogue(session: Session) -> None:
    """Bring the topic table in step with the catalogue file (names and queries may change).

    Once per transaction: an import subscribes thousands of people in one, and syncing for
    each of them was most of its time (8 s for 1,000 rows)."""
    transaction = session.get_transaction()
    if transaction is not None and session.info.get(_SYNCED) is transaction:
        return
    stored = {t.slug: t for t in session.exec(select(Topic).where(col(Topic.builtin).is_(True)))}
    for entry in catalogue():
        row = stored.get(entry.slug) or Topic(slug=entry.slug, builtin=True)
        row.name, row.query, row.canonical = entry.name, entry.query, canonical(entry.node)
        row.min_score = entry.min_score
        session.add(row)
    session.flush()
    session.info[_SYNCED] = session.get_transaction()


def find_catalogue_topic(text: str) -> CatalogueTopic | None:
    wanted = text.strip().casefold()
    for entry in catalogue():
        if wanted in (entry.slug, entry.name.casefold()):
            return entry
    return None


def find_topic(session: Session, text: str) -> Topic | None:
    """The stored topic a person means: a catalogue slug or name, or a query meaning the same.

    Raises `QueryError` when the text is no catalogue topic and does not parse as a query.
    """
    sync_catalogue(session)
    entry = find_catalogue_topic(text)
    if entry is not None:
        return session.exec(select(Topic).where(Topic.slug == entry.slug)).one()
    form = canonical(parse(text.strip()))
    return session.exec(select(Topic).where(Topic.canonical == form)).first()


def topic_for(session: Session, text: str) -> tuple[Topic, bool]:
    """`find_topic`, adding the person's query as a new topic when nobody has it yet; says
    whether it is new."""
    found = find_topic(session, text)
    if found is not None:
        return found, False
    query = text.strip()
    topic = Topic(name=query, query=query, canonical=canonical(parse(query)))
    session.add(topic)
    session.flush()
    return topic, True
