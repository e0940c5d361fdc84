"""Who runs to the patient and who fetches which AED: the role assignment, as a pure function.

Inputs are plain data (candidates already known to be dispatchable, AEDs already known to be open),
so the dispatcher, the escalation step and the planner's policy simulation all call exactly this.

The rules (DESIGN.md, "Matching and roles"):
* A responder is eligible when their ETA (the reach model) is within the incident's reach.
* `fetch_aed` runners are chosen first, greedily by when the AED would reach the patient: the pair
  (responder, AED) with the earliest fetch ETA wins, then both leave the pool; one runner per AED,
  only the `aed_candidates` best AEDs. A responder standing beside an AED therefore fetches it: their
  fetch ETA is their direct ETA plus the pick-up, which beats everyone else's detour.
* `cpr` runners are the fastest of the rest by direct ETA.
* Not everybody accepts: alert until the expected acceptances (count × acceptance probability)
  reach each target, never more than the per-incident cap.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dispatch.policy.circle import Fetch, Person
from geo.distance import haversine_m
from geo.reach import ReachModel

Role = Literal["cpr", "fetch_aed"]
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


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    target_cpr: int = 2
    target_aed: int = 1
    aed_candidates: int = 3
    acceptance_probability: float = 0.35
    alert_cap: int = 20

    @classmethod
    def from_settings(cls, settings: Any) -> MatchPolicy:
        return cls(
            int(settings.target_cpr),
            int(settings.target_aed),
            int(settings.aed_candidates),
            float(settings.acceptance_probability),
            int(settings.alert_cap),
        )

    def alerts_for(self, target: int) -> int:
        """How many to alert so that the expected acceptances reach `target`."""
        if target <= 0:
            return 0
        p = min(max(self.acceptance_probability, 1e-6), 1.0)
        return math.ceil(target / p - 1e-9)


@dataclass(frozen=True, slots=True)
class PlannedAlert:
    responder_id: str
    role: Role
    eta_s: float
    distance_m: float
    aed_id: str | None = None


@dataclass(frozen=True, slots=True)
class Coverage:
    """The verdict for the dispatcher: is anyone in reach, and when do help and an AED arrive."""

    covered: bool
    fastest_eta_s: float | None
    aed_eta_s: float | None


@dataclass(frozen=True)
class Assignment:
    alerts: list[PlannedAlert] = field(default_factory=list)
    coverage: Coverage = Coverage(False, None, None)


def _trim_to_cap(cpr: list[PlannedAlert], aed: list[PlannedAlert], policy: MatchPolicy) -> list[PlannedAlert]:
    """Drop from the role furthest beyond its target until the cap holds (AED runners are scarcer)."""
    while len(cpr) + len(aed) > policy.alert_cap:
        cpr_ratio = len(cpr) / max(policy.target_cpr, 1)
        aed_ratio = len(aed) / max(policy.target_aed, 1)
        (cpr if cpr and (cpr_ratio >= aed_ratio or not aed) else aed).pop()
    return aed + cpr


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


def assign_roles(
    patient_lat: float,
    patient_lng: float,
    candidates: Sequence[Candidate],
    aeds: Sequence[AedSite],
    model: ReachModel,
    reach_s: float,
    policy: MatchPolicy,
    *,
    exclude: Collection[str] = (),
    exclude_aeds: Collection[str] = (),
) -> Assignment:
    """Plan the alerts for one incident (or one escalation step, with `exclude` already alerted)."""
    etas = ((model.eta_s(c.distance_m, c.mode), c) for c in candidates if c.responder_id not in exclude)
    eligible = [(eta, c) for eta, c in etas if eta <= reach_s]
    eligible.sort(key=lambda pair: (pair[0], pair[1].responder_id))
    if not eligible:
        return Assignment([], Coverage(False, None, None))

    sites = [a for a in aeds if a.aed_id not in exclude_aeds]
    pairs = fetch_pairs(patient_lat, patient_lng, [c for _, c in eligible], sites, model, reach_s)
    aed_alerts: list[PlannedAlert] = []
    taken: set[str] = set()
    used_aeds: set[str] = set()
    aed_limit = min(policy.alerts_for(policy.target_aed), policy.aed_candidates)
    for eta, c, a in pairs:
        if len(aed_alerts) >= aed_limit:
            break
        if c.responder_id in taken or a.aed_id in used_aeds:
            continue
        taken.add(c.responder_id)
        used_aeds.add(a.aed_id)
        aed_alerts.append(
            PlannedAlert(c.responder_id, "fetch_aed", round(eta, 1), round(c.distance_m, 1), a.aed_id)
        )

    cpr_alerts = [
        PlannedAlert(c.responder_id, "cpr", round(eta, 1), round(c.distance_m, 1))
        for eta, c in eligible
        if c.responder_id not in taken
    ][: policy.alerts_for(policy.target_cpr)]
    alerts = _trim_to_cap(cpr_alerts, aed_alerts, policy)
    coverage = Coverage(
        covered=True,
        fastest_eta_s=round(eligible[0][0], 1),
        aed_eta_s=round(pairs[0][0], 1) if pairs else None,
    )
    return Assignment(alerts, coverage)


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
