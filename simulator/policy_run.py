"""Running the policy comparison over thousands of incidents in a minute or two, and summing it up.

The expensive part — who is near which incident, which AEDs are near and open — is done once for
all incidents with k-d trees (`simulator.nearest`), on-shift responders per shift and AEDs filtered
by their opening hours at each incident's moment. The workers' true propensities are drawn and their
earlier weeks played once (`learn_workers`); then every policy sees the same `Scene` and the same
answers at every incident, played in time by `simulator.events.play`. The summary gives, per policy,
for the whole city and per district: the share of incidents with a responder on scene within
5 minutes, with an AED at the patient within 5 and 8 minutes, the median and mean number of alerts,
and how many ran for nothing; and, per area, the ceilings no policy can beat.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import numpy as np
from numpy.typing import NDArray

from aed_registry.availability import HoursPolicy
from dispatch.matching import AedSite, Candidate
from geo.reach import ReachModel
from simulator.answers import (
    AnswerModel,
    Crew,
    answers_to,
    learned_acceptance,
    propensities,
    simulated_history,
    true_acceptance,
)
from simulator.city import City
from simulator.events import Outcome, play
from simulator.incidents import DEFAULT_WEEK, SimIncident, incident_stream
from simulator.nearest import PointSet, pairs_within
from simulator.policies import (
    EveryoneWithin,
    FirstAcceptorsFetch,
    NearestWithRunners,
    Policy,
    RescueCircle,
    Scene,
    ViaAedWhenOnTheWay,
)
from simulator.population import SimAed, SimResponder, shift_at

Progress = Callable[[int, int], None]
FIVE_MIN_S, EIGHT_MIN_S = 300.0, 480.0
WHOLE_CITY = "whole city"


def standard_policies(settings: Any, model: ReachModel) -> list[Policy]:
    """The issue's five policies, in the order the report shows them."""
    return [
        EveryoneWithin(model),
        NearestWithRunners(model),
        ViaAedWhenOnTheWay(model),
        FirstAcceptorsFetch(model),
        RescueCircle.from_settings(settings, model),
    ]


@dataclass(frozen=True, slots=True)
class Knob:
    """One setting of a policy's main knob, for the Pareto plot: `family` is the standard key."""

    family: str
    name: str
    value: float
    policy: Policy


KNOBS: dict[str, tuple[str, tuple[float, ...]]] = {
    "A": ("radius_m", (200, 400, 800, 1300)),
    "B": ("cap", (5, 10, 20, 30, 50)),
    "hartslagnu": ("cap", (5, 10, 20, 30, 50)),
    "hjertelober": ("count", (5, 10, 20, 30)),
    "ours": ("level", (0.5, 0.7, 0.8, 0.9, 0.97)),
}


def knob_variants(standard: Sequence[Policy]) -> list[Knob]:
    """Each standard policy at every value of its knob (the standard value keeps its own key)."""
    out = []
    for policy in standard:
        name, values = KNOBS[policy.key]
        ours = isinstance(policy, RescueCircle)
        default = policy.rules.level if ours else getattr(policy, name)
        for value in sorted({*values, default}):
            if ours:
                variant: Any = replace(policy, rules=replace(policy.rules, level=value))
            else:
                variant = replace(policy, **{name: type(default)(value)})
            key = policy.key if value == default else f"{policy.key} {name}={value:g}"
            out.append(Knob(policy.key, name, float(value), replace(variant, key=key)))
    return out


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
class Workers:
    """What the simulation knows of the workers, aligned with the population: the true acceptance
    (day band; `simulator.answers` lowers it at night) that decides answers, and the estimate
    learned from their simulated history that ours dispatches with. Nothing else reads the truth."""

    propensity: NDArray[np.float64]
    learned: NDArray[np.float64]
    model: AnswerModel


