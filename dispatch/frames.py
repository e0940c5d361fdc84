"""The messages pushed to phones and consoles, built from plain rows (pure, no I/O).

Before accepting, a responder sees the kind of emergency, distance, ETA and an approximate place
(the centre of the H3 cell of resolution 8 holding the patient, a few hundred metres across): enough
to decide, not enough to expose the patient's address to people who decline.

Roles are decided as people accept (`dispatch.policy.circle.choose_role`): an alert goes out with
the role `undecided`, says whether the person may be asked to bring an AED (`may_fetch_aed`, and
the nearest one they could bring, `aed_option`), and the `incident` frame that confirms the accept
carries the role, the AED to bring (if any) and the ETA that role takes. Alerts decided before this
(role `cpr` or `fetch_aed`, `aed`) still read as they did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from geo.cells import cell_center, cell_of
from geo.crs import Crs, from_wgs84

APPROX_RESOLUTION = 8
APPROX_RADIUS_M = 500  # a res-8 cell's centre is within ~530 m of any point of it


@dataclass(frozen=True, slots=True)
class AedInfo:
    id: str
    name: str
    lat: float
    lng: float
    location_detail: str | None


@dataclass(frozen=True, slots=True)
class AlertView:
    """An alert joined with what the phone needs of its incident (and AED) to show it."""

    alert_id: str
    incident_id: str
    responder_id: str
    role: str
    status: str
    eta_s: float
    distance_m: float
    expires_at: datetime
    category: str
    lat: float
    lng: float
    address: str | None
    note: str | None
    aed: AedInfo | None
    aed_option: AedInfo | None = None
    """The AED an undecided responder may be asked to bring (once decided, `aed` says)."""
    marks: Mapping[str, datetime] = field(default_factory=dict)
    """The marks of the way already set (en_route, aed_picked_up, on_scene) and when."""

    @property
    def may_fetch_aed(self) -> bool:
        return self.role == "fetch_aed" if self.role != "undecided" else self.aed_option is not None


def _point(lat: float, lng: float) -> dict[str, float]:
    return {"lat": round(lat, 7), "lng": round(lng, 7)}


def _aed(aed: AedInfo | None) -> dict[str, Any] | None:
    if aed is None:
        return None
    return {
        "id": aed.id,
        "name": aed.name,
        "location_detail": aed.location_detail,
        **_point(aed.lat, aed.lng),
    }


def reproject(frame: dict[str, Any], crs: Crs) -> dict[str, Any]:
    """The frame with every `lat`/`lng` pair moved from WGS-84 into the connection's `crs`."""
    if crs is Crs.wgs84:
        return frame
    out: dict[str, Any] = {k: reproject(v, crs) if isinstance(v, dict) else v for k, v in frame.items()}
    if isinstance(out.get("lat"), float) and isinstance(out.get("lng"), float):
        lat, lng = from_wgs84(out["lat"], out["lng"], crs)
        out["lat"], out["lng"] = round(lat, 7), round(lng, 7)
    if "crs" in out:
        out["crs"] = crs.value
    return out


def alert_frame(view: AlertView) -> dict[str, Any]:
    approx_lat, approx_lng = cell_center(cell_of(view.lat, view.lng, APPROX_RESOLUTION))
    frame: dict[str, Any] = {
        "type": "alert",
        "alert_id": view.alert_id,
        "incident_id": view.incident_id,
        "role": view.role,
        "category": view.category,
        "eta_s": round(view.eta_s),
        "distance_m": round(view.distance_m),
        "approx": {**_point(approx_lat, approx_lng), "radius_m": APPROX_RADIUS_M},
        "expires_at": view.expires_at.isoformat(),
        "may_fetch_aed": view.may_fetch_aed,
    }
    if view.aed is not None:
        frame["aed"] = _aed(view.aed)
    if view.aed_option is not None and view.role == "undecided":
        frame["aed_option"] = _aed(view.aed_option)
    return frame


def incident_frame(view: AlertView) -> dict[str, Any]:
    """The exact place, sent once the responder has accepted, with the role chosen at the accept:
    `fetch_aed` (bring `aed`, then the patient) or `cpr` (straight there); `eta_s` for that role;
    `marks`: those of the way already set, so a phone that reconnects shows them again."""
    return {
        "type": "incident",
        "alert_id": view.alert_id,
        "incident_id": view.incident_id,
        "role": view.role,
        "eta_s": round(view.eta_s),
        "status": view.status,
        "category": view.category,
        **_point(view.lat, view.lng),
        "crs": "wgs84",
        "address": view.address,
        "note": view.note,
        "aed": _aed(view.aed),
        "marks": {mark: at.isoformat() for mark, at in view.marks.items()},
    }


def cancel_frame(alert_id: str, incident_id: str, reason: str) -> dict[str, Any]:
    return {"type": "cancel", "alert_id": alert_id, "incident_id": incident_id, "reason": reason}


def error_frame(code: int, message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "code": code, "message": message, **extra}


def event_frame(incident_id: str, seq: int, ts: datetime, kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "incident_event",
        "incident_id": incident_id,
        "seq": seq,
        "ts": ts.isoformat(),
        "kind": kind,
        "data": data,
    }
