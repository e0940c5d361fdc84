"""What the emergency centre is told, from what happened to its incident (pure: no I/O).

The centre's call-taker is still on the line with the caller: they want to say "three people are
coming, Li Wei brings the AED from the metro station, two minutes". So the incident's own event log
(one row per alert, per receipt, per answer...) is folded into a few events a centre understands,
per transaction: the alerts a transaction sent are one `alerted`, its answers one `answered`.

`translate` takes the events of one transaction and the stream's tallies so far, and gives the
feedback events and the new tallies; the caller (`cad.outbox`) stores both with the change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

FEEDBACK_EVENTS = (
    "alerted",
    "reached",
    "answered",
    "aed_fetched",
    "en_route",
    "aed_picked_up",
    "on_scene",
    "stood_down",
    "closed",
)
ON_THE_WAY = ("en_route", "aed_picked_up", "on_scene")
"""A responder's progress: the phone's fixes (`source: auto`) or a tap (`manual`), heard alike, with
the source in the event so the centre knows how sure the time is."""
SOURCE_KINDS = frozenset(
    {"alert_sent", "delivered", "accepted", "declined", "role_assigned", *ON_THE_WAY}
    | {"stood_down", "closed"}
)
"""The incident event kinds a centre hears about (every other kind changes nothing for it)."""
_FOLDED = {"alert_sent": "alerted", "delivered": "reached", "accepted": "answered", "declined": "answered"}
"""Kinds folded into one feedback event per transaction (with the running totals)."""
_NAMED = frozenset({"accepted", "role_assigned", *ON_THE_WAY})


@dataclass(frozen=True, slots=True)
class Happened:
    """One incident event, as the mapping needs it (`dispatch.models.IncidentEvent`)."""

    kind: str
    at: datetime
    data: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Person:
    """A responder as the call-taker may brief them."""

    name: str
    phone: str | None


@dataclass(slots=True)
class Feedback:
    """One event for the centre: its name, when it happened, and its own fields."""

    event: str
    at: datetime
    fields: dict[str, Any] = field(default_factory=dict)


def people_named(happened: Sequence[Happened]) -> set[str]:
    """The responders whose name and phone the feedback of these events shows."""
    return {str(h.data["responder_id"]) for h in happened if h.kind in _NAMED and h.data.get("responder_id")}


def aeds_named(happened: Sequence[Happened]) -> set[str]:
    """The AEDs fetched in these events (whose names the feedback shows)."""
    return {str(h.data["aed_id"]) for h in happened if h.kind == "role_assigned" and h.data.get("aed_id")}


def _responder(data: Mapping[str, Any], people: Mapping[str, Person]) -> dict[str, Any]:
    rid = str(data.get("responder_id"))
    person = people.get(rid)
    return {"responder_id": rid, "name": person.name if person else None}


def _counts(tally: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "alerted": {"alerted": tally.get("alerted", 0)},
        "reached": {"reached": tally.get("reached", 0), "alerted": tally.get("alerted", 0)},
        "answered": {
            "accepted": tally.get("accepted", 0),
            "declined": tally.get("declined", 0),
            "responders": list(tally.get("responders", {}).values()),
        },
    }


def translate(
    happened: Sequence[Happened],
    tally: Mapping[str, Any],
    people: Mapping[str, Person],
    aeds: Mapping[str, str],
) -> tuple[list[Feedback], dict[str, Any]]:
    """The feedback for one transaction's events (in their order; folded kinds where they first
    appear, with the totals after the whole transaction), and the stream's new tallies.

    `tally` holds the running counts (`alerted`, `reached`, `accepted`, `declined`) and, per
    accepted responder, what the call-taker is told (name, phone, role, ETA). `people` and `aeds`
    name the responders and AEDs these events mention (`people_named`, `aeds_named`)."""
    new: dict[str, Any] = {**tally, "responders": dict(tally.get("responders", {}))}
    out: list[Feedback] = []
    folded: dict[str, Feedback] = {}
    for h in happened:
        if h.kind not in SOURCE_KINDS:
            continue
        if h.kind in _FOLDED:
            name = _FOLDED[h.kind]
            if name not in folded:
                folded[name] = Feedback(name, h.at)
                out.append(folded[name])
            _count(new, h, people)
        elif h.kind == "role_assigned":
            _assigned(new, h, out, people, aeds)
        elif h.kind == "stood_down":
            if "stood_down" not in folded:
                folded["stood_down"] = Feedback(
                    "stood_down", h.at, {"stood_down": 0, "reason": "enough_responders"}
                )
                out.append(folded["stood_down"])
            folded["stood_down"].fields["stood_down"] += 1
        elif h.kind in ON_THE_WAY:
            fields = {"responder": _responder(h.data, people), "source": h.data.get("source", "manual")}
            out.append(Feedback(h.kind, h.at, fields))
        elif h.kind == "closed":
            out.append(Feedback("closed", h.at, {"reason": h.data.get("reason")}))
    counts = _counts(new)
    for name, fb in folded.items():
        if name in counts:
            fb.fields = counts[name]
    return out, new


def _count(tally: dict[str, Any], h: Happened, people: Mapping[str, Person]) -> None:
    key = {"alert_sent": "alerted", "delivered": "reached"}.get(h.kind, h.kind)
    tally[key] = tally.get(key, 0) + 1
    if h.kind == "accepted":
        rid = str(h.data.get("responder_id"))
        person = people.get(rid)
        tally["responders"][rid] = {
            "responder_id": rid,
            "name": person.name if person else None,
            "phone": person.phone if person else None,
            "role": h.data.get("role"),
            "eta_s": h.data.get("eta_s"),
        }


def _assigned(
    tally: dict[str, Any],
    h: Happened,
    out: list[Feedback],
    people: Mapping[str, Person],
    aeds: Mapping[str, str],
) -> None:
    """An acceptor's role and ETA complete their line in `answered`; an AED run is `aed_fetched`."""
    rid = str(h.data.get("responder_id"))
    line = tally["responders"].get(rid)
    if line is not None:
        tally["responders"][rid] = {**line, "role": h.data.get("role"), "eta_s": h.data.get("eta_s")}
    aed_id = h.data.get("aed_id")
    if aed_id:
        aed = {"aed_id": str(aed_id), "name": aeds.get(str(aed_id))}
        fields = {"responder": _responder(h.data, people), "aed": aed, "eta_s": h.data.get("eta_s")}
        out.append(Feedback("aed_fetched", h.at, fields))
