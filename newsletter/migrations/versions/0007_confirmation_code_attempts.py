"""wrong confirmation codes counted

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A plain ADD COLUMN, not a batch operation: on SQLite a batch rebuilds `subscriber`, and
# dropping the old table would cascade-delete every subscription.


def upgrade() -> None:
    op.add_column(
        "subscriber",
        sa.Column("code_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("subscriber", "code_attempts")
