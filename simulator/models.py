"""The city the service plans for: its districts and their streets, boundaries and residents.

One city per deployment: loading another (the demo, or a real boundary file) replaces the districts.
Boundaries are `geometry(MultiPolygon, 4326)` — planar lng/lat is what maps draw and what H3's
polygon fill expects; distances are never measured on them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class DistrictRow(Base):
    __tablename__ = "districts"
    __table_args__ = (CheckConstraint("population >= 0", name="ck_districts_population"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    city: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200), default="", server_default="")
    population: Mapped[int] = mapped_column(BigInteger)
    boundary: Mapped[str] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))


class StreetRow(Base):
    """A street (街道) of a district: the third level of the team hierarchy and of the study tables."""

    __tablename__ = "streets"
    __table_args__ = (
        CheckConstraint("population >= 0", name="ck_streets_population"),
        UniqueConstraint("district_id", "name", name="uq_streets_district_name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("districts.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200), default="", server_default="")
    population: Mapped[int] = mapped_column(BigInteger)
    boundary: Mapped[str] = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False))


class StudyJobRow(Base):
    """A planner study run as a job: its state for any worker to answer a poll, and its result.

    In PostgreSQL rather than Redis: a res-10 coverage result is tens of MB of GeoJSON that should
    not sit in the memory Redis keeps for live positions, and a job outlives a Redis restart.
    """

    __tablename__ = "study_jobs"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="ck_study_jobs_status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    what: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(10))
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    media_type: Mapped[str | None] = mapped_column(String(40), nullable=True)
    result: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
