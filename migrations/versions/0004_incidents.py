"""Incidents, their alerts and the append-only incident event log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = "category IN ('cardiac_arrest', 'unconscious', 'choking', 'severe_bleeding', 'other_medical')"
ALERT_STATUSES = (
    "status IN ('sent', 'delivered', 'accepted', 'declined', 'expired', 'en_route', 'on_scene', 'cancelled')"
)


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("category", sa.String(30), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column(
            "location", Geography(geometry_type="POINT", srid=4326, spatial_index=False), nullable=False
        ),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lng", sa.Float(), nullable=False),
        sa.Column("address", sa.String(500)),
        sa.Column("note", sa.Text()),
        sa.Column("reach_s", sa.Float(), nullable=False),
        sa.Column("coverage", JSONB(), nullable=False),
        sa.Column("escalation_step", sa.Integer(), nullable=False),
        sa.Column("next_escalation_at", sa.DateTime(timezone=True)),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint(CATEGORIES, name="category"),
        sa.CheckConstraint("status IN ('open', 'closed')", name="status"),
    )
    op.create_index(
        "ix_incidents_open_escalation",
        "incidents",
        ["next_escalation_at"],
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "incident_id",
            sa.Uuid(),
            sa.ForeignKey("incidents.id", name="fk_alerts_incident_id_incidents"),
            nullable=False,
        ),
        sa.Column(
            "responder_id",
            sa.Uuid(),
            sa.ForeignKey("responders.id", name="fk_alerts_responder_id_responders"),
            nullable=False,
        ),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("aed_id", sa.Uuid(), sa.ForeignKey("aeds.id", name="fk_alerts_aed_id_aeds")),
        sa.Column("eta_s", sa.Float(), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("batch", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('cpr', 'fetch_aed')", name="role"),
        sa.CheckConstraint(ALERT_STATUSES, name="status"),
        sa.UniqueConstraint("incident_id", "responder_id", name="uq_alerts_incident_responder"),
    )
    op.create_index("ix_alerts_incident_id", "alerts", ["incident_id"])
    op.create_index("ix_alerts_responder_status", "alerts", ["responder_id", "status"])
    op.create_index(
        "ix_alerts_pending_expiry",
        "alerts",
        ["expires_at"],
        postgresql_where=sa.text("status IN ('sent', 'delivered')"),
    )
    op.create_table(
        "incident_events",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column(
            "incident_id",
            sa.Uuid(),
            sa.ForeignKey("incidents.id", name="fk_incident_events_incident_id_incidents"),
            nullable=False,
        ),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("data", JSONB(), nullable=False),
    )
    op.create_index("ix_incident_events_incident_id", "incident_events", ["incident_id"])


def downgrade() -> None:
    op.drop_table("incident_events")
    op.drop_table("alerts")
    op.drop_table("incidents")
