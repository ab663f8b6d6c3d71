"""Paper vectors kept in the database: computed once per paper, per model.

A stored vector made by another model (or of another dimension) is recomputed and replaced,
so vectors of two models are never compared. The model runs outside any write transaction:
a digest of 1,000 papers takes most of a minute, too long to hold the database.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from sqlalchemy import Engine, delete
from sqlmodel import Session, col, select

from newsletter.db import writing
from newsletter.embedding import Embedder, paper_text
from newsletter.models import Paper, PaperEmbedding

log = logging.getLogger(__name__)


def stored_vectors(engine: Engine, ids: Sequence[int], model: str) -> dict[int, np.ndarray]:
    """The vectors this model made for these papers; others' are left out."""
    with Session(engine) as session:
        rows = session.exec(
            select(PaperEmbedding).where(col(PaperEmbedding.paper_id).in_(list(ids)))
        ).all()
    return {
        row.paper_id: np.frombuffer(row.vector, dtype=np.float32)
        for row in rows
        if row.model == model and len(row.vector) == 4 * row.dimension
    }


def store_vectors(engine: Engine, vectors: dict[int, np.ndarray], model: str) -> None:
    """Keep these vectors, replacing whatever was stored for the same papers."""
    if not vectors:
        return
    with Session(writing(engine)) as session, session.begin():
        session.execute(
            delete(PaperEmbedding).where(col(PaperEmbedding.paper_id).in_(list(vectors)))
        )
        session.add_all(
            PaperEmbedding(
                paper_id=paper_id,
                model=model,
                dimension=int(vector.shape[0]),
                vector=np.asarray(vector, dtype=np.float32).tobytes(),
            )
            for paper_id, vector in vectors.items()
        )


def paper_vectors(engine: Engine, papers: Sequence[Paper], embedder: Embedder) -> np.ndarray:
    """One unit row per paper, in their order: stored ones read, missing or stale ones made
    (and stored) now."""
    ids = [p.id for p in papers if p.id is not None]
    known = stored_vectors(engine, ids, embedder.model_id)
    known = {i: v for i, v in known.items() if v.shape[0] == embedder.dimension}
    missing = [p for p in papers if p.id not in known]
    if missing:
        started = time.perf_counter()
        made = embedder.embed([paper_text(p.title, p.abstract) for p in missing])
        fresh = {p.id: made[n] for n, p in enumerate(missing) if p.id is not None}
        store_vectors(engine, fresh, embedder.model_id)
        known.update(fresh)
        log.info(
            "embedded %d paper(s) with %s in %.1f s",
            len(missing),
            embedder.model_id,
            time.perf_counter() - started,
        )
    result = np.zeros((len(papers), embedder.dimension), dtype=np.float32)
    for row, paper in enumerate(papers):
        result[row] = known[paper.id]
    return result
