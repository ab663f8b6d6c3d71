"""soft bounces counted; what each daily mail held kept for its web copy

Revision ID: 0009
Revises: 0007
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain ADD COLUMNs, not batch operations: on SQLite a batch rebuilds the table, and dropping
# the old `subscriber` would cascade-delete every subscription.


def upgrade() -> None:
    op.add_column(
        "subscriber",
        sa.Column("soft_bounces", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("delivery", sa.Column("web_copy", sa.String(length=64), nullable=True))
    op.create_table(
        "web_copy",
        sa.Column("id", sa.String(length=64), primary_key=True),
        sa.Column("sections", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=False), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("web_copy")
    op.drop_column("delivery", "web_copy")
    op.drop_column("subscriber", "soft_bounces")
