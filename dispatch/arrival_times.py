"""When help reached each patient, from the times the alerts recorded (issue 22).

One definition for every report (the Utstein CSV, the programme report): a responder is at the
patient at the first `on_scene_at` of the incident's alerts; an AED is at the patient at the first
`on_scene_at` of an alert whose runner had picked an AED up (`aed_picked_up_at`) before arriving.
The times are those the phones' fixes set (or the responders tapped); an alert cancelled after it
arrived keeps them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, func, select

from dispatch.models import Alert


def first_arrivals(opened_from: datetime, opened_to: datetime) -> Select[tuple[object, ...]]:
    """(incident_id, responder_at, aed_at) of incidents opened in [opened_from, opened_to); an
    incident none of whose responders arrived has no row. Reads only those months' alerts."""
    aed_arrival = func.min(Alert.on_scene_at).filter(
        and_(Alert.aed_picked_up_at.is_not(None), Alert.aed_picked_up_at <= Alert.on_scene_at)
    )
    return (
        select(
            Alert.incident_id,
            func.min(Alert.on_scene_at).label("responder_at"),
            aed_arrival.label("aed_at"),
        )
        .where(Alert.opened_at >= opened_from, Alert.opened_at < opened_to, Alert.on_scene_at.is_not(None))
        .group_by(Alert.incident_id)
    )
