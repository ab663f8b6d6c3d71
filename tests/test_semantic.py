"""Semantic matching: the model loads offline from its package, each paper is embedded once
and kept with the model that made it, and the combined score can match a paper on its
meaning, saying which labelled example it is close to."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import Engine, update
from sqlmodel import Session, select

from newsletter.config import get_settings
from newsletter.embedding import DEFAULT_MODEL, SETTING, Embedder, load_embedder
from newsletter.embedding.semantic import load_calibration, topic_space
from newsletter.ingest import ingest_bytes
from newsletter.matcher import LIKE, explain
from newsletter.models import PaperEmbedding
from newsletter.pipeline import match_digest
from tests.conftest import DATA, NOW

DAY = DATA / "2026-08-21.json"  # 17 real Daily Papers


@pytest.fixture
def semantic(monkeypatch: pytest.MonkeyPatch) -> Iterator[Embedder]:
    monkeypatch.setenv(SETTING, DEFAULT_MODEL)
    get_settings.cache_clear()
    embedder = load_embedder(DEFAULT_MODEL)
    assert embedder is not None
    yield embedder
    get_settings.cache_clear()


@pytest.fixture
def digest(engine: Engine) -> int:
    stored = ingest_bytes(engine, DAY.read_bytes(), "day", NOW).digest_id
    assert stored is not None
    return stored


def _stored(engine: Engine) -> list[PaperEmbedding]:
    with Session(engine) as session:
        return list(session.exec(select(PaperEmbedding)))


def test_the_model_puts_a_text_nearer_its_own_topic_than_another(semantic: Embedder) -> None:
    texts = [
        "Jailbreaking aligned language models with adversarial suffixes",
        "Universal and transferable adversarial attacks on aligned language models",
        "Text-to-speech synthesis with neural audio codecs",
    ]
    vectors = semantic.embed(texts)
    assert vectors.shape == (3, semantic.dimension)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_each_paper_is_embedded_once_and_kept(
    engine: Engine, digest: int, semantic: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    match_digest(engine, digest)
    rows = _stored(engine)
    assert len(rows) == 17
    assert {(r.model, r.dimension) for r in rows} == {(semantic.model_id, 384)}

    def refuse(texts: list[str]) -> np.ndarray:
        raise AssertionError(f"embedded {len(texts)} papers again")

    monkeypatch.setattr(semantic, "embed", refuse)
    match_digest(engine, digest)


def test_vectors_of_another_model_are_recomputed_not_mixed(
    engine: Engine, digest: int, semantic: Embedder
) -> None:
    match_digest(engine, digest)
    before = {r.paper_id: r.vector for r in _stored(engine)}
    with Session(engine) as session, session.begin():
        session.execute(
            update(PaperEmbedding).values(model="other-model:0123", vector=b"\0" * 4 * 384)
        )
    match_digest(engine, digest)
    after = _stored(engine)
    assert {r.model for r in after} == {semantic.model_id}
    assert {r.paper_id: r.vector for r in after} == before


def test_a_paper_can_match_on_meaning_and_says_what_it_is_close_to(
    engine: Engine, digest: int, semantic: Embedder
) -> None:
    examples = set(load_calibration().titles)
    reasons = [
        explain(hit.terms, hit.score)
        for found in match_digest(engine, digest)
        for hit in found.hits
        if any(t.startswith(LIKE) for t in hit.terms)
    ]
    assert reasons, "no paper of the day matched with semantic evidence"
    for reason in reasons:
        assert "close to this topic (like: " in reason
        title = reason.split("(like: ", 1)[1].rsplit(") · score ", 1)[0]
        assert title in examples


def test_without_the_model_matching_goes_on_with_the_queries(
    engine: Engine, digest: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(SETTING, "no_such_model_package")
    get_settings.cache_clear()
    load_embedder.cache_clear()
    topic_space.cache_clear()  # keyed by the setting: another test may have cached this one
    with caplog.at_level(logging.WARNING):
        matched = match_digest(engine, digest)
        match_digest(engine, digest)
    get_settings.cache_clear()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    [line] = warnings  # one line, however many digests
    assert SETTING in line and "no_such_model_package" in line
    assert load_embedder("no_such_model_package") is None
    assert sum(len(m.hits) for m in matched) > 0
    assert _stored(engine) == []
    assert not any(t.startswith(LIKE) for m in matched for h in m.hits for t in h.terms)


def test_a_calibration_for_another_model_is_refused_with_one_line(
    semantic: Embedder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    other = dataclasses.replace(load_calibration(), model="other:1")
    monkeypatch.setattr("newsletter.embedding.semantic.load_calibration", lambda: other)
    topic_space.cache_clear()
    try:
        with caplog.at_level(logging.WARNING):
            assert topic_space(DEFAULT_MODEL) is None
    finally:
        topic_space.cache_clear()
    [line] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert SETTING in line and "other:1" in line
