"""The city the service plans for: its districts, boundaries and residents.

One city per deployment: loading another (the demo, or a real boundary file) replaces the districts.
Boundaries are `geometry(MultiPolygon, 4326)` — planar lng/lat is what maps draw and what H3's
polygon fill expects; distances are never measured on them.
"""

from __future__ import annotations

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class DistrictRow(Base):
    __tablename__ = "districts"
    __table_args__ = (CheckConstraint("population >= 0", name="ck_districts_population"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    population: Mapped[int] = mapped_column(BigInteger)
    boundary: Mapped[str] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))
