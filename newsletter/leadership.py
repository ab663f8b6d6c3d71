"""Which `paperboy run` process leads: polls the sources and queues the daily mails.

Any number of processes may send (the outbox hands each delivery to one of them), but
ingesting and queueing are done by one, so a digest is matched once and logs tell one story.
On PostgreSQL the leader holds a session advisory lock on a connection of its own: when the
process dies its connection closes and the server frees the lock, so another process takes
over at its next try, without any timeout to tune. The lock is keyed by the schema, so two
paperboy installations sharing a database do not block each other. On SQLite the lock is an
`flock` on a file beside the database, which the kernel frees the same way.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every paperboy process.
LOCK_CLASS = 7_270_002


class Leadership:
    """Try, keep and give up the leader's lock. Blocking calls: run them in a thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.held = False
        self._connection: Connection | None = None
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when this process leads (already or now)."""
        if self.held:
            return self.still_held()
        if self.engine.dialect.name == "postgresql":
            self.held = self._try_advisory_lock()
        else:
            self.held = self._try_file_lock()
        return self.held

    def still_held(self) -> bool:
        """Whether the lock is still ours: on PostgreSQL the lock lives as long as its
        connection, so a connection that broke means another process may lead by now."""
        if self.held and self._connection is not None:
            try:
                self._connection.execute(text("SELECT 1"))
            except SQLAlchemyError:
                log.warning("lost the database connection that held the leader's lock")
                self._drop_connection()
                self.held = False
        return self.held

    def release(self) -> None:
        self._drop_connection()
        if self._file is not None:
            self._file.close()  # closing the file frees its flock
            self._file = None
        self.held = False

    def _try_advisory_lock(self) -> bool:
        try:
            if self._connection is None:
                self._connection = self.engine.connect().execution_options(
                    isolation_level="AUTOCOMMIT"
                )
            got = self._connection.execute(
                text("SELECT pg_try_advisory_lock(:lock, hashtext(current_schema()))"),
                {"lock": LOCK_CLASS},
            ).scalar_one()
        except SQLAlchemyError as problem:
            log.warning("cannot try for leadership: %s", type(problem).__name__)
            self._drop_connection()
            return False
        if not got:
            self._drop_connection()  # keep no idle connection while following
        return bool(got)

    def _try_file_lock(self) -> bool:
        database = self.engine.url.database
        if not database or database == ":memory:":
            return True  # nothing else can open this database
        path = Path(database).with_name(Path(database).name + ".leader")
        handle = path.open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._file = handle
        return True

    def _drop_connection(self) -> None:
        """Close the connection for real: back in the pool it would keep its session lock."""
        if self._connection is not None:
            with contextlib.suppress(SQLAlchemyError):
                self._connection.invalidate()
                self._connection.close()
            self._connection = None
