"""Districts of the city (boundaries and populations) for maps and coverage studies.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "districts",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("city", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("population", sa.BigInteger(), nullable=False),
        sa.Column(
            "boundary", Geometry(geometry_type="MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False
        ),
        sa.CheckConstraint("population >= 0", name="ck_districts_population"),
    )


def downgrade() -> None:
    op.drop_table("districts")
