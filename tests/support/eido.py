"""Sample EIDO documents (tests/fixtures/eido/) made into the case a test needs: its own tracking
id, update time, status and place (every coordinate of the PIDF-LO shifted by the same amount, so
a polygon keeps its shape)."""

from __future__ import annotations

import copy
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eido"
_POSITIONS = re.compile(r"(<gml:pos(?:List)?>)([^<]*)(</gml:pos(?:List)?>)")


def sample(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def new_tracking_id() -> str:
    return f"urn:emergency:uid:incidentid:{uuid.uuid4().hex}:120.test.example"


def stamp(seconds: float = 0.0) -> str:
    return (datetime(2026, 11, 29, 11, 0, tzinfo=UTC) + timedelta(seconds=seconds)).isoformat()


def case(
    name: str,
    tracking_id: str,
    *,
    at_s: float = 0.0,
    to: tuple[float, float] | None = None,
    status: str | None = None,
    type_code: str | None = None,
) -> dict[str, Any]:
    """The sample `name` as incident `tracking_id`, updated `at_s` seconds after a fixed start,
    its location moved so that its first position is `to` (lat, lng)."""
    doc = copy.deepcopy(sample(name))
    incident = doc["incidentComponent"]
    incident["incidentTrackingIdentifier"] = tracking_id
    incident["lastUpdateTimeStamp"] = doc["lastUpdateTimeStamp"] = stamp(at_s)
    if status is not None:
        incident["incidentStatusCommonRegistryText"] = status
    if type_code is not None:
        incident["incidentTypeInternalCode"] = type_code
    location = doc["locationComponent"][0]
    if to is not None and "locationByValue" in location:
        location["locationByValue"] = moved(location["locationByValue"], *to)
    return doc


def moved(pidf: str, lat: float, lng: float) -> str:
    """The PIDF-LO with every 'lat lon' pair shifted so that the first one is (lat, lng)."""
    first = _POSITIONS.search(pidf)
    if first is None:  # a civic address only: nothing to move
        return pidf
    lat0, lng0 = (float(x) for x in first.group(2).split()[:2])

    def shift(m: re.Match[str]) -> str:
        numbers = [float(x) for x in m.group(2).split()]
        pairs = zip(numbers[::2], numbers[1::2], strict=True)
        text = " ".join(f"{a - lat0 + lat:.7f} {b - lng0 + lng:.7f}" for a, b in pairs)
        return f"{m.group(1)}{text}{m.group(3)}"

    return _POSITIONS.sub(shift, pidf)
