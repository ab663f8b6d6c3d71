"""What every `paperboy` command shares: the consoles, exit codes and opening the database."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine

from newsletter.config import get_settings
from newsletter.db import DatabaseError, open_database
from newsletter.outbox import Summary

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 1


def fail(message: str, code: int) -> typer.Exit:
    err.print(Text(f"error: {message}", style="red"))
    return typer.Exit(code)


def open_engine() -> Engine:
    try:
        return open_database(get_settings().database_url)
    except DatabaseError as problem:
        raise fail(str(problem), EXIT_UNAVAILABLE) from None


def summary_table(title: str, summaries: dict[str, Summary]) -> Table:
    """What a sending run did, one row per way of sending (mail, Discord)."""
    table = Table(title=title)
    columns = ("sent", "retried", "failed", "skipped")
    for name in ("", *columns) if len(summaries) > 1 else columns:
        table.add_column(name, justify="right")
    for name, summary in summaries.items():
        counts = [str(getattr(summary, column)) for column in columns]
        table.add_row(*([name, *counts] if len(summaries) > 1 else counts))
    return table
