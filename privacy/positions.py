"""Where the record keeps a responder's position, and when a kept position is past its retention.

Pure definitions shared by the retention job and by erasure, so both erase exactly the same thing.

An incident timeline keeps a responder's position in two places only:
- `alerts.accepted_lat/accepted_lng`: where the phone stood when its person accepted (the origin
  of the `en_route` geofence);
- the `lat`/`lng` keys of the arrival events their fixes set (`en_route`, `aed_picked_up`,
  `on_scene`, written by `dispatch.arrival`).
Everything else with a place in the record is not a responder's position and stays: the patient's
place (`incidents.lat/lng`, the `opened` event's `lat`/`lng`), the AEDs' places, and the times
and statuses of the timeline (`en_route_at`, `on_scene_at`, ...).
"""

from __future__ import annotations

from datetime import datetime, timedelta

ALERT_POSITION_COLUMNS = ("accepted_lat", "accepted_lng")
"""The alert's columns that hold where its responder stood."""

POSITION_EVENT_KINDS = ("en_route", "aed_picked_up", "on_scene")
"""Events that may carry the responder's position (the arrival geofences' `auto` ones do)."""

EVENT_POSITION_KEYS = ("lat", "lng")
"""The keys of such an event's `data` that hold the position; the rest of the event stays."""


def retention_cutoff(now: datetime, retention_days: float) -> datetime:
    """The instant before which a kept position is past its retention.

    An alert's position counts from its incident's opening (`alerts.opened_at`, the alerts'
    partition key: an incident's positions go together), an event's from its own time
    (`incident_events.ts`, the events' partition key): each statement of the job then reads only
    the months it erases."""
    return now - timedelta(days=retention_days)
