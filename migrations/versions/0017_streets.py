"""Streets (街道) of the city's districts, and Chinese names beside the English ones (issue 21).

Studies report coverage and policy outcomes per street as well as per district, and the team
hierarchy's third level is the street, so the stored city keeps its streets: each belongs to one
district (deleted with it when a city is replaced) and has its residents and boundary. `name_zh`
keeps the Chinese name (福田区, 南园街道) for the Chinese pages; a city loaded from a file without one
stores an empty string.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("districts", sa.Column("name_zh", sa.String(200), nullable=False, server_default=""))
    op.create_table(
        "streets",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "district_id", sa.Integer(), sa.ForeignKey("districts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("name_zh", sa.String(200), nullable=False, server_default=""),
        sa.Column("population", sa.BigInteger(), nullable=False),
        sa.Column(
            "boundary", Geometry(geometry_type="MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False
        ),
        sa.CheckConstraint("population >= 0", name="ck_streets_population"),
        sa.UniqueConstraint("district_id", "name", name="uq_streets_district_name"),
    )
    op.create_index("ix_streets_district_id", "streets", ["district_id"])


def downgrade() -> None:
    op.drop_table("streets")
    op.drop_column("districts", "name_zh")
