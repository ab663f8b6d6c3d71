"""What the database can hold, checked before it sees a digest's rows.

The limits are read from the tables themselves (a `String(64)` column, a 32-bit `Integer`),
so a refusal is the same on SQLite, which stores anything, and PostgreSQL, which raises a
`DataError` mid-transaction; and a column made wider in `models` is wider here too. Strings
are also refused where neither database can store them: NUL (PostgreSQL) and lone
surrogates (no UTF-8 encoding, so neither driver can send them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Integer, SmallInteger, String
from sqlmodel import SQLModel

from newsletter.sources import DigestError

_INT_BITS = {SmallInteger: 16, BigInteger: 64, Integer: 32}
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")
_SHOWN = 40


@cache
def _columns(table: type[SQLModel]) -> dict[str, Column[Any]]:
    return {column.name: column for column in table.__table__.columns}  # type: ignore[attr-defined]


def _bits(column: Column[Any]) -> int | None:
    for kind, bits in _INT_BITS.items():  # the narrower kinds first: they subclass Integer
        if isinstance(column.type, kind):
            return bits
    return None


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _string_problem(value: str) -> str | None:
    if bad := _UNSTORABLE.search(value):
        character = "NUL" if bad.group() == "\x00" else f"lone surrogate U+{ord(bad.group()):04X}"
        return f"has a {character} at character {bad.start() + 1}, which no database stores"
    return None


def problem(column: Column[Any], value: object) -> str | None:
    """Why `value` cannot go into `column`, or None."""
    if value is None:
        return None if column.nullable else "is missing"
    if isinstance(value, str):
        length = getattr(column.type, "length", None)
        if isinstance(column.type, String) and length is not None and len(value) > length:
            return (
                f"of {len(value):,} characters ({_shown(value)}) is over the "
                f"{length:,} the database keeps"
            )
        return _string_problem(value)
    if isinstance(value, (bool, datetime)):
        return None
    if isinstance(value, int):
        bits = _bits(column)
        if bits is not None and not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            return (
                f"{_shown(value)} is outside what the database stores "
                f"({-(2 ** (bits - 1)):,} to {2 ** (bits - 1) - 1:,})"
            )
        return None
    if isinstance(column.type, JSON) and isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if isinstance(item, str) and (why := _string_problem(item)):
                return f"item {index + 1} {why}"
    return None


def check_row(table: type[SQLModel], values: Mapping[str, object], where: str) -> None:
    """Raise `DigestError` at `where`, naming the field, for the first value `table` cannot
    hold; columns not in `values` are the database's to fill."""
    columns = _columns(table)
    for name, value in values.items():
        if (why := problem(columns[name], value)) is not None:
            raise DigestError(where, f"{name} {why}")
