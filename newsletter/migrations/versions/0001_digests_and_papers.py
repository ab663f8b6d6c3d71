"""digests, papers and the digest-paper link

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("content_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("source_format", sa.String(32), nullable=False),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("digest_date", sa.Date(), nullable=False),
        sa.Column("date_note", sa.Text(), nullable=False),
        sa.Column("paper_count", sa.Integer(), nullable=False),
        sa.Column("ingested_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_digest_digest_date", "digest", ["digest_date"])
    op.create_table(
        "paper",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("arxiv_id", sa.String(64), nullable=True, unique=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("title_key", sa.String(500), nullable=False),
        sa.Column("abstract", sa.Text(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("upvotes", sa.Integer(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_paper_title_key", "paper", ["title_key"])
    op.create_index(
        "uq_paper_title_key_without_arxiv_id",
        "paper",
        ["title_key"],
        unique=True,
        sqlite_where=sa.text("arxiv_id IS NULL"),
        postgresql_where=sa.text("arxiv_id IS NULL"),
    )
    op.create_table(
        "digest_paper",
        sa.Column(
            "digest_id",
            sa.Integer(),
            sa.ForeignKey("digest.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("paper_id", sa.Integer(), sa.ForeignKey("paper.id"), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("announce_type", sa.String(32), nullable=True),
        sa.Column("upvotes", sa.Integer(), nullable=True),
        sa.UniqueConstraint("digest_id", "position"),
    )
    op.create_index("ix_digest_paper_paper_id", "digest_paper", ["paper_id"])


def downgrade() -> None:
    op.drop_table("digest_paper")
    op.drop_table("paper")
    op.drop_table("digest")
