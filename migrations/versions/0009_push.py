"""Web Push: the browsers' push subscriptions (several per responder) and the VAPID key (one row).

Revision ID: 0009_push
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_push"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "responder_id", sa.Uuid(), sa.ForeignKey("responders.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("endpoint", sa.Text(), nullable=False, unique=True),
        sa.Column("p256dh", sa.String(100), nullable=False),
        sa.Column("auth", sa.String(40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_push_subscriptions_responder_id", "push_subscriptions", ["responder_id"])
    op.create_table(
        "push_vapid_keys",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        sa.Column("private_key", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_push_vapid_keys_single_row"),
    )


def downgrade() -> None:
    op.drop_table("push_vapid_keys")
    op.drop_index("ix_push_subscriptions_responder_id", table_name="push_subscriptions")
    op.drop_table("push_subscriptions")
