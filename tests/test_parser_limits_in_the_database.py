"""The parser's limits are the columns': what it lets through, PostgreSQL stores, and what it
refuses, SQLite and PostgreSQL refuse alike, with the same one line and nothing written.

Before, PostgreSQL failed the transaction with a DataError and SQLite stored the value.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, select

from newsletter.ingest import ingest_bytes
from newsletter.models import Digest, DigestPaper, Paper
from newsletter.sources import DigestError
from tests.conftest import DATA, NOW

LISTING = (DATA / "arxiv-rss-quant-ph-2025-04-28.xml").read_bytes()
HF = (DATA / "2025-09-09.json").read_text(encoding="utf-8")
GUID = b"oai:arXiv.org:2504.17830v1"
ANNOUNCE = b"<arxiv:announce_type>new</arxiv:announce_type>"


def announce(kind: bytes) -> bytes:
    return LISTING.replace(ANNOUNCE, b"<arxiv:announce_type>" + kind + b"</arxiv:announce_type>", 1)


def upvotes(value: int) -> bytes:
    entries = json.loads(HF)
    entries[0]["paper"]["upvotes"] = value
    return json.dumps(entries).encode()


AT_THE_LIMIT = {
    "announce type of 32": announce(b"n" * 32),
    "arXiv id of 64": LISTING.replace(GUID, b"oai:arXiv.org:" + b"a" * 56 + b"/0601001v1", 1),
    "version 2**31 - 1": LISTING.replace(GUID, b"oai:arXiv.org:2504.17830v2147483647", 1),
    "upvotes 2**31 - 1": upvotes(2**31 - 1),
}
OVER_THE_LIMIT = {
    "announce type of 33": (announce(b"n" * 33), "item 1"),
    "arXiv id of 65": (
        LISTING.replace(GUID, b"oai:arXiv.org:" + b"a" * 57 + b"/0601001v1", 1),
        "item 1",
    ),
    "version 2**31": (LISTING.replace(GUID, b"oai:arXiv.org:2504.17830v2147483648", 1), "item 1"),
    "upvotes 2**31": (upvotes(2**31), "$[0].paper.upvotes"),
}


def counts(engine: Engine) -> tuple[int, ...]:
    with Session(engine) as session:
        return tuple(
            session.exec(select(func.count()).select_from(table)).one()
            for table in (Digest, Paper, DigestPaper)
        )


@pytest.mark.parametrize("case", sorted(AT_THE_LIMIT))
def test_a_value_at_the_limit_is_stored(engine: Engine, case: str) -> None:
    result = ingest_bytes(engine, AT_THE_LIMIT[case], case, NOW)
    assert result.digest_id is not None
    assert counts(engine)[1] == (81 if b"<rss" in AT_THE_LIMIT[case][:300] else 16)


@pytest.mark.parametrize("case", sorted(OVER_THE_LIMIT))
def test_a_value_over_the_limit_is_refused_alike_with_nothing_written(
    engine: Engine, case: str
) -> None:
    data, where = OVER_THE_LIMIT[case]
    with pytest.raises(DigestError) as caught:
        ingest_bytes(engine, data, "over", NOW)
    assert caught.value.where == where
    assert str(caught.value).startswith(f"over: {where}: ")
    assert counts(engine) == (0, 0, 0)
