"""Subscribing, unsubscribing and the fan-out of a digest's matches, on a real database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from newsletter.ingest import ingest_bytes
from newsletter.models import ChannelFeed, PaperMatch, Subscriber, Subscription, Topic
from newsletter.pipeline import PaperSearch, fan_out, match_digest, papers_for
from newsletter.query import QueryError
from newsletter.subscriptions import (
    SubscriptionError,
    Who,
    list_subscriptions,
    subscribe,
    topic_counts,
    unsubscribe,
)
from newsletter.topics import catalogue
from tests.conftest import DATA, NOW, SEED


def rows(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(table)).one()
            for table in (Subscriber, Subscription, Topic)
        )


def test_the_catalogue_has_at_least_25_topics_that_all_parse() -> None:
    assert len(catalogue()) >= 25
    assert len({t.slug for t in catalogue()}) == len(catalogue())


def test_subscribing_by_slug_or_by_name_is_the_same_topic(engine: Engine) -> None:
    first = subscribe(engine, Who(email="ann@example.org"), "continual-learning")
    second = subscribe(engine, Who(discord_user_id=42), "Continual Learning")
    assert first.id == second.id
    assert first.slug == "continual-learning"


def test_own_queries_that_mean_the_same_share_one_topic(engine: Engine) -> None:
    first = subscribe(engine, Who(email="ann@example.org"), '"world models" OR WM')
    second = subscribe(engine, Who(email="bob@example.org"), '("World Models") or wm')
    assert first.id == second.id
    assert rows(engine)[2] == len(catalogue()) + 1


def test_an_address_is_normalised_and_one_person_is_one_row(engine: Engine) -> None:
    subscribe(engine, Who(email="Ann@Example.ORG"), "agents")
    subscribe(engine, Who(email="ann@example.org"), "robotics")
    (person,) = {listed.subscriber.email for listed in list_subscriptions(engine)}
    assert person == "ann@example.org"


def test_a_duplicate_subscription_is_refused_and_nothing_written(engine: Engine) -> None:
    subscribe(engine, Who(email="ann@example.org"), "agents", timezone="Europe/Paris", hour=7)
    before = rows(engine)
    with pytest.raises(SubscriptionError, match="already subscribed to 'LLM agents'"):
        subscribe(engine, Who(email="ANN@example.org"), "agents", timezone="Asia/Tokyo")
    assert rows(engine) == before
    (listed,) = list_subscriptions(engine)
    assert listed.subscriber.timezone == "Europe/Paris"


@pytest.mark.parametrize(
    ("who", "topic", "error", "message"),
    [
        (Who(email="not-an-email"), "agents", SubscriptionError, "is not an email address"),
        (Who(), "agents", SubscriptionError, "give an email address or a Discord user id"),
        (Who(discord_user_id=-5), "agents", SubscriptionError, "is not a Discord user id"),
        (Who(email="a@example.org"), '"unclosed', QueryError, "quote is never closed"),
        (Who(email="a@example.org"), "NOT everything", QueryError, "not negated"),
    ],
)
def test_bad_requests_are_refused_with_the_reason_and_nothing_written(
    engine: Engine, who: Who, topic: str, error: type[Exception], message: str
) -> None:
    before = rows(engine)
    with pytest.raises(error, match=message):
        subscribe(engine, who, topic)
    assert rows(engine)[:2] == before[:2] == (0, 0)


def test_unknown_time_zone_and_hour_are_refused(engine: Engine) -> None:
    with pytest.raises(SubscriptionError, match="not a time zone"):
        subscribe(engine, Who(email="a@example.org"), "agents", timezone="Mars/Olympus")
    with pytest.raises(SubscriptionError, match="not between 0 and 23"):
        subscribe(engine, Who(email="a@example.org"), "agents", hour=24)
    assert rows(engine)[:2] == (0, 0)


def test_unsubscribe_removes_one_subscription_only(engine: Engine) -> None:
    subscribe(engine, Who(email="ann@example.org"), "agents")
    subscribe(engine, Who(email="ann@example.org"), "robotics")
    unsubscribe(engine, Who(email="ann@example.org"), "agents")
    assert [s.topic.slug for s in list_subscriptions(engine)] == ["robotics"]


def test_unsubscribing_from_what_one_never_had_is_refused(engine: Engine) -> None:
    subscribe(engine, Who(email="ann@example.org"), "agents")
    with pytest.raises(SubscriptionError, match="is not subscribed to 'robotics'"):
        unsubscribe(engine, Who(email="ann@example.org"), "robotics")
    with pytest.raises(SubscriptionError, match="is not subscribed"):
        unsubscribe(engine, Who(email="bob@example.org"), "agents")


def test_topic_counts_show_subscribers_and_channels(engine: Engine) -> None:
    topic = subscribe(engine, Who(email="ann@example.org"), "agents")
    subscribe(engine, Who(discord_user_id=7), "agents")
    with Session(engine) as session, session.begin():
        session.add(ChannelFeed(guild_id=1, channel_id=2, topic_id=topic.id))
    counts = {c.topic.slug: (c.subscribers, c.channel_feeds) for c in topic_counts(engine)}
    assert counts["agents"] == (2, 1)
    assert counts["robotics"] == (0, 0)


def test_matches_are_stored_and_fanned_out_to_people_and_channels(engine: Engine) -> None:
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    topic = subscribe(engine, Who(email="ann@example.org"), "continual-learning")
    subscribe(engine, Who(discord_user_id=42), "continual-learning")
    with Session(engine) as session, session.begin():
        session.add(ChannelFeed(guild_id=1, channel_id=2, topic_id=topic.id))
    results = {r.topic.slug: r for r in match_digest(engine, digest.digest_id)}
    papers = {h.paper.id for h in results["continual-learning"].hits}
    assert papers

    targets = fan_out(engine, digest.digest_id)

    assert len(targets.subscribers) == 2
    assert list(targets.channel_feeds.values()) == [[topic.id]]
    for topics in [*targets.subscribers.values(), *targets.channel_feeds.values()]:
        assert {m.paper_id for m in papers_for(engine, digest.digest_id, topics)} == papers


def test_a_subscriber_whose_topics_matched_nothing_gets_nothing(engine: Engine) -> None:
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    subscribe(engine, Who(email="ann@example.org"), '"no paper says this"')
    subscribe(engine, Who(email="bob@example.org"), "continual-learning")
    match_digest(engine, digest.digest_id)
    assert len(fan_out(engine, digest.digest_id).subscribers) == 1


def test_a_target_with_several_topics_gets_each_paper_best_first(engine: Engine) -> None:
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    subscribe(engine, Who(email="ann@example.org"), "continual-learning")
    subscribe(engine, Who(email="ann@example.org"), "in-context-learning")
    match_digest(engine, digest.digest_id)
    (topics,) = fan_out(engine, digest.digest_id).subscribers.values()
    assert len(topics) == 2
    matches = papers_for(engine, digest.digest_id, topics)
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)
    assert all(m.terms and all(isinstance(t, str) for t in m.terms) for m in matches)


def test_matching_again_replaces_the_stored_matches(engine: Engine) -> None:
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    subscribe(engine, Who(email="ann@example.org"), "agents")
    first = match_digest(engine, digest.digest_id)
    again = match_digest(engine, digest.digest_id)
    assert [len(r.hits) for r in again] == [len(r.hits) for r in first]
    with Session(engine) as session:
        stored = session.exec(select(func.count()).select_from(PaperMatch)).one()
    assert stored == sum(len(r.hits) for r in first) > 0


def test_a_catalogue_topic_asks_more_than_a_passing_mention_and_an_own_query_does_not(
    engine: Engine,
) -> None:
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    subscribe(engine, Who(email="ann@example.org"), "knowledge-distillation")
    own = subscribe(engine, Who(email="bob@example.org"), '"knowledge distillation"')
    results = {r.topic.id: r for r in match_digest(engine, digest.digest_id)}
    catalogue_hits = next(r for r in results.values() if r.topic.slug == "knowledge-distillation")
    assert min(h.score for h in catalogue_hits.hits) >= catalogue_hits.topic.min_score > 1
    assert min(h.score for h in results[own.id].hits) == 1


def test_a_new_own_query_is_matched_against_the_days_digests_at_once(engine: Engine) -> None:
    """Someone who writes a query nobody had after today's digest was matched finds today's
    papers in their first mail, rather than waiting for the next digest."""
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    match_digest(engine, digest.digest_id)
    now = NOW.replace(tzinfo=None)
    topic = subscribe(engine, Who(email="ann@example.org"), '"lifelong learning"', now=now)
    (topics,) = fan_out(engine, digest.digest_id).subscribers.values()
    assert topics == [topic.id]
    assert papers_for(engine, digest.digest_id, topics)


def test_a_new_own_query_leaves_older_digests_alone(engine: Engine) -> None:
    digest = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    match_digest(engine, digest.digest_id)
    two_days_on = NOW.replace(tzinfo=None) + timedelta(days=2)
    subscribe(engine, Who(email="ann@example.org"), '"lifelong learning"', now=two_days_on)
    assert fan_out(engine, digest.digest_id).subscribers == {}


def test_search_sees_a_digest_stored_after_its_papers_were_tokenised(engine: Engine) -> None:
    ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    papers = PaperSearch(engine)
    assert papers.search('title:"knowledge distillation"')
    assert not papers.search("title:draft")
    ingest_bytes(engine, (DATA / "2025-03-03.json").read_bytes(), "hf", NOW)
    (hit,) = papers.search("title:draft")
    assert hit.paper.title.startswith("Chain of Draft")


def test_search_leaves_out_papers_older_than_its_window(engine: Engine) -> None:
    ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    ingest_bytes(engine, (DATA / "2025-03-03.json").read_bytes(), "hf", NOW)  # 7 papers
    newest_seven = PaperSearch(engine, window=7)
    assert newest_seven.search("title:draft")
    assert not newest_seven.search('title:"knowledge distillation"')  # a seed paper