def learn_workers(
    city: City,
    responders: Sequence[SimResponder],
    *,
    acceptance: float,
    seed: int,
    settings: Any,
    model: AnswerModel = AnswerModel(),
    history_weeks: int = 12,
    alerts_per_week: float = 1.0,
) -> Workers:
    """Draw the true propensities, play the earlier weeks, and learn from them as the service would."""
    truth = propensities(len(responders), acceptance, model, seed)
    where = city.district_index([p.lat for p in responders], [p.lng for p in responders])
    crew = [
        Crew(p.responder_id, city.names[d] if d >= 0 else None, p.category)
        for p, d in zip(responders, where, strict=True)
    ]
    history = simulated_history(
        crew, responders, truth, model, weeks=history_weeks, alerts_per_week=alerts_per_week, seed=seed
    )
    learned = learned_acceptance(
        history, crew, responders,
        prior=float(settings.acceptance_probability), strength=float(settings.acceptance_prior_strength),
    )  # fmt: skip
    return Workers(truth, learned, model)


@dataclass(frozen=True)
class Comparison:
    """Every policy's outcome at every incident (lists aligned with `incidents`), and whether an AED
    could be brought within 5 minutes at all (`ceiling`)."""

    incidents: list[SimIncident]
    labels: dict[str, str]
    outcomes: dict[str, list[Outcome]]
    ceiling: list[bool]
    ceiling_answered: list[bool]
    acceptance: float
    seed: int


