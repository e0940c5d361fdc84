"""Who can reach the patient in time, and which AEDs each could bring: the dispatch policy's input.

Inputs are plain data (candidates already known to be dispatchable, AEDs already known to be open),
so the service (opening, answers, the clock) and the planner's simulations call exactly this.
Deciding whom to alert and who does what is the policy's (`dispatch.policy.circle`).

* A responder is eligible when their ETA (the reach model) is within the incident's reach.
* Their fetch options are the AEDs they could bring to the patient within the reach (responder →
  AED → patient, pick-up included), soonest first. A responder standing beside an AED has it as
  their best option: their fetch ETA is their direct ETA plus the pick-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dispatch.policy.circle import Fetch, Person
from geo.distance import haversine_m
from geo.reach import ReachModel

_ROUNDING_M = 1e-3  # float rounding in the triangle-inequality bounds; far below any distance that matters


@dataclass(frozen=True, slots=True)
class Candidate:
    """A dispatchable responder near the incident; `distance_m` is to the patient."""

    responder_id: str
    lat: float
    lng: float
    mode: str
    distance_m: float


@dataclass(frozen=True, slots=True)
class AedSite:
    aed_id: str
    lat: float
    lng: float


def fetch_pairs(
    patient_lat: float,
    patient_lng: float,
    eligible: Sequence[Candidate],
    sites: Sequence[AedSite],
    model: ReachModel,
    reach_s: float,
) -> list[tuple[float, Candidate, AedSite]]:
    """Every (fetch ETA, runner, AED) within reach, earliest first (ties by responder, then AED id).

    A detour via an AED is never shorter than the straight line (triangle inequality), so nobody
    whose direct trip plus the pick-up is already beyond reach can fetch any AED in reach, and an
    AED whose detour is provably too long needs no distance computed: both are skipped before the
    exact ETA, which is what made matching in a dense crowd slow. The exact check decides.
    """
    to_patient = [(a, haversine_m(a.lat, a.lng, patient_lat, patient_lng)) for a in sites]
    pairs = []
    for c in eligible:
        # the longest responder -> AED -> patient path this runner covers in time (metres)
        budget = model.max_distance_m(reach_s - model.aed_pickup_s, c.mode) + _ROUNDING_M
        direct = haversine_m(c.lat, c.lng, patient_lat, patient_lng)
        if direct > budget:
            continue
        for a, d_ap in to_patient:
            # the detour is at least |direct - d_ap| + d_ap: skip the haversine when that is too long
            if abs(direct - d_ap) + d_ap > budget:
                continue
            eta = model.fetch_eta_s(haversine_m(c.lat, c.lng, a.lat, a.lng), d_ap, c.mode)
            if eta <= reach_s:
                pairs.append((eta, c, a))
    pairs.sort(key=lambda t: (t[0], t[1].responder_id, t[2].aed_id))
    return pairs


def people_in_reach(
    patient_lat: float,
    patient_lng: float,
    candidates: Sequence[Candidate],
    aeds: Sequence[AedSite],
    model: ReachModel,
    reach_s: float,
    chance: Mapping[str, float],
    *,
    prior: float,
    fetch_options: int = 3,
) -> list[Person]:
    """Everyone who can reach the patient within `reach_s`, as the dispatch policy sees them
    (`dispatch.policy.circle.Person`): how soon straight there, which AEDs (up to `fetch_options`,
    soonest first) they could bring in time, and their chance of accepting (`chance`, else `prior`).
    Soonest first; the same function for the service and the simulator."""
    timed = ((model.eta_s(c.distance_m, c.mode), c) for c in candidates)
    eligible = sorted(
        ((eta, c) for eta, c in timed if eta <= reach_s), key=lambda t: (t[0], t[1].responder_id)
    )
    options: dict[str, list[Fetch]] = {}
    for eta, c, a in fetch_pairs(patient_lat, patient_lng, [c for _, c in eligible], aeds, model, reach_s):
        mine = options.setdefault(c.responder_id, [])
        if len(mine) < fetch_options:
            mine.append(Fetch(a.aed_id, round(eta, 1)))
    return [
        Person(
            c.responder_id,
            chance.get(c.responder_id, prior),
            round(eta, 1),
            round(c.distance_m, 1),
            tuple(options.get(c.responder_id, ())),
        )
        for eta, c in eligible
    ]


@dataclass(frozen=True, slots=True)
class Coverage:
    """The verdict for the dispatcher (and the planner's coverage studies): is anyone in reach, and
    how soon could help, and an AED brought by one of them, be at the patient."""

    covered: bool
    fastest_eta_s: float | None
    aed_eta_s: float | None


def coverage_of(people: Sequence[Person]) -> Coverage:
    """The verdict on everyone in reach (`people_in_reach`)."""
    fetches = [p.best_fetch_s for p in people if p.fetch]
    return Coverage(bool(people), min((p.eta_s for p in people), default=None), min(fetches, default=None))
