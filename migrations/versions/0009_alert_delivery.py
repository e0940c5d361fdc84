"""Receipts, the ladder of channels and one-time alert codes.

An alert used to be `delivered` when the server wrote it into a socket, which proves nothing on a
half-open connection. Now only the phone's receipt moves it there, and `delivered_via` says which
channel reached it; `socket_at` keeps when a socket first took it (an attempt). `ladder_next` and
`ladder_due_at` are the ladder's state (the next step of socket → push → SMS → voice and when it is
due), kept here so that one worker, whichever, takes each step. Alerts from before this revision
are not laddered (`ladder_due_at` NULL). `alert_codes` holds the hashes of the one-time codes sent
in SMS and voice links: each opens one alert, answers it once, and dies with it.

Revision ID: 0009_alert_delivery
Revises: 0008
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_alert_delivery"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = "delivered_via IN ('socket', 'push', 'sms', 'voice', 'app')"
LADDER_WAITING = "status = 'sent' AND ladder_due_at IS NOT NULL"


def upgrade() -> None:
    op.add_column("alerts", sa.Column("delivered_via", sa.String(10), nullable=True))
    op.add_column("alerts", sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("socket_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("alerts", sa.Column("ladder_next", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("alerts", sa.Column("ladder_due_at", sa.DateTime(timezone=True), nullable=True))
    op.alter_column("alerts", "ladder_next", server_default=None)
    op.create_check_constraint("ck_alerts_delivered_via", "alerts", CHANNELS)
    op.create_index(
        "ix_alerts_ladder_due", "alerts", ["ladder_due_at"], postgresql_where=sa.text(LADDER_WAITING)
    )
    op.create_table(
        "alert_codes",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "alert_id",
            sa.Uuid(),
            sa.ForeignKey("alerts.id", name="fk_alert_codes_alert_id_alerts"),
            nullable=False,
        ),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_alert_codes_code_hash", "alert_codes", ["code_hash"], unique=True)
    op.create_index("ix_alert_codes_alert_id", "alert_codes", ["alert_id"])


def downgrade() -> None:
    op.drop_table("alert_codes")
    op.drop_index("ix_alerts_ladder_due", table_name="alerts")
    op.drop_constraint("ck_alerts_delivered_via", "alerts", type_="check")
    for column in ("ladder_due_at", "ladder_next", "socket_at", "delivered_at", "delivered_via"):
        op.drop_column("alerts", column)
