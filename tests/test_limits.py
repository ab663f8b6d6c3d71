"""Limits checked before the database: a value a column cannot hold is refused naming the
field and the paper, the same on SQLite (which would store it) and PostgreSQL (which would
raise mid-transaction), and nothing of that digest is written.

The parsers refuse the fields they know first (tests/test_parser_limits_in_the_database.py);
this is the net under them, for every column, including what no parser checks."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from newsletter.ingest import ingest_bytes
from newsletter.limits import check_row, problem
from newsletter.models import Digest, DigestPaper, Paper
from newsletter.sources import DigestError
from tests.conftest import DATA, NOW

RSS = (DATA / "arxiv-rss-cs.LG.xml").read_text(encoding="utf-8")
HF_DAY = DATA / "2025-09-09.json"


def rows(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(table)).one()
            for table in (Digest, Paper, DigestPaper)
        )


def refusal(engine: Engine, data: bytes) -> str:
    with pytest.raises(DigestError) as caught:
        ingest_bytes(engine, data, "hostile.xml", NOW)
    assert rows(engine) == (0, 0, 0)
    return str(caught.value)


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("title", "Lone \ud83d surrogate", "has a lone surrogate U+D83D at character 6"),
    ],
)
def test_a_json_day_with_an_unstorable_value_is_refused_whole(
    engine: Engine, field: str, value: object, why: str
) -> None:
    entries = json.loads(HF_DAY.read_bytes())
    entries[3]["paper"][field] = value
    message = refusal(engine, json.dumps(entries).encode())
    assert f": paper 4 ({entries[3]['paper']['id']}): {field} " in message
    assert why in message


def test_the_column_sizes_come_from_the_tables_themselves() -> None:
    arxiv_id = Paper.__table__.columns["arxiv_id"]  # type: ignore[attr-defined]
    assert problem(arxiv_id, "x" * 64) is None
    assert "over the 64" in (problem(arxiv_id, "x" * 65) or "")
    version = Paper.__table__.columns["version"]  # type: ignore[attr-defined]
    assert problem(version, 2**31 - 1) is None
    assert problem(version, 2**31) is not None


def test_nul_in_an_author_name_is_refused_with_its_place() -> None:
    with pytest.raises(DigestError, match=re.escape("paper 2: authors item 3 has a NUL")):
        check_row(Paper, {"authors": ["a", "b", "c\x00d"]}, "paper 2")


def test_values_within_the_limits_pass_untouched(engine: Engine) -> None:
    result = ingest_bytes(engine, HF_DAY.read_bytes(), "day.json", NOW)
    assert rows(engine) == (1, result.papers, result.papers)
