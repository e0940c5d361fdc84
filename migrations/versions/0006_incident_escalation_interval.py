"""Each incident keeps the escalation interval it was opened with.

Every API worker runs the dispatch clock, and any of them may take an incident's next step; with
the interval stored on the incident, all of them follow the schedule it started with, even while
workers with different settings overlap (a rolling restart after a configuration change).
Incidents opened before this revision have none and follow the escalating worker's setting.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("incidents", sa.Column("escalation_interval_s", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("incidents", "escalation_interval_s")
