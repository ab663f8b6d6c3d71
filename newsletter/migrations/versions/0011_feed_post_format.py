"""how each channel feed posts: compact (the new default) or full; existing feeds stay full

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

Feeds added from now on post a compact list. A feed that existed before the upgrade keeps
the per-paper embeds its channel has been getting: nobody chose otherwise for it, and an
admin switches it with `/feed add ... format:compact` (or `paperboy feeds add --format`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A plain ADD COLUMN, not a batch operation: on SQLite a batch rebuilds the table, and
# dropping the old `channel_feed` would cascade-delete the deliveries queued for it.


def upgrade() -> None:
    op.add_column(
        "channel_feed",
        sa.Column("post_format", sa.String(length=16), server_default="compact", nullable=False),
    )
    op.execute("UPDATE channel_feed SET post_format = 'full'")


def downgrade() -> None:
    op.drop_column("channel_feed", "post_format")
