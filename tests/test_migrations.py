"""Schema migrations: applied on first use, in step with the models, safe to run twice."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

from newsletter.db import DatabaseError, current_revision, head_revision, make_engine, open_database
from newsletter.feeds import add_feed
from newsletter.ingest import ingest_bytes
from tests.conftest import NOW, SEED


def test_first_use_creates_the_schema_at_the_newest_revision(database_url: str) -> None:
    engine = open_database(database_url)
    assert current_revision(engine) == head_revision()
    assert {"digest", "paper", "digest_paper"} <= set(inspect(engine).get_table_names())


def test_migrations_create_exactly_what_the_models_describe(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_reopening_keeps_every_row(database_url: str) -> None:
    ingest_bytes(open_database(database_url), SEED.read_bytes(), "seed", NOW)
    engine = open_database(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM paper")).scalar_one() == 76


def test_a_database_from_the_first_release_upgrades_without_losing_rows(database_url: str) -> None:
    old = open_database(database_url, "0001")
    ingest_bytes(old, SEED.read_bytes(), "seed", NOW)
    assert current_revision(old) == "0001"
    engine = open_database(database_url)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM paper")).scalar_one() == 76
        assert connection.execute(text("SELECT count(*) FROM digest_paper")).scalar_one() == 76


def test_two_starters_at_once_both_get_a_ready_schema(database_url: str) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        engines = list(pool.map(open_database, [database_url, database_url]))
    assert [current_revision(e) for e in engines] == [head_revision()] * 2


def test_a_database_from_a_newer_paperboy_is_refused_clearly(database_url: str) -> None:
    open_database(database_url)
    with make_engine(database_url).begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'f00d'"))
    with pytest.raises(DatabaseError, match=r"cannot open database .*f00d"):
        open_database(database_url)


def test_an_unreachable_server_is_named_without_its_password() -> None:
    url = "postgresql+psycopg://paperboy:s3cret@127.0.0.1:1/none"
    with pytest.raises(DatabaseError) as caught:
        open_database(url)
    assert "127.0.0.1:1/none" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_a_malformed_url_is_refused_clearly() -> None:
    with pytest.raises(DatabaseError, match="is not a database URL"):
        open_database("not a url")


def test_subscribers_from_before_opt_in_keep_their_topics_and_await_confirmation(
    database_url: str,
) -> None:
    old = open_database(database_url, "0002")
    with old.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO topic (id, name, query, canonical, builtin, created_at) "
                "VALUES (1, 'mine', 'lifelong', 'lifelong', false, '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO subscriber (id, email, timezone, delivery_hour, created_at) "
                "VALUES (1, 'ann@example.org', 'UTC', 7, '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO subscription (subscriber_id, topic_id, created_at) "
                "VALUES (1, 1, '2026-01-01')"
            )
        )
    engine = open_database(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM subscription")).scalar_one() == 1
        assert connection.execute(text("SELECT min_score FROM topic")).scalar_one() == 1
        status = connection.execute(text("SELECT email_status FROM subscriber")).scalar_one()
        assert status == "pending"  # never confirmed: no mail until they are


def test_channel_feeds_and_queued_deliveries_survive_the_discord_upgrade(
    database_url: str,
) -> None:
    old = open_database(database_url, "0004")
    with old.begin() as connection:
        for statement in (
            "INSERT INTO topic (id, name, query, canonical, builtin, min_score, created_at) "
            "VALUES (1, 'mine', 'lifelong', 'lifelong', false, 1, '2026-01-01')",
            "INSERT INTO subscriber (id, discord_user_id, timezone, delivery_hour, "
            "hard_failures, created_at) VALUES (1, 42, 'UTC', 7, 0, '2026-01-01')",
            "INSERT INTO subscription (subscriber_id, topic_id, created_at) "
            "VALUES (1, 1, '2026-01-01')",
            "INSERT INTO channel_feed (id, guild_id, channel_id, topic_id, created_at) "
            "VALUES (1, 10, 20, 1, '2026-01-01')",
            "INSERT INTO delivery (key, kind, channel_feed_id, status, attempts, "
            "next_attempt_at, created_at) "
            "VALUES ('k', 'post', 1, 'pending', 0, '2026-01-01', '2026-01-01')",
        ):
            connection.execute(text(statement))
    engine = open_database(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM subscription")).scalar_one() == 1
        feed = connection.execute(text("SELECT disabled_reason FROM channel_feed")).one()
        assert feed == (None,)  # still posting
        assert connection.execute(text("SELECT discord_dm FROM subscriber")).scalar_one() in (
            False,
            0,
        )
        assert connection.execute(text("SELECT progress FROM delivery")).scalar_one() == 0


def test_pending_addresses_keep_their_topics_when_wrong_codes_start_being_counted(
    database_url: str,
) -> None:
    old = open_database(database_url, "0006")
    with old.begin() as connection:
        for statement in (
            "INSERT INTO topic (id, name, query, canonical, builtin, min_score, created_at) "
            "VALUES (1, 'mine', 'lifelong', 'lifelong', false, 1, '2026-01-01')",
            "INSERT INTO subscriber (id, email, email_status, timezone, delivery_hour, "
            "hard_failures, discord_dm, created_at) "
            "VALUES (1, 'ann@example.org', 'pending', 'UTC', 7, 0, false, '2026-01-01')",
            "INSERT INTO subscription (subscriber_id, topic_id, created_at) "
            "VALUES (1, 1, '2026-01-01')",
        ):
            connection.execute(text(statement))
    engine = open_database(database_url)
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM subscription")).scalar_one() == 1
        row = connection.execute(text("SELECT email_status, code_attempts FROM subscriber")).one()
        assert tuple(row) == ("pending", 0)


def test_feeds_from_before_post_formats_keep_their_full_posts_and_new_ones_are_compact(
    database_url: str,
) -> None:
    old = open_database(database_url, "0009")
    with old.begin() as connection:
        for statement in (
            # Ids past what the sequences hand out next (PostgreSQL does not advance them).
            "INSERT INTO topic (id, name, query, canonical, builtin, min_score, created_at) "
            "VALUES (1000, 'mine', 'lifelong', 'lifelong', false, 1, '2026-01-01')",
            "INSERT INTO channel_feed (id, guild_id, channel_id, topic_id, added_by, created_at) "
            "VALUES (1000, 10, 20, 1000, 7, '2026-01-01')",
        ):
            connection.execute(text(statement))
    engine = open_database(database_url)
    add_feed(engine, 10, 21, "lifelong")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT channel_id, added_by, post_format FROM channel_feed ORDER BY channel_id")
        ).all()
    assert [tuple(row) for row in rows] == [(20, 7, "full"), (21, None, "compact")]
