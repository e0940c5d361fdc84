"""AED reports need an independent confirmation; every change of availability is audited.

A missing/broken report used to take an AED out of dispatch by itself, whoever filed it: 50
reports from one gateway token moved the nearest AED from 56 m to 609 m. Now a report acts only
once it is confirmed (`confirmed_at`: at once for an admin, else when a second independent
reporter files one); `reporter` names the reporter's identity (token or responder) for that
rule and for the per-reporter limits. Reports open before this revision acted under the old rule
and stay confirmed. `aed_availability_changes` records who changed whether dispatch may use an AED,
when, why, and the state before and after.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_BLOCKING = "resolved_at IS NULL AND kind IN ('missing', 'broken')"
NEW_BLOCKING = "resolved_at IS NULL AND confirmed_at IS NOT NULL AND kind IN ('missing', 'broken')"


def upgrade() -> None:
    op.add_column("aed_reports", sa.Column("reporter", sa.String(200), nullable=True))
    op.add_column("aed_reports", sa.Column("confirmed_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE aed_reports SET confirmed_at = created_at, reporter = reported_by")
    op.create_index("ix_aed_reports_reporter_created_at", "aed_reports", ["reporter", "created_at"])
    op.drop_index("ix_aed_reports_open_blocking", table_name="aed_reports")
    op.create_index(
        "ix_aed_reports_open_blocking", "aed_reports", ["aed_id"], postgresql_where=sa.text(NEW_BLOCKING)
    )
    op.create_table(
        "aed_availability_changes",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("aed_id", sa.Uuid(), sa.ForeignKey("aeds.id"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("before", sa.String(40), nullable=False),
        sa.Column("after", sa.String(40), nullable=False),
        sa.Column("report_id", sa.Uuid(), nullable=True),
    )
    op.create_index("ix_aed_availability_changes_aed_id", "aed_availability_changes", ["aed_id"])


def downgrade() -> None:
    op.drop_table("aed_availability_changes")
    op.drop_index("ix_aed_reports_open_blocking", table_name="aed_reports")
    op.create_index(
        "ix_aed_reports_open_blocking", "aed_reports", ["aed_id"], postgresql_where=sa.text(OLD_BLOCKING)
    )
    op.drop_index("ix_aed_reports_reporter_created_at", table_name="aed_reports")
    op.drop_column("aed_reports", "confirmed_at")
    op.drop_column("aed_reports", "reporter")
