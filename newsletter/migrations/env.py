"""Alembic environment: paperboy hands in its own connection; the alembic CLI gets one here."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from newsletter import models  # noqa: F401 - registers the tables on SQLModel.metadata
from newsletter.config import get_settings
from newsletter.db import make_engine


def run(connection: object) -> None:
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    with make_engine(get_settings().database_url).begin() as own_connection:
        run(own_connection)
