"""`GET /v1/aeds/nearby` equals a brute-force answer on 2,000 random AEDs at random points and times.

The brute force looks at every AED: great-circle distance, status, blocking reports and opening
hours evaluated in Asia/Shanghai with the configured holidays; then sorts and cuts. The service
must give the same AEDs in the same order, however its KNN batches fall.
"""

from __future__ import annotations

import json
import random
import secrets
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from aed_registry.opening_hours import open_at
from core.config import Settings
from geo.distance import haversine_m

pytestmark = pytest.mark.integration

HOURS = [
    "24/7", "Mo-Fr 08:00-18:00", "Mo-Fr 08:00-18:00; PH off", "Mo-Su 06:30-23:00", "Sa-Mo 22:00-06:00",
    "Mo-Fr 08:00-12:00,14:00-18:00; Sa 09:00-12:00", "off", "call the guard", None,
]  # fmt: skip
STATUSES = ["active"] * 8 + ["out_of_service", "unverified"]


def test_nearby_equals_brute_force(http, admin_headers) -> None:
    rng = random.Random(secrets.randbits(32))
    run = secrets.token_hex(4)
    clat, clng = rng.uniform(-50, 50), rng.uniform(-170, 170)  # a place no other test uses
    aeds = []
    for i in range(2000):
        lat, lng = clat + rng.uniform(-0.03, 0.03), clng + rng.uniform(-0.03, 0.03)
        aeds.append({"ref": f"{run}-{i}", "lat": lat, "lng": lng, "hours": rng.choice(HOURS),
                     "status": rng.choice(STATUSES)})  # fmt: skip
    features = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [a["lng"], a["lat"]]},
         "properties": {"ref": a["ref"], "name": f"AED {a['ref']}", "opening_hours": a["hours"],
                        "status": a["status"]}}
        for a in aeds
    ]  # fmt: skip
    r = http.post(
        "/v1/aeds/import", params={"format": "geojson"}, headers=admin_headers,
        content=json.dumps({"type": "FeatureCollection", "features": features}),
    )  # fmt: skip
    assert r.status_code == 200 and r.json()["created"] == 2000, r.text

    # Map external ids to ids through the map endpoint, then break or report some of them.
    box = f"{clng - 0.05},{clat - 0.05},{clng + 0.05},{clat + 0.05}"
    fc = http.get("/v1/aeds", params={"bbox": box, "limit": 5000}, headers=admin_headers).json()
    ids = {f["properties"]["external_id"]: f["properties"]["id"] for f in fc["features"]}
    assert len(ids) == 2000
    blocked = set()
    for a in rng.sample(aeds, 150):
        kind = rng.choice(["missing", "broken", "locked", "pads_expired"])
        r = http.post(f"/v1/aeds/{ids[a['ref']]}/reports", json={"kind": kind}, headers=admin_headers)
        assert r.status_code == 201
        if kind in ("missing", "broken"):
            blocked.add(a["ref"])

    settings = Settings()
    tz, holidays = ZoneInfo(settings.timezone), frozenset(settings.aed_public_holidays)

    def brute_force(lat: float, lng: float, at: datetime, limit: int, max_m: float | None) -> list[str]:
        ranked = []
        for a in aeds:
            if a["status"] != "active" or a["ref"] in blocked:
                continue
            state = open_at(a["hours"], at.astimezone(tz), holidays)
            if state is False or (state is None and not settings.aed_unknown_hours_available):
                continue
            d = haversine_m(lat, lng, a["lat"], a["lng"])
            if max_m is None or d <= max_m:
                ranked.append((d, ids[a["ref"]]))
        return [aed_id for _, aed_id in sorted(ranked)[:limit]]

    start = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(40):
        lat, lng = clat + rng.uniform(-0.035, 0.035), clng + rng.uniform(-0.035, 0.035)
        at = start + timedelta(minutes=rng.randrange(365 * 24 * 60))
        limit = rng.choice([1, 3, 10, 40, 100])
        max_m = rng.choice([None, None, 300.0, 1500.0])
        params: dict[str, object] = {"lat": lat, "lng": lng, "at": at.isoformat(), "limit": limit}
        if max_m is not None:
            params["max_distance_m"] = max_m
        r = http.get("/v1/aeds/nearby", params=params, headers=admin_headers)
        assert r.status_code == 200, r.text
        got = r.json()["aeds"]
        assert [a["id"] for a in got] == brute_force(lat, lng, at, limit, max_m), (lat, lng, at, limit, max_m)
        for a in got:
            assert abs(a["distance_m"] - haversine_m(lat, lng, a["lat"], a["lng"])) < 0.01
