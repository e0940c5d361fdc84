"""HTTP shapes of the AED registry (Pydantic v2). Unknown fields are refused so typos surface."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from aed_registry.importers import AedRecord
from aed_registry.service import AvailableAed
from core.inputs import InputModel, Text
from geo.crs import Crs, to_wgs84
from geo.validation import Latitude, Longitude


class AedStatus(StrEnum):
    active = "active"
    out_of_service = "out_of_service"
    unverified = "unverified"
    removed = "removed"


class AedAccess(StrEnum):
    public = "public"
    customers = "customers"
    private = "private"


class ReportKind(StrEnum):
    missing = "missing"
    broken = "broken"
    locked = "locked"
    pads_expired = "pads_expired"
    other = "other"


class ImportFormat(StrEnum):
    csv = "csv"
    geojson = "geojson"


Text300 = Field(default=None, min_length=1, max_length=300)
Text500 = Field(default=None, min_length=1, max_length=500)


class _AedFields(InputModel):
    external_id: Text | None = Field(default=None, min_length=1, max_length=100)
    address: Text | None = Text500
    location_detail: Text | None = Text500
    opening_hours: Text | None = Field(default=None, max_length=1000)
    contact: Text | None = Text300
    source: Text | None = Field(default=None, min_length=1, max_length=200)
    last_checked: datetime | None = None
    crs: Crs = Crs.wgs84

    def _record(self, lat: float | None, lng: float | None, **extra: Any) -> AedRecord:
        if lat is not None and lng is not None:
            lat, lng = to_wgs84(lat, lng, self.crs)
        plain = self.model_dump(exclude={"crs", "lat", "lng", "name", "status", "access"}, exclude_none=True)
        return AedRecord(line=0, lat=lat, lng=lng, **plain, **extra)


class AedCreate(_AedFields):
    """`POST /v1/aeds` (DESIGN.md example)."""

    name: Text = Field(min_length=1, max_length=300)
    lat: Latitude
    lng: Longitude
    access: AedAccess = AedAccess.public
    status: AedStatus = AedStatus.active

    def record(self) -> AedRecord:
        return self._record(self.lat, self.lng, name=self.name, access=self.access, status=self.status)


class AedPatch(_AedFields):
    """`PATCH /v1/aeds/{id}`: only the fields sent change; moving needs both lat and lng."""

    name: Text | None = Text300
    lat: Latitude | None = None
    lng: Longitude | None = None
    access: AedAccess | None = None
    status: AedStatus | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> Self:
        if (self.lat is None) != (self.lng is None):
            raise ValueError("lat and lng must be given together")
        return self

    def record(self) -> AedRecord:
        extra = {k: getattr(self, k) for k in ("name", "access", "status") if getattr(self, k) is not None}
        return self._record(self.lat, self.lng, **extra)


class AedOut(BaseModel):
    id: str
    external_id: str | None
    name: str
    lat: float
    lng: float
    crs: Crs
    address: str | None
    location_detail: str | None
    opening_hours: str | None
    opening_hours_error: str | None = Field(description="why the hours are unknown; null when they parse")
    open_now: bool | None = Field(description="at the time of the request; null = hours unknown")
    access: str
    status: str
    contact: str | None
    source: str | None
    last_checked: datetime | None
    created_at: datetime
    updated_at: datetime


class NearbyOut(BaseModel):
    at: datetime
    crs: Crs
    aeds: list[AvailableAed]  # the service's dataclass, coordinates in `crs`


class ReportIn(InputModel):
    kind: ReportKind
    note: Text | None = Field(default=None, max_length=2000)


class ResolveIn(InputModel):
    resolution: Text | None = Field(default=None, max_length=2000)


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    aed_id: str
    kind: str
    note: str | None
    blocking: bool
    reported_by: str
    created_at: datetime
    confirmed_at: datetime | None = Field(
        description="when the report began to count for dispatch: at once for an admin, else when a"
        " second independent reporter confirmed it; null = waiting for confirmation"
    )
    in_effect: bool = Field(description="open, blocking and confirmed: the AED is out of dispatch")
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


class AvailabilityChangeOut(BaseModel):
    """One change of whether dispatch may use the AED (see `models.AedAvailabilityChange`)."""

    id: int
    at: datetime
    actor: str
    reason: str
    before: str
    after: str
    report_id: str | None


class EventOut(BaseModel):
    id: int
    kind: str
    actor: str
    at: datetime
    data: dict[str, Any]


class RowErrorOut(BaseModel):
    line: int
    field: str
    rule: str


class DuplicateOut(BaseModel):
    line: int
    superseded_by: int
    key: str


class ImportOut(BaseModel):
    """Per-row outcome of an import; `line` is the CSV line (header = 1) or the GeoJSON feature number."""

    rows: int
    created: int
    updated: int
    unchanged: int
    errors: list[RowErrorOut]
    hours_flagged: list[RowErrorOut]
    duplicates: list[DuplicateOut]
