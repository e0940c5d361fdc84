"""Running the policy comparison over thousands of incidents in seconds, and summing it up.

The expensive part — who is near which incident, which AEDs are near and open — is done once for
all incidents with k-d trees (`simulator.nearest`), on-shift responders per shift and AEDs filtered
by their opening hours at each incident's moment. Every policy then sees the same `Scene` and the same
acceptance draws. The summary gives, per policy, for the whole city and per district: the share of
incidents with a responder on scene within 5 minutes, with an AED within 5 and 8 minutes, and the
median number of alerts sent.
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aed_registry.availability import HoursPolicy
from dispatch.matching import AedSite, Candidate
from geo.reach import ReachModel
from simulator.city import City
from simulator.incidents import DEFAULT_WEEK, SimIncident, acceptance_draws, incident_stream
from simulator.nearest import PointSet, pairs_within
from simulator.policies import (
    EveryoneWithin,
    NearestWithRunners,
    Outcome,
    Policy,
    Scene,
    ServicePolicy,
    simulate,
)
from simulator.population import SimAed, SimResponder, shift_at

Progress = Callable[[int, int], None]
FIVE_MIN_S, EIGHT_MIN_S = 300.0, 480.0
WHOLE_CITY = "whole city"


def standard_policies(settings: Any, model: ReachModel) -> list[Policy]:
    """The issue's three policies, plus ours without escalation to show what escalation adds."""
    return [
        EveryoneWithin(model),
        NearestWithRunners(model),
        ServicePolicy.from_settings(settings, model),
        ServicePolicy.from_settings(settings, model, escalation=False),
    ]


Neighbours = tuple[NDArray[np.int64], NDArray[np.float64]]


def _grouped(i: NDArray[np.int64], j: NDArray[np.int64], d: NDArray[np.float64], n: int) -> list[Neighbours]:
    """Pairs (target i, source j, metres d) → per target, its sources nearest first (ties by index)."""
    order = np.lexsort((j, d, i))
    i, j, d = i[order], j[order], d[order]
    bounds = np.searchsorted(i, np.arange(n + 1))
    return [(j[a:b], d[a:b]) for a, b in itertools.pairwise(bounds)]


def scenes(
    incidents: Sequence[SimIncident],
    responders: Sequence[SimResponder],
    aeds: Sequence[SimAed],
    hours: HoursPolicy,
    responder_radius_m: float,
    aed_radius_m: float,
) -> Iterator[tuple[Scene, NDArray[np.int64]]]:
    """Each incident's scene and its responders' keys (indices into `responders`, for the draws).

    Responders count when their shift works at the incident's local hour; AEDs when `hours` offers
    them at that moment (the dispatcher's own opening-hours rule).
    """
    n = len(incidents)
    where = PointSet.of([x.lat for x in incidents], [x.lng for x in incidents])
    shifts = np.array([shift_at(hours.local(x.at).hour) for x in incidents])
    near: list[Neighbours] = [(np.empty(0, dtype=np.int64), np.empty(0))] * n
    for shift in ("day", "night"):
        people = np.array([k for k, p in enumerate(responders) if p.shift == shift], dtype=np.int64)
        mine = np.flatnonzero(shifts == shift)
        if len(people) == 0 or len(mine) == 0:
            continue
        crowd = PointSet.of([responders[k].lat for k in people], [responders[k].lng for k in people])
        targets = PointSet.of(where.lat[mine], where.lng[mine])
        i, j, d = pairs_within(targets, crowd, responder_radius_m)
        for k, (jj, dd) in zip(mine, _grouped(i, j, d, len(mine)), strict=True):
            near[k] = (people[jj], dd)
    names = sorted({a.opening_hours for a in aeds})
    hours_code = np.array([names.index(a.opening_hours) for a in aeds], dtype=np.int64)
    devices = PointSet.of([a.lat for a in aeds], [a.lng for a in aeds])
    nearby_aeds = _grouped(*pairs_within(where, devices, aed_radius_m), n)
    for incident, (keys, dist), (aed_j, aed_d) in zip(incidents, near, nearby_aeds, strict=True):
        offered = np.array([hours.offered(h, incident.at) for h in names], dtype=bool)
        open_now = offered[hours_code[aed_j]] if len(aed_j) else np.zeros(0, dtype=bool)
        cands = tuple(
            Candidate(r.responder_id, r.lat, r.lng, r.mode, float(dk))
            for r, dk in zip((responders[k] for k in keys), dist, strict=True)
        )
        sites = tuple(AedSite(aeds[j].aed_id, aeds[j].lat, aeds[j].lng) for j in aed_j[open_now])
        yield Scene(incident, cands, sites, tuple(aed_d[open_now].tolist())), keys


