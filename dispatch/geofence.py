"""When a responder's own fixes say they left, took the AED, reached the patient (pure: no I/O).

After an accept the phone keeps sending its position; these rules turn one fix into the marks it
proves, for one accepted alert (a "trip"). A mark is set once; the caller keeps what is set.

- `en_route`: the fix is surely outside `geofence_en_route_m` of where the person accepted
  (distance − accuracy > radius) and *heading on*: nearer their target than the accept point
  was. The target is the AED for a `fetch_aed` runner who has not picked it up yet, else the
  patient. So someone walking away from the patient (home, back to their cart) is not en route,
  however far they go.
- `aed_picked_up`: a `fetch_aed` runner's fix is within `geofence_aed_m` of their AED.
- `on_scene`: the fix is within `geofence_on_scene_m` of the patient; for a `fetch_aed` runner
  only once the AED is picked up (this fix or before), else a runner passing the patient on the
  way to the AED would be called on scene.
- A later mark implies the earlier ones a fix has not set yet: a first fix already at the patient
  gives `en_route` then `on_scene`, in that order (the person got there, so they were on the way).

Accuracy: a fix with `accuracy_m` above `geofence_max_accuracy_m` sets nothing (it cannot tell
15 m from 60 m). Entering a radius needs accuracy ≤ radius and distance ≤ radius; leaving needs
distance − accuracy > radius. A fix without `accuracy_m` (a gateway that does not know it) counts
as the worst accuracy still used, `geofence_max_accuracy_m`: it can show someone clearly left
(50 m past the circle), never that they entered a radius smaller than that.

A fix stamped before the accept describes where the person was before it: it sets nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Protocol

from geo.distance import haversine_m

Mark = Literal["en_route", "aed_picked_up", "on_scene"]
MARKS: tuple[Mark, ...] = ("en_route", "aed_picked_up", "on_scene")
"""In the order a trip goes through them (and in which they are logged)."""


class GeofenceSettings(Protocol):
    geofence_en_route_m: float
    geofence_aed_m: float
    geofence_on_scene_m: float
    geofence_max_accuracy_m: float


@dataclass(frozen=True, slots=True)
class Radii:
    en_route_m: float
    aed_m: float
    on_scene_m: float
    max_accuracy_m: float

    @classmethod
    def from_settings(cls, settings: GeofenceSettings) -> Radii:
        return cls(
            settings.geofence_en_route_m,
            settings.geofence_aed_m,
            settings.geofence_on_scene_m,
            settings.geofence_max_accuracy_m,
        )


@dataclass(frozen=True, slots=True)
class Point:
    lat: float
    lng: float

    def to(self, other: Point) -> float:
        """Metres to `other` (great circle)."""
        return haversine_m(self.lat, self.lng, other.lat, other.lng)


@dataclass(frozen=True, slots=True)
class Fix:
    """A stored position report of the responder: WGS-84, `ts` in epoch seconds."""

    lat: float
    lng: float
    ts: float
    accuracy_m: float | None = None

    @property
    def point(self) -> Point:
        return Point(self.lat, self.lng)


@dataclass(frozen=True, slots=True)
class Trip:
    """What the rules need of one accepted alert: where to, from where, and what is already set."""

    role: str
    patient: Point
    accepted_ts: float
    aed: Point | None = None
    """The AED a `fetch_aed` runner brings (None for `cpr`)."""
    origin: Point | None = None
    """Where the person stood when accepting; None until known (then the first fix after it)."""
    en_route: bool = False
    aed_picked_up: bool = False
    on_scene: bool = False

    @property
    def fetching(self) -> bool:
        return self.role == "fetch_aed" and self.aed is not None

    @property
    def target(self) -> Point:
        """Where the person is heading now: their AED until they have it, then the patient."""
        if self.fetching and not self.aed_picked_up and self.aed is not None:
            return self.aed
        return self.patient

    @property
    def done(self) -> bool:
        return self.on_scene

    def with_marks(self, marks: tuple[Mark, ...]) -> Trip:
        return replace(self, **{mark: True for mark in marks})


@dataclass(frozen=True, slots=True)
class Crossing:
    """A mark a fix set, with what proves it (kept in the incident's timeline)."""

    mark: Mark
    distance_m: float
    """From the accept point (`en_route`), the AED (`aed_picked_up`) or the patient (`on_scene`)."""


@dataclass(frozen=True, slots=True)
class Judged:
    """What one fix did to a trip: the origin it supplied (when the trip had none) and the marks."""

    origin: Point | None
    crossings: tuple[Crossing, ...]


NOTHING = Judged(None, ())


def effective_accuracy(fix: Fix, radii: Radii) -> float | None:
    """The accuracy the rules use: the fix's, the worst still used when it has none; None when the
    fix is too inaccurate to set anything."""
    accuracy = radii.max_accuracy_m if fix.accuracy_m is None else fix.accuracy_m
    return None if accuracy > radii.max_accuracy_m else accuracy


def surely_within(distance_m: float, accuracy_m: float, radius_m: float) -> bool:
    """Entering a radius: the fix is inside it and its accuracy is no larger than it."""
    return distance_m <= radius_m and accuracy_m <= radius_m


def surely_outside(distance_m: float, accuracy_m: float, radius_m: float) -> bool:
    """Leaving a radius: even pulled back by its accuracy, the fix is outside it."""
    return distance_m - accuracy_m > radius_m


def judge(trip: Trip, fix: Fix, radii: Radii) -> Judged:
    """The marks this fix sets on the trip, in order (`MARKS`), each once."""
    accuracy = effective_accuracy(fix, radii)
    if trip.done or accuracy is None or fix.ts < trip.accepted_ts:
        return NOTHING
    here = fix.point
    origin = None if trip.origin is not None else here
    start = trip.origin or here
    found: list[Crossing] = []
    from_start = here.to(start)
    if not trip.en_route and _heading_on(trip, start, here, from_start, accuracy, radii):
        found.append(Crossing("en_route", from_start))
    has_aed = trip.aed_picked_up
    if trip.fetching and not has_aed and trip.aed is not None:
        to_aed = here.to(trip.aed)
        if surely_within(to_aed, accuracy, radii.aed_m):
            found.append(Crossing("aed_picked_up", to_aed))
            has_aed = True
    to_patient = here.to(trip.patient)
    if (has_aed or not trip.fetching) and surely_within(to_patient, accuracy, radii.on_scene_m):
        found.append(Crossing("on_scene", to_patient))
    if found and not trip.en_route and found[0].mark != "en_route":
        found.insert(0, Crossing("en_route", from_start))  # got there, so was on the way
    return Judged(origin, tuple(found))


def _heading_on(
    trip: Trip, start: Point, here: Point, from_start: float, accuracy: float, radii: Radii
) -> bool:
    """Surely out of the accept circle, and nearer the target than the accept point was."""
    if not surely_outside(from_start, accuracy, radii.en_route_m):
        return False
    target = trip.target
    return here.to(target) < start.to(target)
