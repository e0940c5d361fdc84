"""What each emergency centre sent us about each incident: one row per tracking id.

The row is the arbiter of "the same tracking id never makes a second incident": its primary key is
the tracking id, taken with `INSERT … ON CONFLICT DO NOTHING`, so of two workers posting the same
case at once one inserts and the other waits for it and finds the row (then locks it, so updates
to one case are applied one after the other). It reserves the incident's id at once: a case sent
with only a civic address or a location by reference has an id to answer with, and its incident is
opened under that id when a geodetic location arrives.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Float, String, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class CadReport(Base):
    __tablename__ = "cad_reports"

    tracking_id: Mapped[str] = mapped_column(String(300), primary_key=True)
    incident_id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    agency: Mapped[str] = mapped_column(String(100))
    eido: Mapped[dict[str, Any]] = mapped_column(JSONB)  # the last document applied, as sent
    facts: Mapped[dict[str, Any]] = mapped_column(JSONB)  # cad.eido.Eido.fields() of it
    last_update_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # its lastUpdateTimeStamp
    changed_fields: Mapped[list[str]] = mapped_column(JSONB, default=list)  # by the last update
    location_reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    dispatching: Mapped[bool] = mapped_column(Boolean, default=False)  # its incident was opened
    waiting_reason: Mapped[str | None] = mapped_column(Text, nullable=True)  # why not, while not
    category_mapped_from: Mapped[str | None] = mapped_column(String(200), nullable=True)
    uncertainty_m: Mapped[float | None] = mapped_column(Float, nullable=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
