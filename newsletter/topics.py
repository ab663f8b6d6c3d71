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
from pathlib import Path

from sqlmodel import Session, col, select

from newsletter.config import get_settings
from newsletter.models import Topic
from newsletter.query import Node, QueryError, canonical, parse

# A catalogue topic asks for a title hit or two places in the abstract: one passing mention
# ("unlike knowledge distillation, we ...") does not make a paper about the topic. A person's
# own query keeps the model default of 1, any hit, because they wrote exactly what they want.
CATALOGUE_MIN_SCORE = 2.0
# A field's topic can take a long list of its terms; a person's query is held to the default.
CATALOGUE_QUERY_CHARS = 2_000
CANONICAL_CHARS = 2_000  # topic.canonical's column


def topic_node(topic: Topic) -> Node:
    """A stored topic's compiled query: catalogue topics may be longer than a person's."""
    return parse(topic.query, CATALOGUE_QUERY_CHARS)


_SYNCED = "paperboy.catalogue_synced"


@dataclass(frozen=True)
class CatalogueTopic:
    slug: str
    name: str
    query: str
    node: Node
    min_score: float = CATALOGUE_MIN_SCORE
    description: str = ""
    """One sentence a person reads in /topics and on the web before subscribing."""
    keyword: str = ""
    """The word one would grep for: `paperboy quality`'s naive baseline."""
    aliases: tuple[str, ...] = ()
    """Other names people type for it (and labels files use)."""


class CatalogueError(ValueError):
    """A catalogue entry that cannot be used, naming the file, the topic and the column."""


def catalogue() -> tuple[CatalogueTopic, ...]:
    """The topics of PAPERBOY_CATALOGUE_FILE, else the built-in ones."""
    return load_catalogue(get_settings().catalogue_file)


@cache
def load_catalogue(path: Path | None) -> tuple[CatalogueTopic, ...]:
    """A broken entry stops paperboy with the file, its slug and what is wrong."""
    if path is None:
        origin = "catalogue.toml (built in)"
        text = resources.files("newsletter").joinpath("catalogue.toml").read_text()
    else:
        origin, text = str(path), path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CatalogueError(f"{origin}: {err}") from None
    topics = []
    for number, entry in enumerate(data.get("topic", []), start=1):
        slug = entry.get("slug")
        where = f"{origin}: topic {slug!r}" if slug else f"{origin}: topic number {number}"
        missing = [key for key in ("slug", "name", "query") if not entry.get(key)]
        if missing:
            raise CatalogueError(f"{where}: {', '.join(missing)} missing")
        try:
            node = parse(entry["query"], CATALOGUE_QUERY_CHARS)
        except QueryError as err:
            raise CatalogueError(f"{where}: query: {err}") from None
        if len(canonical(node)) > CANONICAL_CHARS:
            raise CatalogueError(f"{where}: query: over {CANONICAL_CHARS} characters as stored")
        topics.append(
            CatalogueTopic(
                slug,
                entry["name"],
                entry["query"],
                node,
                float(entry.get("min_score", CATALOGUE_MIN_SCORE)),
                entry.get("description", ""),
                entry.get("keyword", entry["name"]),
                tuple(entry.get("aliases", ())),
            )
        )
    if not topics:
        raise CatalogueError(f"{origin}: no [[topic]] entries")
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
        if wanted in (entry.slug, entry.name.casefold(), *map(str.casefold, entry.aliases)):
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
