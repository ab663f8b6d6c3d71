"""Read-side queries over stored digests and papers, shared by the CLI and later front ends."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlmodel import Session, col, select

from newsletter.models import Digest, DigestPaper, Paper


@dataclass(frozen=True)
class ListedPaper:
    paper: Paper
    position: int | None = None
    announce_type: str | None = None


class UnknownDigest(LookupError):
    def __init__(self, digest_id: int) -> None:
        super().__init__(f"no digest with id {digest_id} (`paperboy digests` lists them)")


def list_digests(engine: Engine) -> list[Digest]:
    with Session(engine) as session:
        return list(session.exec(select(Digest).order_by(col(Digest.id))))


def list_papers(
    engine: Engine, digest_id: int | None = None, limit: int | None = None
) -> list[ListedPaper]:
    """All papers in the order they were first seen, or one digest's papers in its order."""
    with Session(engine) as session:
        if digest_id is None:
            rows = session.exec(select(Paper).order_by(col(Paper.id)).limit(limit))
            return [ListedPaper(paper) for paper in rows]
        if session.get(Digest, digest_id) is None:
            raise UnknownDigest(digest_id)
        query = (
            select(Paper, DigestPaper)
            .join(DigestPaper, col(DigestPaper.paper_id) == col(Paper.id))
            .where(DigestPaper.digest_id == digest_id)
            .order_by(col(DigestPaper.position))
            .limit(limit)
        )
        return [
            ListedPaper(paper, link.position, link.announce_type)
            for paper, link in session.exec(query)
        ]
