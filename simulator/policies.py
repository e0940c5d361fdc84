"""Dispatch policies side by side: who each one alerts, and what happens when some of them say yes.

Three ways to run a rescue circle are compared on the same incidents, the same people and the same
travel model (`geo.reach.ReachModel`), so the only thing that differs is the policy:

* **A** (`EveryoneWithin`): alert everyone trained within 400 m, everyone goes straight to the
  patient; nobody is sent for an AED.
* **B** (`NearestWithRunners`): alert up to the 30 nearest within 1.3 km and send a third of them,
  the best placed, for AEDs — each to the AED that reaches the patient soonest via them.
* **ours** (`ServicePolicy`): exactly what the service does, `dispatch.matching.assign_roles` with the
  service's `MatchPolicy` and reach, optionally followed by the escalation steps the dispatch clock
  takes while too few have accepted (same rules as `dispatch.escalation.escalate`).

Everything here is pure: plain dataclasses in, plain dataclasses out. Acceptance is decided by a draw
that depends only on (seed, incident, responder) (`simulator.incidents.acceptance_draws`), so a
responder alerted under two policies answers the same way under both: the comparison is paired, and
differences come from the policies, not luck.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dispatch.matching import AedSite, Candidate, MatchPolicy, Role, assign_roles
from geo.distance import haversine_m, haversine_m_np
from geo.reach import ReachModel
from simulator.incidents import SimIncident

# --- what a policy sees and what it decides ---------------------------------------------------


@dataclass(frozen=True)
class Scene:
    """Around one incident: responders on shift and AEDs open at that moment, both nearest first.

    It holds everyone within the widest radius any compared policy looks at; each policy applies its
    own limits. `aed_distance_m[i]` is the straight-line distance from `aeds[i]` to the patient.
    """

    incident: SimIncident
    responders: tuple[Candidate, ...]
    aeds: tuple[AedSite, ...]
    aed_distance_m: tuple[float, ...]

    @classmethod
    def around(cls, incident: SimIncident, people: Iterable[Any], aeds: Iterable[AedSite]) -> Scene:
        """From objects with `responder_id`, `lat`, `lng`, `mode`, measuring and sorting by distance."""
        cands = [
            Candidate(
                p.responder_id, p.lat, p.lng, p.mode, haversine_m(p.lat, p.lng, incident.lat, incident.lng)
            )
            for p in people
        ]
        cands.sort(key=lambda c: (c.distance_m, c.responder_id))
        sites = sorted(
            ((haversine_m(a.lat, a.lng, incident.lat, incident.lng), a) for a in aeds),
            key=lambda t: (t[0], t[1].aed_id),
        )
        return cls(incident, tuple(cands), tuple(a for _, a in sites), tuple(d for d, _ in sites))


@dataclass(frozen=True, slots=True)
class SimAlert:
    """One alert: `eta_s` counts from when it was sent to the patient (cpr) or to the AED at the
    patient (fetch_aed); `sent_at_s` counts from when the incident was opened."""

    responder_id: str
    role: Role
    eta_s: float
    aed_id: str | None = None
    sent_at_s: float = 0.0

    @property
    def arrival_s(self) -> float:
        return self.sent_at_s + self.eta_s


class Policy(Protocol):
    """A dispatch policy: the first batch of alerts, then (maybe) more while too few have accepted."""

    key: str
    label: str

    @property
    def responder_radius_m(self) -> float:
        """The scene must hold every on-shift responder this close to the patient."""
        ...

    @property
    def aed_radius_m(self) -> float:
        """The scene must hold every open AED this close to the patient."""
        ...

    def alerts(self, scene: Scene) -> list[SimAlert]: ...

    def escalate(
        self, scene: Scene, sent: Sequence[SimAlert], accepted: Collection[str], step: int
    ) -> list[SimAlert] | None:
        """Alerts of escalation step `step` (1, 2, …) given the answers so far; None: no more steps."""
        ...


class OneBatch:
    """For policies that alert once and never follow up."""

    def escalate(
        self, scene: Scene, sent: Sequence[SimAlert], accepted: Collection[str], step: int
    ) -> list[SimAlert] | None:
        return None


@dataclass(frozen=True)
class EveryoneWithin(OneBatch):
    """Policy A: alert every trained person within `responder_radius_m`; all go straight to the patient."""

    model: ReachModel
    responder_radius_m: float = 400.0
    aed_radius_m: float = 0.0  # nobody is sent for an AED
    key: str = "everyone_400m"
    label: str = "A: everyone ≤ 400 m, no AED runners"

    def alerts(self, scene: Scene) -> list[SimAlert]:
        return [
            SimAlert(c.responder_id, "cpr", self.model.eta_s(c.distance_m, c.mode))
            for c in scene.responders
            if c.distance_m <= self.responder_radius_m
        ]


def best_runners(
    scene: Scene, near: Sequence[Candidate], aed_indices: Sequence[int], n: int, model: ReachModel
) -> list[tuple[int, int, float]]:
    """Up to `n` (candidate index, AED index, fetch ETA) pairs: the best placed runners, greedily.

    The pair whose AED would reach the patient soonest goes first, then the best pair among the rest,
    each AED once while unused ones remain ("distinct AEDs where possible"); when every AED has a
    runner, the remaining runners go to whichever AED is best for them. Ties go to the nearer runner.
    """
    if n <= 0 or not near or not aed_indices:
        return []
    a_lat = np.array([scene.aeds[j].lat for j in aed_indices])
    a_lng = np.array([scene.aeds[j].lng for j in aed_indices])
    d_ap = np.array([scene.aed_distance_m[j] for j in aed_indices])
    r_lat = np.array([c.lat for c in near])[:, None]
    r_lng = np.array([c.lng for c in near])[:, None]
    speeds = model.speeds_np([c.mode for c in near])[:, None]
    eta = model.fetch_eta_s_np(haversine_m_np(r_lat, r_lng, a_lat, a_lng), d_ap, speeds)
    free_runner = np.ones(len(near), dtype=bool)
    free_aed = np.ones(len(aed_indices), dtype=bool)
    picked: list[tuple[int, int, float]] = []
    while len(picked) < n and free_runner.any():
        usable = free_aed if free_aed.any() else np.ones_like(free_aed)
        masked = np.where(free_runner[:, None] & usable[None, :], eta, np.inf)
        i, j = np.unravel_index(int(np.argmin(masked)), masked.shape)
        picked.append((int(i), int(aed_indices[j]), float(eta[i, j])))
        free_runner[i] = False
        free_aed[j] = False
    return picked


@dataclass(frozen=True)
class NearestWithRunners(OneBatch):
    """Policy B: the `cap` nearest within `responder_radius_m`; a third of them (rounded down) fetch AEDs."""

    model: ReachModel
    responder_radius_m: float = 1300.0
    aed_radius_m: float = 1300.0  # runners may fetch any open AED this close to the patient
    cap: int = 30
    runner_every: int = 3
    key: str = "nearest30_1300m"
    label: str = "B: 30 nearest ≤ 1.3 km, a third fetch AEDs"

    def alerts(self, scene: Scene) -> list[SimAlert]:
        near = [c for c in scene.responders if c.distance_m <= self.responder_radius_m][: self.cap]
        aed_indices = [j for j, d in enumerate(scene.aed_distance_m) if d <= self.aed_radius_m]
        runners = best_runners(scene, near, aed_indices, len(near) // self.runner_every, self.model)
        fetching = {i: (scene.aeds[j].aed_id, eta) for i, j, eta in runners}
        out = [SimAlert(near[i].responder_id, "fetch_aed", eta, aed) for i, (aed, eta) in fetching.items()]
        out += [
            SimAlert(c.responder_id, "cpr", self.model.eta_s(c.distance_m, c.mode))
            for i, c in enumerate(near)
            if i not in fetching
        ]
        return out


@dataclass(frozen=True)
class ServicePolicy:
    """Ours: `assign_roles` as `dispatch.service.plan_alerts` calls it, plus the escalation steps.

    The first batch is planned at `reach_s` with the nearest `aed_limit` open AEDs within the fetch
    radius (what plan_alerts asks PostGIS for). With `escalation`, every `interval_s` while fewer than
    target_cpr + target_aed have accepted, the reach grows by `step_s` up to `reach_max_s` and the next
    batch excludes everyone already alerted and the AEDs accepted runners are bringing, never beyond
    the alert cap — the rules of `dispatch.escalation.escalate`. Answers are taken to be in before the
    next step (the alert's activation time already covers reading it).
    """

    model: ReachModel
    match: MatchPolicy
    reach_s: float = 300.0
    escalation: bool = True
    interval_s: float = 30.0
    step_s: float = 60.0
    reach_max_s: float = 480.0
    aed_limit: int = 10
    key: str = "ours"
    label: str = "ours: assign_roles + escalation"

    @classmethod
    def from_settings(cls, settings: Any, model: ReachModel, *, escalation: bool = True) -> ServicePolicy:
        match = MatchPolicy.from_settings(settings)
        return cls(
            model,
            match,
            float(settings.reach_s),
            escalation,
            float(settings.escalation_interval_s),
            float(settings.escalation_step_s),
            float(settings.reach_max_s),
            max(10, 3 * match.aed_candidates),  # the limit plan_alerts passes to nearby_available
            "ours" if escalation else "ours_first_batch",
            "ours: assign_roles + escalation" if escalation else "ours, first batch only",
        )

    @property
    def _widest_reach_s(self) -> float:
        return self.reach_max_s if self.escalation else self.reach_s

    @property
    def responder_radius_m(self) -> float:
        return self.model.max_distance_for(self._widest_reach_s)

    @property
    def aed_radius_m(self) -> float:
        return self.model.max_distance_for(self._widest_reach_s - self.model.aed_pickup_s)

    def _plan(
        self, scene: Scene, reach_s: float, sent_at_s: float, exclude: Collection[str], busy: Collection[str]
    ) -> list[SimAlert]:
        radius = self.model.max_distance_for(reach_s - self.model.aed_pickup_s)
        sites = [
            a for a, d in zip(scene.aeds, scene.aed_distance_m, strict=True) if d <= radius and radius > 0
        ]
        inc = scene.incident
        plan = assign_roles(
            inc.lat, inc.lng, scene.responders, sites[: self.aed_limit], self.model, reach_s, self.match,
            exclude=exclude, exclude_aeds=busy,
        )  # fmt: skip
        return [SimAlert(a.responder_id, a.role, a.eta_s, a.aed_id, sent_at_s) for a in plan.alerts]

    def alerts(self, scene: Scene) -> list[SimAlert]:
        return self._plan(scene, self.reach_s, 0.0, (), ())

    def escalate(
        self, scene: Scene, sent: Sequence[SimAlert], accepted: Collection[str], step: int
    ) -> list[SimAlert] | None:
        if not self.escalation or len(accepted) >= self.match.target_cpr + self.match.target_aed:
            return None
        reach = min(self.reach_s + step * self.step_s, self.reach_max_s)
        room = max(0, self.match.alert_cap - len(sent))
        busy = {a.aed_id for a in sent if a.aed_id and a.responder_id in accepted}
        new = self._plan(scene, reach, step * self.interval_s, {a.responder_id for a in sent}, busy)[:room]
        if not new and (reach >= self.reach_max_s or room == 0):
            return None
        return new


# --- outcomes ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one policy achieved at one incident (seconds from opening; inf: never)."""

    responder_s: float
    aed_s: float
    alerts: tuple[SimAlert, ...]
    accepted: frozenset[str]


def simulate(scene: Scene, policy: Policy, draws: Mapping[str, float], acceptance: float) -> Outcome:
    """Alert as the policy says; those whose draw is below `acceptance` accept and travel.

    Responder on scene: the earliest arrival of anyone who accepted (a runner arrives with the AED).
    AED on scene: the earliest arrival of an accepted fetch_aed runner.
    """
    sent = policy.alerts(scene)
    accepted = {a.responder_id for a in sent if draws[a.responder_id] < acceptance}
    step = 1
    while (more := policy.escalate(scene, sent, accepted, step)) is not None:
        sent = [*sent, *more]
        accepted |= {a.responder_id for a in more if draws[a.responder_id] < acceptance}
        step += 1
    arrivals = [a.arrival_s for a in sent if a.responder_id in accepted]
    aed = [a.arrival_s for a in sent if a.role == "fetch_aed" and a.responder_id in accepted]
    return Outcome(
        min(arrivals, default=math.inf), min(aed, default=math.inf), tuple(sent), frozenset(accepted)
    )
