"""subscribers topics subscriptions channel feeds matches

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscriber",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("discord_user_id", sa.BigInteger(), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("delivery_hour", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "email IS NOT NULL OR discord_user_id IS NOT NULL", name="ck_subscriber_has_address"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("discord_user_id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "topic",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=True),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("canonical", sa.String(length=2000), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("canonical"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "channel_feed",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("channel_id", sa.BigInteger(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["topic_id"], ["topic.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("channel_id", "topic_id"),
    )
    with op.batch_alter_table("channel_feed", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channel_feed_topic_id"), ["topic_id"], unique=False)

    op.create_table(
        "paper_match",
        sa.Column("digest_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["digest_id"], ["digest.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["paper_id"],
            ["paper.id"],
        ),
        sa.ForeignKeyConstraint(["topic_id"], ["topic.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("digest_id", "topic_id", "paper_id"),
    )
    with op.batch_alter_table("paper_match", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_paper_match_topic_id"), ["topic_id"], unique=False)

    op.create_table(
        "subscription",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscriber.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["topic_id"], ["topic.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id", "topic_id"),
    )
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscription_topic_id"), ["topic_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("subscription", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscription_topic_id"))

    op.drop_table("subscription")
    with op.batch_alter_table("paper_match", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_paper_match_topic_id"))

    op.drop_table("paper_match")
    with op.batch_alter_table("channel_feed", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channel_feed_topic_id"))

    op.drop_table("channel_feed")
    op.drop_table("topic")
    op.drop_table("subscriber")
