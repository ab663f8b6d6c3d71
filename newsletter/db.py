"""Engine and schema: the database is brought to the newest migration on first use."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

MIGRATIONS = Path(__file__).with_name("migrations")
# Any constant works; it only has to be the same in every paperboy process.
_MIGRATION_LOCK = 7_270_001


class DatabaseError(RuntimeError):
    """The database cannot be opened or upgraded; the message says which and why."""


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def writing(engine: Engine) -> Engine:
    """The engine for a transaction that will write.

    SQLite's default deferred BEGIN takes the write lock only at the first write, and two
    such transactions can deadlock on it (one gets "database is locked" at once); BEGIN
    IMMEDIATE queues writers behind the busy timeout instead. Other databases lock per row.
    """
    if engine.dialect.name != "sqlite":
        return engine
    return engine.execution_options(sqlite_begin="BEGIN IMMEDIATE")


def _sqlite_connect(connection: Any, _record: object) -> None:
    # pysqlite's own transaction handling skips BEGIN before DDL; let SQLAlchemy emit it.
    connection.isolation_level = None
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL lets readers run beside the writer. The mode is stored in the file, so only the
    # first connection ever switches it; one racing it gets "locked" and can let it be.
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        with contextlib.suppress(sqlite3.OperationalError):
            cursor.execute("PRAGMA journal_mode=WAL")
    # In WAL mode NORMAL syncs at checkpoints, not at every commit: a killed process loses
    # nothing committed, only a power cut can lose the last commits. The sender commits once
    # per mail, so this is most of its commit cost.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_begin(connection: Connection) -> None:
    connection.exec_driver_sql(connection.get_execution_options().get("sqlite_begin", "BEGIN"))


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations; on PostgreSQL an advisory lock keeps concurrent starters in line."""
    config = _alembic_config()
    with writing(engine).begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def describe(url: str) -> str:
    """Where the data lives, for messages: the file of a SQLite URL, else the URL sans password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        return str(Path(parsed.database).expanduser().resolve())
    return parsed.render_as_string(hide_password=True)


def open_database(url: str, revision: str | None = None) -> Engine:
    """An engine on an up-to-date schema (or at `revision`), or a `DatabaseError` saying why."""
    try:
        safe = describe(url)
    except ArgumentError:
        raise DatabaseError(f"{url!r} is not a database URL (PAPERBOY_DATABASE_URL)") from None
    try:
        engine = make_engine(url)
        if revision is not None or current_revision(engine) != head_revision():
            upgrade(engine, revision or "head")
    except ImportError as err:
        raise DatabaseError(
            f"cannot open database {safe}: driver missing ({err.name}); for PostgreSQL "
            "install paperboy[postgres]"
        ) from err
    except (SQLAlchemyError, CommandError, OSError) as err:
        reason = str(err).splitlines()[0]
        raise DatabaseError(f"cannot open database {safe}: {reason}") from err
    return engine
