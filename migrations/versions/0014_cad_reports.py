"""Incidents from emergency centres (issue 19): what each centre sent, per tracking id; incidents
keep how uncertain their location is and which facts the centre changed on its last update.

`cad_reports` (cad.models.CadReport): the raw EIDO last applied, its `lastUpdateTimeStamp` (older
ones change nothing), the reserved incident id, whether dispatching started and why not.
`incidents.location_uncertainty_m` and `incidents.centre_changed` are what the console shows.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cad_reports",
        sa.Column("tracking_id", sa.String(300), primary_key=True),
        sa.Column("incident_id", sa.Uuid(), nullable=False, unique=True),
        sa.Column("agency", sa.String(100), nullable=False),
        sa.Column("eido", postgresql.JSONB(), nullable=False),
        sa.Column("facts", postgresql.JSONB(), nullable=False),
        sa.Column("last_update_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("changed_fields", postgresql.JSONB(), nullable=False, server_default="[]"),
        sa.Column("location_reference", sa.Text(), nullable=True),
        sa.Column("dispatching", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("waiting_reason", sa.Text(), nullable=True),
        sa.Column("category_mapped_from", sa.String(200), nullable=True),
        sa.Column("uncertainty_m", sa.Float(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("incidents", sa.Column("location_uncertainty_m", sa.Float(), nullable=True))
    op.add_column("incidents", sa.Column("centre_changed", postgresql.JSONB(), nullable=True))


def downgrade() -> None:
    op.drop_column("incidents", "centre_changed")
    op.drop_column("incidents", "location_uncertainty_m")
    op.drop_table("cad_reports")
