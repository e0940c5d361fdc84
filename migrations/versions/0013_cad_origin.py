"""Emergency centres (issue 19): `cad` tokens speak for an agency; incidents may come from one.

`api_tokens.agency` names the centre a `cad` token speaks for. `incidents.agency` and
`incidents.tracking_id` (the EIDO `$id`, unique: the same case posted twice, even at once to two
workers, makes one incident) say where an incident came from; both null for incidents opened here.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_tokens", sa.Column("agency", sa.String(100), nullable=True))
    op.add_column("incidents", sa.Column("agency", sa.String(100), nullable=True))
    op.add_column("incidents", sa.Column("tracking_id", sa.String(300), nullable=True))
    op.create_unique_constraint(op.f("uq_incidents_tracking_id"), "incidents", ["tracking_id"])


def downgrade() -> None:
    op.drop_constraint(op.f("uq_incidents_tracking_id"), "incidents", type_="unique")
    op.drop_column("incidents", "tracking_id")
    op.drop_column("incidents", "agency")
    op.drop_column("api_tokens", "agency")
