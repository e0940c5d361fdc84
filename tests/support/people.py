"""Helpers that set up responders through the real API (shared by responder and dispatch tests)."""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx


def certificate(
    kind: str = "cpr", *, valid_until: date | None = None, valid_from: date | None = None
) -> dict:
    today = date.today()
    return {
        "kind": kind,
        "number": "RC-" + secrets.token_hex(3),
        "issuer": "Shenzhen Red Cross",
        "valid_from": str(valid_from or today - timedelta(days=365)),
        "valid_until": str(valid_until or today + timedelta(days=365)),
    }


def register(http: httpx.Client, admin: dict[str, str], **fields: Any) -> dict:
    """Register a responder (valid CPR certificate unless told otherwise); returns the 201 body."""
    body = {
        "external_id": "T-" + secrets.token_hex(6),
        "name": "Li Wei",
        "category": "sanitation_worker",
        "mode": "walk",
        "certificates": [certificate()],
        **fields,
    }
    r = http.post("/v1/responders", json=body, headers=admin)
    assert r.status_code == 201, r.text
    return r.json()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iso(seconds_from_now: float = 0.0) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds_from_now)).isoformat()


def on_duty_at(http: httpx.Client, admin: dict[str, str], lat: float, lng: float, **fields: Any) -> dict:
    """A registered responder, on duty, whose position was just reported at (lat, lng)."""
    person = register(http, admin, **fields)
    me = bearer(person["token"])
    assert (
        http.put(f"/v1/responders/{person['id']}/duty", json={"on_duty": True}, headers=me).status_code == 200
    )
    r = http.post("/v1/locations", json={"lat": lat, "lng": lng, "ts": iso(), "accuracy_m": 5}, headers=me)
    assert r.status_code == 200 and r.json()["stored"] == 1, r.text
    return person


def pinned_acceptance(p: float) -> dict[str, str]:
    """Server settings that give everyone the chance `p` of accepting, whatever answers other tests
    left in the shared database's acceptance tallies (the prior outweighs them): exact batches."""
    return {"DISPATCH_ACCEPTANCE_PROBABILITY": str(p), "DISPATCH_ACCEPTANCE_PRIOR_STRENGTH": "1e9"}
