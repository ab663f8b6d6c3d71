"""topic min_score

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing topics keep matching on any hit until the catalogue sync sets its thresholds.
    # A plain ADD COLUMN: batch mode would rebuild `topic` on SQLite, and dropping the old
    # table there cascades to every subscription.
    op.add_column(
        "topic", sa.Column("min_score", sa.Float(), nullable=False, server_default=sa.text("1"))
    )


def downgrade() -> None:
    op.drop_column("topic", "min_score")