def compare(
    incidents: Sequence[SimIncident],
    responders: Sequence[SimResponder],
    aeds: Sequence[SimAed],
    policies: Sequence[Policy],
    workers: Workers,
    *,
    seed: int,
    acceptance: float,
    hours: HoursPolicy,
    model: ReachModel,
    wanted: int,
    horizon_s: float = 900.0,
    progress: Progress | None = None,
) -> Comparison:
    """Run every policy on every incident with the same answers (paired)."""
    outcomes: dict[str, list[Outcome]] = {p.key: [] for p in policies}
    ceiling, ceiling_answered = [], []
    radius = max(p.responder_radius_m for p in policies)
    aed_radius = max(
        max(p.aed_radius_m for p in policies), model.max_distance_for(FIVE_MIN_S - model.aed_pickup_s)
    )
    for done, (scene, keys) in enumerate(scenes(incidents, responders, aeds, hours, radius, aed_radius), 1):
        truth = true_acceptance(
            workers.propensity[keys], shift_at(hours.local(scene.incident.at).hour), workers.model
        )
        answers = answers_to(seed, scene.incident.incident_id, keys, truth, workers.model)
        by_id = {c.responder_id: a for c, a in zip(scene.responders, answers, strict=True)}
        estimates = {
            c.responder_id: float(workers.learned[k]) for c, k in zip(scene.responders, keys, strict=True)
        }
        for policy in policies:
            circle = policy.circle(scene, estimates)
            outcomes[policy.key].append(play(circle, by_id, horizon_s=horizon_s, wanted=wanted))
        ceiling.append(scene.ceiling(model, FIVE_MIN_S))
        ceiling_answered.append(scene.ceiling(model, FIVE_MIN_S, answers))
        if progress is not None and (done % 50 == 0 or done == len(incidents)):
            progress(done, len(incidents))
    return Comparison(
        list(incidents),
        {p.key: p.label for p in policies},
        outcomes,
        ceiling,
        ceiling_answered,
        acceptance,
        seed,
    )


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
    policies: Sequence[Policy] | None = None,
    history_weeks: int = 12,
    alerts_per_week: float = 1.0,
    progress: Progress | None = None,
) -> Comparison:
    """The whole comparison from a city and its people: workers learned from their history, the
    incident stream, the standard policies (or `policies`), outcomes."""
    hours = HoursPolicy.from_settings(settings)
    model = ReachModel.from_settings(settings)
    stream = incident_stream(city, incidents, seed, tz=hours.tz, week_start=week_start)
    workers = learn_workers(
        city, responders, acceptance=acceptance, seed=seed, settings=settings,
        history_weeks=history_weeks, alerts_per_week=alerts_per_week,
    )  # fmt: skip
    return compare(
        stream, responders, aeds, policies or standard_policies(settings, model), workers,
        seed=seed, acceptance=acceptance, hours=hours, model=model,
        wanted=int(settings.target_cpr) + int(settings.target_aed), progress=progress,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class PolicyRow:
    """One line of the report: a policy in the whole city, a district, or a street of a district
    (`street` set). Shares are 0-1, None when the area had no incident; `ran_for_nothing` is a mean
    number of people per incident."""

    policy: str
    label: str
    district: str
    incidents: int
    responder_5min: float | None
    aed_5min: float | None
    aed_8min: float | None
    median_alerts: float | None
    mean_alerts: float | None
    ran_for_nothing: float | None
    street: str | None = None


def _share(hit: NDArray[np.bool_]) -> float | None:
    return float(hit.mean()) if len(hit) else None


def _mean(values: NDArray[np.float64]) -> float | None:
    return float(values.mean()) if len(values) else None


Area = tuple[str, str | None, NDArray[np.bool_]]  # district (or the whole city), street, incidents


def areas(
    comparison: Comparison, district_names: Sequence[str], streets: Sequence[tuple[str, str]] = ()
) -> list[Area]:
    """The whole city, each district in the city's order, then each street (district, street) in
    `City.streets` order, as masks over the incidents."""
    district = np.array([x.district for x in comparison.incidents], dtype=np.int64)
    street = np.array([x.street for x in comparison.incidents], dtype=np.int64)
    out: list[Area] = [(WHOLE_CITY, None, np.ones(len(district), dtype=bool))]
    out += [(name, None, district == d) for d, name in enumerate(district_names)]
    return out + [(d, s, street == k) for k, (d, s) in enumerate(streets)]


def street_names(city: City) -> list[tuple[str, str]]:
    """(district, street) of each of the city's streets, for the per-street rows."""
    return [(city.districts[d].name, s.name) for d, s in city.streets]


def summarise(
    comparison: Comparison,
    district_names: Sequence[str],
    keys: Sequence[str] | None = None,
    streets: Sequence[tuple[str, str]] = (),
) -> list[PolicyRow]:
    """Rows for the whole city first, then per district in the city's order, then per street (when
    given); policies in run order (only `keys`, when given)."""
    rows = []
    for name, street, mask in areas(comparison, district_names, streets):
        for key, outcomes in comparison.outcomes.items():
            if keys is not None and key not in keys:
                continue
            responder = np.array([o.responder_s for o in outcomes])[mask]
            aed = np.array([o.aed_s for o in outcomes])[mask]
            alerts = np.array([len(o.alerts) for o in outcomes], dtype=np.float64)[mask]
            wasted = np.array([o.ran_for_nothing for o in outcomes], dtype=np.float64)[mask]
            rows.append(
                PolicyRow(
                    key,
                    comparison.labels[key],
                    name,
                    int(mask.sum()),
                    _share(responder <= FIVE_MIN_S),
                    _share(aed <= FIVE_MIN_S),
                    _share(aed <= EIGHT_MIN_S),
                    float(np.median(alerts)) if len(alerts) else None,
                    _mean(alerts),
                    _mean(wasted),
                    street,
                )
            )
    return rows


@dataclass(frozen=True, slots=True)
class Ceiling:
    """What no policy can beat on AED ≤ 5 min, per area: `reachable`, the share of incidents where
    some on-shift worker could bring some open AED within 5 minutes at all (answering at once);
    `answered`, where one of those who would accept this alert could, their answer delay included
    (it reads the simulated answers of everyone, which no policy can: a bound, not a policy)."""

    reachable: float | None
    answered: float | None


def ceilings(comparison: Comparison, district_names: Sequence[str]) -> dict[str, Ceiling]:
    reachable = np.array(comparison.ceiling, dtype=bool)
    answered = np.array(comparison.ceiling_answered, dtype=bool)
    return {
        name: Ceiling(_share(reachable[mask]), _share(answered[mask]))
        for name, _, mask in areas(comparison, district_names)
    }
