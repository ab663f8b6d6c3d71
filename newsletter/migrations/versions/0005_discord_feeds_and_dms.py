"""discord feeds and direct messages

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain ADD COLUMNs, not batch operations: on SQLite a batch rebuilds the table, and
# rebuilding `subscriber` or `channel_feed` would cascade-delete the rows that refer to them.


def upgrade() -> None:
    op.add_column("channel_feed", sa.Column("added_by", sa.BigInteger(), nullable=True))
    op.add_column("channel_feed", sa.Column("disabled_reason", sa.Text(), nullable=True))
    op.add_column("channel_feed", sa.Column("disabled_at", sa.DateTime(), nullable=True))
    op.add_column(
        "subscriber",
        sa.Column("discord_dm", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "delivery",
        sa.Column("progress", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("delivery", "progress")
    op.drop_column("subscriber", "discord_dm")
    for column in ("disabled_at", "disabled_reason", "added_by"):
        op.drop_column("channel_feed", column)
