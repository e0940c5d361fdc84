"""Feedback to emergency centres (issue 19): subscriptions, per-incident streams and the outbox.

`cad_outbox` rows are written in the same transaction as the incident events they report
(`cad.outbox`), so delivery is at least once for exactly what committed. `cad_streams` hands out
`seq` per (subscription, incident) under a row lock held to commit, so `seq` follows commit order.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cad_subscriptions",
        sa.Column("id", sa.Uuid, primary_key=True),
        sa.Column("agency", sa.String(100), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("secret", sa.String(200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
    )
    op.create_index("ix_cad_subscriptions_agency", "cad_subscriptions", ["agency"])
    op.create_table(
        "cad_streams",
        sa.Column(
            "subscription_id",
            sa.Uuid,
            sa.ForeignKey("cad_subscriptions.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("incident_id", sa.Uuid, primary_key=True),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("tally", JSONB, nullable=False),
    )
    op.create_table(
        "cad_outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column(
            "subscription_id",
            sa.Uuid,
            sa.ForeignKey("cad_subscriptions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("incident_id", sa.Uuid, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_try_at", TZ, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("delivered_at", TZ, nullable=True),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="cad_outbox_status"),
        sa.UniqueConstraint("subscription_id", "incident_id", "seq", name="uq_cad_outbox_stream_seq"),
    )
    op.create_index(
        "ix_cad_outbox_due", "cad_outbox", ["next_try_at"], postgresql_where=sa.text("status = 'pending'")
    )
    op.create_index(
        "ix_cad_outbox_failed", "cad_outbox", ["id"], postgresql_where=sa.text("status = 'failed'")
    )


def downgrade() -> None:
    op.drop_table("cad_outbox")
    op.drop_table("cad_streams")
    op.drop_index("ix_cad_subscriptions_agency", "cad_subscriptions")
    op.drop_table("cad_subscriptions")
