"""Storing digests: once per content, papers once across digests, nothing half written."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import Engine, event, func
from sqlmodel import Session, select

from newsletter.ingest import Outcome, ingest_bytes
from newsletter.models import Digest, DigestPaper, Paper
from newsletter.sources import DigestError
from tests.conftest import DATA, NOW, SEED, seed_paragraphs


def counts(engine: Engine) -> tuple[int, int, int]:
    with Session(engine) as session:
        return tuple(  # type: ignore[return-value]
            session.exec(select(func.count()).select_from(table)).one()
            for table in (Digest, Paper, DigestPaper)
        )


def stored_titles(engine: Engine, digest_id: int) -> list[tuple[str, str]]:
    with Session(engine) as session:
        query = (
            select(Paper.title, Paper.abstract)
            .join(DigestPaper)
            .where(DigestPaper.digest_id == digest_id)
            .order_by(DigestPaper.position)
        )
        return [tuple(row) for row in session.exec(query)]  # type: ignore[misc]


def test_seed_stores_76_papers_exactly_as_in_the_file(engine: Engine) -> None:
    result = ingest_bytes(engine, SEED.read_bytes(), str(SEED), NOW)
    assert (result.outcome, result.papers, result.new) == (Outcome.STORED, 76, 76)
    body = seed_paragraphs()[6:]
    assert stored_titles(engine, result.digest_id) == list(zip(body[0::2], body[1::2], strict=True))


def test_the_digest_record_says_its_year_was_inferred(engine: Engine) -> None:
    result = ingest_bytes(engine, SEED.read_bytes(), str(SEED), NOW)
    with Session(engine) as session:
        digest = session.get(Digest, result.digest_id)
    assert digest is not None
    assert str(digest.digest_date) == "2026-09-09"
    assert "has no year: took 2026" in digest.date_note


def test_the_same_digest_twice_stores_nothing_new(engine: Engine) -> None:
    first = ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    before = counts(engine)
    second = ingest_bytes(engine, SEED.read_bytes(), "copy-of-seed", NOW)
    assert second.outcome is Outcome.ALREADY
    assert second.digest_id == first.digest_id
    assert counts(engine) == before == (1, 76, 76)


def test_a_paper_in_two_digests_is_stored_once_and_linked_to_both(engine: Engine) -> None:
    ingest_bytes(engine, (DATA / "arxiv-atom-query.xml").read_bytes(), "atom", NOW)
    rss = ingest_bytes(engine, (DATA / "arxiv-rss-cs.LG.xml").read_bytes(), "rss", NOW)
    assert (rss.papers, rss.new) == (5, 4)
    with Session(engine) as session:
        shared = session.exec(select(Paper).where(Paper.arxiv_id == "2609.09200")).one()
        links = session.exec(select(DigestPaper).where(DigestPaper.paper_id == shared.id)).all()
    assert len(links) == 2
    assert counts(engine) == (2, 7, 8)


def test_rss_replace_updates_the_stored_paper_instead_of_adding_one(engine: Engine) -> None:
    original = [
        {
            "paper": {
                "id": "2608.01234",
                "title": "Continual Learning via Adapters",
                "summary": "First version.",
                "authors": [{"name": "Maria Rossi"}],
            }
        }
    ]
    ingest_bytes(engine, json.dumps(original).encode(), "hf.json", NOW)
    ingest_bytes(engine, (DATA / "arxiv-rss-cs.LG.xml").read_bytes(), "rss", NOW)
    with Session(engine) as session:
        rows = session.exec(select(Paper).where(Paper.arxiv_id == "2608.01234")).all()
    assert len(rows) == 1
    assert (
        rows[0].title == "Continual Learning without Forgetting via Orthogonal Adapters (Revised)"
    )
    assert rows[0].abstract.startswith("Revised version:")
    assert rows[0].authors == ["Maria Rossi", "Tom Becker"]
    assert rows[0].version == 2


def test_an_older_sighting_never_overwrites_a_newer_version(engine: Engine) -> None:
    ingest_bytes(engine, (DATA / "arxiv-atom-query.xml").read_bytes(), "atom", NOW)
    stale = [{"paper": {"id": "2401.01234v1", "title": "Old Title", "summary": "Old."}}]
    result = ingest_bytes(engine, json.dumps(stale).encode(), "old.json", NOW)
    assert result.updated == 0
    with Session(engine) as session:
        paper = session.exec(select(Paper).where(Paper.arxiv_id == "2401.01234")).one()
    assert paper.title.startswith("Sparse Attention at Scale")


def test_a_title_only_paper_gains_its_arxiv_id_when_a_later_digest_names_it(engine: Engine) -> None:
    ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    title = seed_paragraphs()[6]
    later = [{"paper": {"id": "2508.12345", "title": title.upper(), "upvotes": 9}}]
    result = ingest_bytes(engine, json.dumps(later).encode(), "hf.json", NOW)
    assert (result.new, result.updated) == (0, 1)
    with Session(engine) as session:
        paper = session.exec(select(Paper).where(Paper.arxiv_id == "2508.12345")).one()
    assert paper.title == title
    assert paper.url == "https://huggingface.co/papers/2508.12345"
    assert paper.upvotes == 9


def test_a_paper_listed_twice_in_one_digest_is_linked_once(engine: Engine) -> None:
    entry = {"paper": {"id": "2405.15738", "title": "Twice"}}
    result = ingest_bytes(engine, json.dumps([entry, entry]).encode(), "dup.json", NOW)
    assert (result.papers, result.new) == (1, 1)
    assert counts(engine) == (1, 1, 1)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a digest at all",
        b'{"wrong": "shape"}',
        (DATA / "2026-08-21.json").read_bytes()[:20_000],
        (DATA / "arxiv-rss-cs.LG.xml").read_bytes()[:2_500],
        SEED.read_bytes()[: SEED.read_bytes().index(b"\n\nWe present DrivAerNet")],
        SEED.read_bytes() + b"\n\nA Title Without Its Abstract",
        b"\xff\xfe" + SEED.read_bytes(),
    ],
    ids=[
        "empty",
        "prose",
        "wrong-json",
        "truncated-json",
        "truncated-feed",
        "truncated-capture",
        "title-without-abstract",
        "bad-utf8",
    ],
)
def test_bad_input_leaves_the_database_unchanged(engine: Engine, data: bytes) -> None:
    ingest_bytes(engine, (DATA / "2025-03-03.json").read_bytes(), "good.json", NOW)
    before = counts(engine)
    with pytest.raises(DigestError):
        ingest_bytes(engine, data, "bad", NOW)
    assert counts(engine) == before


def test_a_failure_while_writing_rolls_the_whole_digest_back(engine: Engine) -> None:
    """The fault is injected into the real connection: the insert of the link rows fails."""

    def fail_on_links(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if statement.startswith("INSERT INTO digest_paper"):
            raise RuntimeError("disk full")

    event.listen(engine, "before_cursor_execute", fail_on_links)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            ingest_bytes(engine, SEED.read_bytes(), "seed", NOW)
    finally:
        event.remove(engine, "before_cursor_execute", fail_on_links)
    assert counts(engine) == (0, 0, 0)
    assert ingest_bytes(engine, SEED.read_bytes(), "seed", NOW).new == 76


def test_an_empty_digest_stores_nothing(engine: Engine) -> None:
    result = ingest_bytes(engine, (DATA / "arxiv-rss-no-announcements.xml").read_bytes(), "e", NOW)
    assert result.outcome is Outcome.EMPTY
    assert counts(engine) == (0, 0, 0)


def test_hostile_text_is_stored_verbatim_for_later_escaping(engine: Engine) -> None:
    title = '"><img src=x onerror=alert(1)> @everyone <@&123>'
    entry = {
        "paper": {"id": "2509.00001", "title": title, "summary": "<script>x</script>\u202eevil"}
    }
    ingest_bytes(engine, json.dumps([entry]).encode(), "hostile.json", NOW)
    with Session(engine) as session:
        paper = session.exec(select(Paper)).one()
    assert paper.title == title
    assert paper.abstract == "<script>x</script>\u202eevil"


def test_a_naive_time_is_taken_as_utc_whatever_the_machines_zone(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        ingest_bytes(engine, SEED.read_bytes(), "seed", NOW.replace(tzinfo=None))
    finally:
        monkeypatch.undo()
        time.tzset()
    with Session(engine) as session:
        assert session.exec(select(Digest.ingested_at)).one() == NOW.replace(tzinfo=None)