@dataclass(frozen=True)
class Comparison:
    """Every policy's outcome at every incident (lists aligned with `incidents`)."""

    incidents: list[SimIncident]
    labels: dict[str, str]
    outcomes: dict[str, list[Outcome]]
    acceptance: float
    seed: int


def compare(
    incidents: Sequence[SimIncident],
    responders: Sequence[SimResponder],
    aeds: Sequence[SimAed],
    policies: Sequence[Policy],
    *,
    seed: int,
    acceptance: float,
    hours: HoursPolicy,
    progress: Progress | None = None,
) -> Comparison:
    """Run every policy on every incident with paired acceptance draws."""
    outcomes: dict[str, list[Outcome]] = {p.key: [] for p in policies}
    radius = max(p.responder_radius_m for p in policies)
    aed_radius = max(p.aed_radius_m for p in policies)
    for done, (scene, keys) in enumerate(scenes(incidents, responders, aeds, hours, radius, aed_radius), 1):
        draws = acceptance_draws(seed, scene.incident.incident_id, keys).tolist()
        answers = {c.responder_id: u for c, u in zip(scene.responders, draws, strict=True)}
        for policy in policies:
            outcomes[policy.key].append(simulate(scene, policy, answers, acceptance))
        if progress is not None and (done % 50 == 0 or done == len(incidents)):
            progress(done, len(incidents))
    return Comparison(list(incidents), {p.key: p.label for p in policies}, outcomes, acceptance, seed)


def run_study(
    city: City,
    responders: Sequence[SimResponder],
    aeds: Sequence[SimAed],
    *,
    incidents: int,
    seed: int,
    acceptance: float,
    settings: Any,
    week_start: date = DEFAULT_WEEK,
    progress: Progress | None = None,
) -> Comparison:
    """The whole comparison from a city and its people: incident stream, standard policies, outcomes."""
    hours = HoursPolicy.from_settings(settings)
    stream = incident_stream(city, incidents, seed, tz=hours.tz, week_start=week_start)
    policies = standard_policies(settings, ReachModel.from_settings(settings))
    return compare(
        stream, responders, aeds, policies, seed=seed, acceptance=acceptance, hours=hours, progress=progress
    )


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """One line of the report: a policy in a district (or the whole city). Shares are 0-1, None when
    the district had no incident."""

    policy: str
    label: str
    district: str
    incidents: int
    responder_5min: float | None
    aed_5min: float | None
    aed_8min: float | None
    median_alerts: float | None


def _share(hit: NDArray[np.bool_]) -> float | None:
    return float(hit.mean()) if len(hit) else None


def summarise(comparison: Comparison, district_names: Sequence[str]) -> list[PolicyRow]:
    """Rows for the whole city first, then per district in the city's order; policies in run order."""
    district = np.array([x.district for x in comparison.incidents], dtype=np.int64)
    areas = [(WHOLE_CITY, np.ones(len(district), dtype=bool))]
    areas += [(name, district == d) for d, name in enumerate(district_names)]
    rows = []
    for name, mask in areas:
        for key, outcomes in comparison.outcomes.items():
            responder = np.array([o.responder_s for o in outcomes])[mask]
            aed = np.array([o.aed_s for o in outcomes])[mask]
            alerts = [len(o.alerts) for o, m in zip(outcomes, mask, strict=True) if m]
            rows.append(
                PolicyRow(
                    key,
                    comparison.labels[key],
                    name,
                    int(mask.sum()),
                    _share(responder <= FIVE_MIN_S),
                    _share(aed <= FIVE_MIN_S),
                    _share(aed <= EIGHT_MIN_S),
                    float(statistics.median(alerts)) if alerts else None,
                )
            )
    return rows
