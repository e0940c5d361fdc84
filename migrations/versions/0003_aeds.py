"""AED registry: devices (geography points with a GiST index), problem reports, change history.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = "status IN ('active', 'out_of_service', 'unverified', 'removed')"
ACCESS = "access IN ('public', 'customers', 'private')"
KINDS = "kind IN ('missing', 'broken', 'locked', 'pads_expired', 'other')"


def upgrade() -> None:
    op.create_table(
        "aeds",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("external_id", sa.String(100), nullable=True),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("location_detail", sa.String(500), nullable=True),
        sa.Column(
            "location", Geography(geometry_type="POINT", srid=4326, spatial_index=False), nullable=False
        ),
        sa.Column("opening_hours", sa.Text(), nullable=True),
        sa.Column("opening_hours_error", sa.String(300), nullable=True),
        sa.Column("access", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("contact", sa.String(300), nullable=True),
        sa.Column("source", sa.String(200), nullable=True),
        sa.Column("last_checked", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(STATUSES, name="status"),
        sa.CheckConstraint(ACCESS, name="access"),
        sa.UniqueConstraint("external_id", name="uq_aeds_external_id"),
    )
    op.create_index("ix_aeds_location", "aeds", ["location"], postgresql_using="gist")
    op.create_table(
        "aed_reports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("aed_id", sa.Uuid(), sa.ForeignKey("aeds.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("reported_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.CheckConstraint(KINDS, name="kind"),
    )
    op.create_index("ix_aed_reports_aed_id", "aed_reports", ["aed_id"])
    op.create_index(
        "ix_aed_reports_open_blocking",
        "aed_reports",
        ["aed_id"],
        postgresql_where=sa.text("resolved_at IS NULL AND kind IN ('missing', 'broken')"),
    )
    op.create_table(
        "aed_events",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("aed_id", sa.Uuid(), sa.ForeignKey("aeds.id"), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", JSONB(), nullable=False),
    )
    op.create_index("ix_aed_events_aed_id", "aed_events", ["aed_id"])


def downgrade() -> None:
    op.drop_table("aed_events")
    op.drop_table("aed_reports")
    op.drop_index("ix_aeds_location", table_name="aeds")
    op.drop_table("aeds")
