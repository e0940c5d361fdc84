"""Request and response bodies of the responder registry and of location ingest."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, StringConstraints, model_validator

from core import inputs
from geo.crs import Crs
from geo.reach import TravelMode
from geo.validation import CrsField, Latitude, Longitude


class ResponderCategory(StrEnum):
    sanitation_worker = "sanitation_worker"
    city_inspector = "city_inspector"
    park_security = "park_security"
    auxiliary_staff = "auxiliary_staff"
    volunteer = "volunteer"
    medical_professional = "medical_professional"
    other = "other"


class AlertPlaces(StrEnum):
    """The responder's tier (as in PulsePoint): which incidents they may be alerted for."""

    public = "public"  # public places only (streets, parks, stations, offices): the default
    public_and_homes = "public_and_homes"  # also patients in their homes (`residential` incidents)


class CertificateKind(StrEnum):
    first_aid = "first_aid"
    cpr = "cpr"
    aed = "aed"


Text = Annotated[inputs.Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ExternalId = Annotated[
    inputs.Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\s/]+$")
]
TeamPath = Annotated[
    inputs.Text,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=300, pattern=r"^[^/]+(/[^/]+){0,3}$"),
    Field(description="district/street/community under the city, e.g. 'futian/shatou/xiasha'"),
]


class Strict(inputs.InputModel):
    """Unknown fields refused; text fields NUL-free (`core.inputs`)."""


class CertificateIn(Strict):
    kind: CertificateKind
    number: Annotated[inputs.Text, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    issuer: Text | None = None
    valid_from: date
    valid_until: date = Field(description="inclusive: the certificate counts for the whole day")
    verified: bool = False

    @model_validator(mode="after")
    def _period(self) -> Self:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until: must not be before valid_from")
        return self


def _distinct(certificates: list[CertificateIn]) -> list[CertificateIn]:
    """A certificate is stored once per responder by kind and number (the registry's unique key):
    the same one twice in a request is the caller's mistake, named, not a conflict in the store."""
    seen: set[tuple[str, str]] = set()
    for i, c in enumerate(certificates):
        if (c.kind.value, c.number) in seen:
            raise ValueError(f"certificates.{i}: the same kind and number as an earlier certificate")
        seen.add((c.kind.value, c.number))
    return certificates


Certificates = Annotated[list[CertificateIn], AfterValidator(_distinct)]


class CertificateOut(CertificateIn):
    id: uuid.UUID
    valid_now: bool


class ResponderCreate(Strict):
    external_id: ExternalId = Field(description="the responder's electronic identity; unique")
    name: Text
    phone: Annotated[inputs.Text, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    category: ResponderCategory
    team: TeamPath | None = None
    mode: TravelMode = TravelMode.walk
    alert_places: AlertPlaces = Field(
        AlertPlaces.public,
        description="`public`: alerted for incidents in public places only; `public_and_homes`: also "
        "for `residential` incidents (opt-in, as entering a home asks more of a volunteer)",
    )
    certificates: Certificates = Field(default_factory=list, max_length=20)


class ResponderUpdate(Strict):
    """Only the fields sent change; `certificates`, when sent, replaces the whole list."""

    name: Text | None = None
    phone: Annotated[inputs.Text, StringConstraints(strip_whitespace=True, max_length=40)] | None = None
    category: ResponderCategory | None = None
    team: TeamPath | None = None
    mode: TravelMode | None = None
    alert_places: AlertPlaces | None = None
    certificates: Certificates | None = Field(None, max_length=20)


class PositionOut(BaseModel):
    lat: float
    lng: float
    crs: Crs
    ts: datetime
    accuracy_m: float | None
    mode: str
    age_s: float


class AcceptanceOut(BaseModel):
    """A responder's answers to alerts in one time-of-day band, and what matching makes of them."""

    accepted: int
    declined: int
    unanswered: int = Field(description="alerts that expired without an answer")
    estimate: float = Field(
        description="the chance they accept the next alert in this band: their own answers shrunk "
        "toward their team's, their category's and the configured prior (Beta-Binomial)"
    )


class ResponderOut(BaseModel):
    id: uuid.UUID
    external_id: str
    name: str
    phone: str | None
    category: str
    team: str | None
    mode: str
    alert_places: AlertPlaces
    active: bool
    on_duty: bool
    certificates: list[CertificateOut]
    dispatchable: bool
    not_dispatchable_because: list[str]
    position: PositionOut | None
    acceptance: dict[Literal["day", "night"], AcceptanceOut] | None = Field(
        None,
        description="admins only (`GET /v1/responders/{id}`): answers and acceptance estimate per "
        "band (day 07-19 local, night); absent for dispatchers and for the responder themself",
    )


class ResponderCreated(ResponderOut):
    token: str = Field(description="the responder's bearer token; shown only once")


class DutyIn(Strict):
    on_duty: bool


class TokenOut(BaseModel):
    token: str


class LocationUpdate(Strict):
    """One position report from a phone (or a gateway on its behalf)."""

    lat: Latitude
    lng: Longitude
    ts: AwareDatetime = Field(description="when the phone took the fix, with its UTC offset")
    accuracy_m: Annotated[float, Field(ge=0, le=100_000)] | None = None
    mode: TravelMode | None = None
    crs: CrsField = Crs.wgs84
    responder_id: uuid.UUID | None = None


class BatchLocationUpdate(LocationUpdate):
    responder_id: uuid.UUID


class LocationBatch(Strict):
    updates: list[BatchLocationUpdate]


class RejectedUpdate(BaseModel):
    index: int
    field: str
    rule: str


class IngestResult(BaseModel):
    """What became of the updates: stored, dropped (stale or out of order), ignored, rejected."""

    stored: int = 0
    stale: int = 0
    not_on_duty: int = 0
    not_qualified: int = 0
    rejected: list[RejectedUpdate] = Field(default_factory=list)


class ImportError_(BaseModel):
    line: int
    field: str
    reason: str


class ImportReport(BaseModel):
    rows: int
    created: int
    updated: int
    unchanged: int
    errors: list[ImportError_]
