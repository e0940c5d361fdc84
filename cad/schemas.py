"""What `POST /v1/cad/eido` answers, and the EIDO's outline for the OpenAPI document."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class EidoDocument(BaseModel):
    """An Emergency Incident Data Object, NENA-STA-021 JSON (outline: the parts we read; the
    service reads the document itself and names the JSON path of anything it refuses)."""

    model_config = ConfigDict(extra="allow")

    incidentComponent: dict[str, Any] | list[dict[str, Any]] = Field(
        description="incidentTrackingIdentifier (urn:emergency:uid:incidentid:…), lastUpdateTimeStamp, "
        "incidentTypeInternalCode / incidentTypeCommonRegistryText, incidentStatusCommonRegistryText, "
        "locationReference"
    )
    locationComponent: list[dict[str, Any]] | dict[str, Any] = Field(
        description="locationByValue (PIDF-LO XML, RFC 5491 shapes, civic address) or locationByReference"
    )
    lastUpdateTimeStamp: str | None = None
    notesComponent: list[dict[str, Any]] | None = None
    agencyComponent: list[dict[str, Any]] | None = None
    agentComponent: list[dict[str, Any]] | None = None


class EidoReceipt(BaseModel):
    """What became of one EIDO: 201 when it made a new case, 200 for a known one."""

    incident_id: uuid.UUID = Field(description="reserved at once, even while nothing is dispatched yet")
    tracking_id: str
    dispatching: bool = Field(description="an incident is open and responders are being alerted")
    reason: str | None = Field(None, description="why not dispatching, or why dispatching stopped")
    alerts: int = Field(description="alerts this document sent (first batch, or after a move)")
    cancelled: int = Field(0, description="alerts this document cancelled (moved out of reach, closed)")
    coverage: dict[str, Any] = Field(default_factory=dict, description="the incident's coverage verdict")
    stale: bool = Field(False, description="not newer than what we have: nothing changed")
    category: str
    category_mapped_from: str | None = Field(
        None, description="the centre's code the category came from; None: unknown, `other_medical`"
    )
    changed: list[str] = Field(default_factory=list, description="facts this update changed")
