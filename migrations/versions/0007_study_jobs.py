"""Planner studies run as jobs: their state and result, where any worker can answer a poll.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "study_jobs",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("what", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("media_type", sa.String(40)),
        sa.Column("result", sa.LargeBinary()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="ck_study_jobs_status"),
    )
    op.create_index("ix_study_jobs_updated_at", "study_jobs", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_study_jobs_updated_at", table_name="study_jobs")
    op.drop_table("study_jobs")
