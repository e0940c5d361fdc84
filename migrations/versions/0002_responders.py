"""Responder registry: teams (four-level hierarchy), responders, certificates.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CATEGORIES = (
    "category IN ('sanitation_worker', 'city_inspector', 'park_security', 'auxiliary_staff', "
    "'volunteer', 'medical_professional', 'other')"
)
MODES = "mode IN ('walk', 'run', 'bicycle', 'ebike', 'car')"
KINDS = "kind IN ('first_aid', 'cpr', 'aed')"


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), sa.ForeignKey("teams.id", name="fk_teams_parent_id_teams")),
        sa.Column("path", sa.String(400), nullable=False),
        sa.CheckConstraint("level BETWEEN 0 AND 3", name="level"),
        sa.UniqueConstraint("path", name="uq_teams_path"),
    )
    op.create_index("ix_teams_parent_id", "teams", ["parent_id"])
    op.create_table(
        "responders",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("external_id", sa.String(100), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("phone", sa.String(40)),
        sa.Column("category", sa.String(30), nullable=False),
        sa.Column("team_id", sa.Uuid(), sa.ForeignKey("teams.id", name="fk_responders_team_id_teams")),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("on_duty", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(CATEGORIES, name="category"),
        sa.CheckConstraint(MODES, name="mode"),
        sa.UniqueConstraint("external_id", name="uq_responders_external_id"),
    )
    op.create_index("ix_responders_team_id", "responders", ["team_id"])
    op.create_table(
        "certificates",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "responder_id",
            sa.Uuid(),
            sa.ForeignKey(
                "responders.id", ondelete="CASCADE", name="fk_certificates_responder_id_responders"
            ),
            nullable=False,
        ),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("number", sa.String(100), nullable=False),
        sa.Column("issuer", sa.String(200)),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_until", sa.Date(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.CheckConstraint(KINDS, name="kind"),
        sa.CheckConstraint("valid_until >= valid_from", name="period"),
        sa.UniqueConstraint("responder_id", "kind", "number", name="uq_certificates_responder_kind_number"),
    )
    op.create_index("ix_certificates_responder_id", "certificates", ["responder_id"])


def downgrade() -> None:
    op.drop_table("certificates")
    op.drop_table("responders")
    op.drop_table("teams")
