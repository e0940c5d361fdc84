"""The arrival geofences (dispatch.geofence): which marks a fix sets, accuracy honoured, order kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dispatch.geofence import MARKS, Fix, Point, Radii, Trip, judge
from geo.distance import destination

RADII = Radii(en_route_m=20, aed_m=15, on_scene_m=30, max_accuracy_m=50)
PATIENT = Point(22.5431, 114.0579)
T0 = 1_800_000_000.0


def at(point: Point, metres: float, bearing: float) -> Point:
    return Point(*destination(point.lat, point.lng, metres, bearing))


def fix(point: Point, accuracy: float | None = 5.0, ts: float = T0 + 10) -> Fix:
    return Fix(point.lat, point.lng, ts, accuracy)


ORIGIN = at(PATIENT, 400, 0)  # accepted 400 m north of the patient
AED = at(PATIENT, 300, 90)  # the AED 300 m east of the patient (about 500 m from the origin)
CPR = Trip("cpr", PATIENT, T0, origin=ORIGIN)
RUNNER = Trip("fetch_aed", PATIENT, T0, aed=AED, origin=ORIGIN)


def marks(trip: Trip, f: Fix) -> list[str]:
    return [c.mark for c in judge(trip, f, RADII).crossings]


def test_leaving_the_accept_circle_towards_the_patient_is_en_route() -> None:
    assert marks(CPR, fix(at(ORIGIN, 30, 180))) == ["en_route"]
    crossing = judge(CPR, fix(at(ORIGIN, 30, 180)), RADII).crossings[0]
    assert abs(crossing.distance_m - 30) < 0.01


def test_still_inside_the_circle_given_the_accuracy_is_not_en_route() -> None:
    assert marks(CPR, fix(at(ORIGIN, 30, 180), accuracy=12)) == []  # 30 − 12 = 18 ≤ 20
    assert marks(CPR, fix(at(ORIGIN, 30, 180), accuracy=9)) == ["en_route"]  # 21 > 20


def test_walking_away_from_the_patient_is_not_en_route() -> None:
    assert marks(CPR, fix(at(ORIGIN, 200, 0))) == []  # 200 m further north


def test_a_runner_heads_for_the_aed_not_the_patient() -> None:
    towards_aed = at(ORIGIN, 40, 135)  # south-east, towards the AED
    assert marks(RUNNER, fix(towards_aed)) == ["en_route"]
    away_from_aed = at(ORIGIN, 40, 300)
    assert marks(RUNNER, fix(away_from_aed)) == []


def test_a_runner_passing_the_patient_is_not_on_scene_before_the_aed() -> None:
    passing = fix(at(PATIENT, 5, 0))
    assert marks(RUNNER.with_marks(("en_route",)), passing) == []
    assert marks(RUNNER.with_marks(("en_route", "aed_picked_up")), passing) == ["on_scene"]


def test_the_aed_is_picked_up_within_its_radius_only_with_an_accurate_fix() -> None:
    trip = RUNNER.with_marks(("en_route",))
    assert marks(trip, fix(at(AED, 10, 0), accuracy=8)) == ["aed_picked_up"]
    assert marks(trip, fix(at(AED, 10, 0), accuracy=20)) == []  # accuracy > 15 m radius
    assert marks(trip, fix(at(AED, 16, 0), accuracy=1)) == []


def test_a_first_fix_at_the_patient_gives_en_route_then_on_scene() -> None:
    assert marks(CPR, fix(at(PATIENT, 10, 0))) == ["en_route", "on_scene"]
    assert marks(Trip("cpr", PATIENT, T0), fix(PATIENT)) == ["en_route", "on_scene"]


def test_without_an_origin_the_first_fix_becomes_it() -> None:
    trip = Trip("cpr", PATIENT, T0)
    judged = judge(trip, fix(ORIGIN), RADII)
    assert judged.origin == ORIGIN and judged.crossings == ()
    assert judge(CPR, fix(ORIGIN), RADII).origin is None  # a known origin is kept


def test_a_fix_too_inaccurate_sets_nothing() -> None:
    assert marks(CPR, fix(PATIENT, accuracy=51)) == []
    assert marks(CPR, fix(at(ORIGIN, 300, 180), accuracy=51)) == []


def test_a_fix_without_accuracy_counts_as_the_worst_used() -> None:
    assert marks(CPR, fix(at(ORIGIN, 60, 180), accuracy=None)) == []  # 60 − 50 ≤ 20
    assert marks(CPR, fix(at(ORIGIN, 80, 180), accuracy=None)) == ["en_route"]  # 80 − 50 > 20
    assert marks(CPR.with_marks(("en_route",)), fix(PATIENT, accuracy=None)) == []  # 50 > 30


def test_a_fix_from_before_the_accept_sets_nothing() -> None:
    assert marks(CPR, fix(PATIENT, ts=T0 - 1)) == []


def test_a_set_mark_is_never_set_again() -> None:
    done = CPR.with_marks(("en_route", "on_scene"))
    assert marks(done, fix(PATIENT)) == []
    assert marks(CPR.with_marks(("en_route",)), fix(at(ORIGIN, 50, 180))) == []


bearing = st.floats(0, 360)
metres = st.floats(0, 2000)
accuracy = st.one_of(st.none(), st.floats(0, 120))


@given(metres, bearing, accuracy, st.sampled_from(["cpr", "fetch_aed"]), st.sets(st.sampled_from(MARKS)))
def test_marks_come_in_trip_order_once_each_and_honour_accuracy(
    d: float, b: float, acc: float | None, role: str, already: set[str]
) -> None:
    trip = Trip(role, PATIENT, T0, aed=AED if role == "fetch_aed" else None, origin=ORIGIN)
    trip = trip.with_marks(tuple(m for m in MARKS if m in already))  # type: ignore[misc]
    if trip.on_scene:
        trip = trip.with_marks(("en_route",))
    f = fix(at(PATIENT, d, b), accuracy=acc)
    got = marks(trip, f)
    assert got == [m for m in MARKS if m in got]  # in order
    assert not set(got) & already  # never again
    if acc is not None and acc > RADII.max_accuracy_m:
        assert got == []
    if "on_scene" in got:
        assert (
            d <= RADII.on_scene_m + 0.01
            and (RADII.max_accuracy_m if acc is None else acc) <= RADII.on_scene_m
        )
        assert role == "cpr" or "aed_picked_up" in got or "aed_picked_up" in already
    if got and not trip.en_route:
        assert got[0] == "en_route"  # a later mark brings the earlier one
    if "aed_picked_up" in got:
        assert role == "fetch_aed"


@given(st.lists(st.tuples(metres, bearing, st.floats(1, 30)), max_size=30))
def test_a_walk_never_marks_twice_and_ends_on_scene(walk: list[tuple[float, float, float]]) -> None:
    """A runner's whole trip: whatever the wander, each mark at most once, in order; standing at
    the AED then at the patient with good fixes finishes it."""
    fixes = [fix(at(PATIENT, d, b), acc) for d, b, acc in walk] + [fix(AED, 3), fix(PATIENT, 3)]
    trip, seen = RUNNER, []
    for f in fixes:
        got = tuple(c.mark for c in judge(trip, f, RADII).crossings)
        trip, seen = trip.with_marks(got), seen + list(got)
    assert seen == ["en_route", "aed_picked_up", "on_scene"]
