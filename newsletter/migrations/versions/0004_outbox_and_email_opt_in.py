"""outbox and email opt-in

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "app_setting",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=True),
        sa.Column("channel_feed_id", sa.Integer(), nullable=True),
        sa.Column("digest_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=True),
        sa.Column("after_digest_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["channel_feed_id"], ["channel_feed.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["digest_id"], ["digest.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_delivery_channel_feed_id"), ["channel_feed_id"], unique=False
        )
        batch_op.create_index("ix_delivery_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_delivery_subscriber_id"), ["subscriber_id"], unique=False
        )

    # Plain ADD COLUMNs: a batch rebuild of `subscriber` on SQLite would cascade-delete
    # every subscription when it drops the old table.
    op.add_column("subscriber", sa.Column("email_status", sa.String(length=16), nullable=True))
    op.add_column("subscriber", sa.Column("email_confirmed_at", sa.DateTime(), nullable=True))
    op.add_column("subscriber", sa.Column("confirmation_sent_at", sa.DateTime(), nullable=True))
    op.add_column(
        "subscriber",
        sa.Column("hard_failures", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    # Addresses added before double opt-in never confirmed: they get no mail until they do
    # (or an admin vouches for them with `paperboy subscribers confirm`).
    op.execute("UPDATE subscriber SET email_status = 'pending' WHERE email IS NOT NULL")


def downgrade() -> None:
    for column in ("hard_failures", "confirmation_sent_at", "email_confirmed_at", "email_status"):
        op.drop_column("subscriber", column)

    with op.batch_alter_table("delivery", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_delivery_subscriber_id"))
        batch_op.drop_index("ix_delivery_due")
        batch_op.drop_index(batch_op.f("ix_delivery_channel_feed_id"))

    op.drop_table("delivery")
    op.drop_table("app_setting")
