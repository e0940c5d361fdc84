"""Dispatch policies side by side: whom each one alerts, when, and which role each acceptor takes.

Five ways to run a rescue circle are compared on the same incidents, the same people, the same
answers and the same travel model (`geo.reach.ReachModel`), so the only thing that differs is the
policy. Each policy makes a `simulator.events.Circle` per incident; the engine plays it in time.

* **A** (`EveryoneWithin`): every on-shift worker within 400 m, all straight to the patient.
* **B** (`NearestWithRunners`, Heartrunner-style): the 30 nearest within 1.3 km at once; a third
  of them, the best placed, are told to fetch AEDs when the alerts go out.
* **HartslagNu-style** (`ViaAedWhenOnTheWay`): up to 30 within 1 km; it aims at two thirds via an
  AED, but only someone within 500 m of an AED whose route via it is at most 5 % longer than going
  straight is sent for it; the rest go direct. Roles fixed when the alerts go out.
* **Hjerteløber-style** (`FirstAcceptorsFetch`): up to 20 alerted; the first 4 who accept are each
  sent for an AED, from the 5th on they go straight to the patient.
* **ours** (`RescueCircle`): `dispatch.policy.circle` itself — `top_up` at the start and after
  every decline or timeout, `choose_role` on each accept, `stand_down` once enough accepted; the
  reach widens every escalation interval only when the pool at the current reach runs dry. It knows
  each worker's acceptance only as learned from their history (`simulator.answers`).

Everything here is pure: plain data in, alerts and roles out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol, TypeVar, cast

import numpy as np
from numpy.typing import NDArray

from dispatch.matching import AedSite, Candidate
from dispatch.policy.circle import (
    CircleRules,
    Fetch,
    Person,
    Role,
    RoleChoice,
    Sent,
    choose_role,
    enough,
    stand_down,
    taken_aeds,
    top_up,
)
from geo.distance import haversine_m, haversine_m_np
from geo.reach import ReachModel
from simulator.answers import Answer
from simulator.events import NOTHING, Circle, Reaction
from simulator.incidents import SimIncident

T = TypeVar("T")


def _model_key(model: ReachModel) -> Hashable:
    return (model.activation_s, model.circuity, tuple(sorted(model.speeds.items())), model.aed_pickup_s)


# --- what every policy sees -------------------------------------------------------------------


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
    memo: dict[Hashable, Any] = field(default_factory=dict, compare=False, repr=False)

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

    @cached_property
    def responder_to_aed_m(self) -> NDArray[np.float64]:
        """Straight-line metres from every responder (rows) to every AED (columns)."""
        if not self.responders or not self.aeds:
            return np.zeros((len(self.responders), len(self.aeds)))
        r_lat = np.array([c.lat for c in self.responders])[:, None]
        r_lng = np.array([c.lng for c in self.responders])[:, None]
        a_lat = np.array([a.lat for a in self.aeds])[None, :]
        a_lng = np.array([a.lng for a in self.aeds])[None, :]
        return haversine_m_np(r_lat, r_lng, a_lat, a_lng)

    def etas(self, model: ReachModel) -> NDArray[np.float64]:
        """Seconds for each responder to reach the patient straight (activation included)."""
        return self._memo(("etas", _model_key(model)), lambda: model.eta_s_np(
            [c.distance_m for c in self.responders], self._speeds(model)
        ))  # fmt: skip

    def fetch_etas(self, model: ReachModel) -> NDArray[np.float64]:
        """Seconds for each responder (rows) to bring each AED (columns) to the patient."""
        return self._memo(("fetch", _model_key(model)), lambda: model.fetch_eta_s_np(
            self.responder_to_aed_m, np.array(self.aed_distance_m)[None, :], self._speeds(model)[:, None]
        ))  # fmt: skip

    def _speeds(self, model: ReachModel) -> NDArray[np.float64]:
        return model.speeds_np([c.mode for c in self.responders])

    def _memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Computed once per scene: every policy (and every knob setting) asks for the same arrays."""
        if key not in self.memo:
            self.memo[key] = compute()
        return cast(T, self.memo[key])

    def ceiling(self, model: ReachModel, within_s: float, answers: Sequence[Answer] | None = None) -> bool:
        """Could any on-shift worker here bring any open AED within `within_s`, answering at once —
        or, given everyone's `answers` (aligned with `responders`), one who accepts, after their delay?"""
        if not self.responders or not self.aeds:
            return False
        best = self.fetch_etas(model).min(axis=1)
        if answers is None:
            return bool(best.min() <= within_s)
        return any(a.accepts and a.delay_s + t <= within_s for a, t in zip(answers, best, strict=True))


class Policy(Protocol):
    """A dispatch policy: what it needs of the scene and how it runs one incident."""

    key: str
    label: str

    @property
    def responder_radius_m(self) -> float: ...

    @property
    def aed_radius_m(self) -> float: ...

    def circle(self, scene: Scene, estimates: Mapping[str, float]) -> Circle:
        """Its circle at one incident; `estimates`: each worker's learned acceptance (ours uses it)."""
        ...


def _pending(responder_id: str, p: float, role: Role | None = None, aed: str | None = None,
             eta_s: float = math.inf) -> Sent:  # fmt: skip
    return Sent(responder_id, 0.0, "pending", p, role, aed, eta_s)


class OneBatch:
    """For circles that alert once: no timeouts, no escalation ticks, nothing after an answer."""

    timeout_s: float | None = None
    tick_s: float | None = None

    def after(self, now_s: float, sent: Sequence[Sent]) -> Reaction:
        return NOTHING

    def tick(self, now_s: float, sent: Sequence[Sent]) -> Reaction | None:
        return None


@dataclass(frozen=True)
class FixedAlerts(OneBatch):
    """A circle decided entirely when the alerts go out: roles fixed, no follow-up."""

    alerts: tuple[Sent, ...]

    def open(self) -> Reaction:
        return Reaction(self.alerts)

    def role(self, now_s: float, sent: Sequence[Sent], responder_id: str) -> RoleChoice:
        raise AssertionError("every alert of a fixed circle carries its role")


# --- A and B ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class EveryoneWithin:
    """Policy A: alert every trained person within `radius_m`; all go straight to the patient."""

    model: ReachModel
    radius_m: float = 400.0
    key: str = "A"
    label: str = "A: everyone ≤ 400 m, direct"

    @property
    def responder_radius_m(self) -> float:
        return self.radius_m

    @property
    def aed_radius_m(self) -> float:
        return 0.0  # nobody is sent for an AED

    def circle(self, scene: Scene, estimates: Mapping[str, float]) -> Circle:
        etas = scene.etas(self.model)
        return FixedAlerts(
            tuple(
                _pending(c.responder_id, estimates.get(c.responder_id, 0.0), "cpr", None, float(eta))
                for c, eta in zip(scene.responders, etas, strict=True)
                if c.distance_m <= self.radius_m
            )
        )


def best_runners(
    scene: Scene, near: Sequence[int], aed_indices: Sequence[int], n: int, model: ReachModel
) -> list[tuple[int, int, float]]:
    """Up to `n` (responder index, AED index, fetch ETA) triples: the best placed runners, greedily.

    `near` and `aed_indices` index `scene.responders` and `scene.aeds`. The pair whose AED would
    reach the patient soonest goes first, then the best pair among the rest, each AED once while
    unused ones remain ("distinct AEDs where possible"); when every AED has a runner, the remaining
    runners go to whichever AED is best for them. Ties go to the nearer runner.
    """
    if n <= 0 or not near or not aed_indices:
        return []
    eta = scene.fetch_etas(model)[np.ix_(list(near), list(aed_indices))]
    free_runner = np.ones(len(near), dtype=bool)
    free_aed = np.ones(len(aed_indices), dtype=bool)
    picked: list[tuple[int, int, float]] = []
    while len(picked) < n and free_runner.any():
        usable = free_aed if free_aed.any() else np.ones_like(free_aed)
        masked = np.where(free_runner[:, None] & usable[None, :], eta, np.inf)
        i, j = np.unravel_index(int(np.argmin(masked)), masked.shape)
        picked.append((int(near[i]), int(aed_indices[j]), float(eta[i, j])))
        free_runner[i] = False
        free_aed[j] = False
    return picked


class WithinRadius:
    """Policies that look at everyone within one straight-line radius of the patient, and send
    runners for AEDs within the same radius."""

    radius_m: float

    @property
    def responder_radius_m(self) -> float:
        return self.radius_m

    @property
    def aed_radius_m(self) -> float:
        return self.radius_m


@dataclass(frozen=True)
class NearestWithRunners(WithinRadius):
    """Policy B (Heartrunner-style): the `cap` nearest within `radius_m`; a third of them (rounded
    down), the best placed, fetch AEDs — roles fixed when the alerts go out."""

    model: ReachModel
    cap: int = 30
    radius_m: float = 1300.0
    runner_every: int = 3
    key: str = "B"
    label: str = "B: 30 nearest ≤ 1.3 km, a third fetch AEDs"

    def circle(self, scene: Scene, estimates: Mapping[str, float]) -> Circle:
        near = [i for i, c in enumerate(scene.responders) if c.distance_m <= self.radius_m][: self.cap]
        aed_indices = [j for j, d in enumerate(scene.aed_distance_m) if d <= self.radius_m]
        runners = best_runners(scene, near, aed_indices, len(near) // self.runner_every, self.model)
        fetching = {i: (scene.aeds[j].aed_id, eta) for i, j, eta in runners}
        etas = scene.etas(self.model)
        alerts = []
        for i in near:
            rid = scene.responders[i].responder_id
            p = estimates.get(rid, 0.0)
            if i in fetching:
                alerts.append(_pending(rid, p, "fetch_aed", fetching[i][0], fetching[i][1]))
            else:
                alerts.append(_pending(rid, p, "cpr", None, float(etas[i])))
        return FixedAlerts(tuple(alerts))


# --- the HartslagNu and Hjerteløber styles ------------------------------------------------------


@dataclass(frozen=True)
class ViaAedWhenOnTheWay:
    """HartslagNu-style: up to `cap` nearest within `radius_m`, aiming at `fetch_share` of them via
    an AED; only someone within `aed_within_m` of an AED whose route via it is at most `detour`
    times the direct one may fetch it (the nearest such people first, each to the AED that brings
    it soonest); everyone else goes direct. Roles fixed when the alerts go out."""

    model: ReachModel
    cap: int = 30
    radius_m: float = 1000.0
    aed_within_m: float = 500.0
    detour: float = 1.05
    fetch_share: float = 2 / 3
    key: str = "hartslagnu"
    label: str = "HartslagNu-style: ≤ 30 within 1 km, via an AED when ≤ 5 % longer"

    @property
    def responder_radius_m(self) -> float:
        return self.radius_m

    @property
    def aed_radius_m(self) -> float:
        return self.radius_m * self.detour  # a via-AED route ≤ detour × direct stays inside this

    def on_the_way(self, scene: Scene, i: int) -> NDArray[np.bool_]:
        """Which AEDs responder `i` may fetch under the rule."""
        d_ra = scene.responder_to_aed_m[i]
        direct = scene.responders[i].distance_m
        return (d_ra <= self.aed_within_m) & (d_ra + np.array(scene.aed_distance_m) <= self.detour * direct)

    def circle(self, scene: Scene, estimates: Mapping[str, float]) -> Circle:
        near = [i for i, c in enumerate(scene.responders) if c.distance_m <= self.radius_m][: self.cap]
        etas = scene.etas(self.model)
        fetch = scene.fetch_etas(self.model) if scene.aeds else None
        quota = round(self.fetch_share * len(near))
        alerts = []
        for i in near:
            rid = scene.responders[i].responder_id
            p = estimates.get(rid, 0.0)
            allowed = self.on_the_way(scene, i) if fetch is not None else np.zeros(0, dtype=bool)
            if quota > 0 and fetch is not None and allowed.any():
                j = int(np.argmin(np.where(allowed, fetch[i], np.inf)))
                alerts.append(_pending(rid, p, "fetch_aed", scene.aeds[j].aed_id, float(fetch[i, j])))
                quota -= 1
            else:
                alerts.append(_pending(rid, p, "cpr", None, float(etas[i])))
        return FixedAlerts(tuple(alerts))


@dataclass(frozen=True)
class FirstAcceptorsFetch(WithinRadius):
    """Hjerteløber-style: the `count` nearest within `radius_m` alerted at once, no role yet; the
    first `fetchers` who accept are each sent for the AED that brings it soonest via them (a different
    one each while there are), the others straight to the patient."""

    model: ReachModel
    count: int = 20
    fetchers: int = 4
    radius_m: float = 1300.0
    key: str = "hjertelober"
    label: str = "Hjerteløber-style: 20 alerted, first 4 acceptors fetch AEDs"

    def circle(self, scene: Scene, estimates: Mapping[str, float]) -> Circle:
        return _FirstAcceptors(self, scene, estimates)


@dataclass(frozen=True)
class _FirstAcceptors(OneBatch):
    policy: FirstAcceptorsFetch
    scene: Scene
    estimates: Mapping[str, float]

    def open(self) -> Reaction:
        near = [c for c in self.scene.responders if c.distance_m <= self.policy.radius_m][: self.policy.count]
        return Reaction(
            tuple(_pending(c.responder_id, self.estimates.get(c.responder_id, 0.0)) for c in near)
        )

    def role(self, now_s: float, sent: Sequence[Sent], responder_id: str) -> RoleChoice:
        scene, model = self.scene, self.policy.model
        i = next(k for k, c in enumerate(scene.responders) if c.responder_id == responder_id)
        direct = RoleChoice("cpr", None, float(scene.etas(model)[i]))
        before = sum(s.status == "accepted" for s in sent if s.responder_id != responder_id)
        in_radius = np.array(scene.aed_distance_m) <= self.policy.aed_radius_m
        if before >= self.policy.fetchers or not in_radius.any():
            return direct
        fetch = np.where(in_radius, scene.fetch_etas(model)[i], np.inf)
        taken = taken_aeds(sent)
        free = np.array([a.aed_id not in taken for a in scene.aeds]) & in_radius
        j = int(np.argmin(np.where(free, fetch, np.inf) if free.any() else fetch))
        return RoleChoice("fetch_aed", scene.aeds[j].aed_id, float(fetch[j]))


# --- ours ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RescueCircle:
    """Ours: the service's own policy core (`dispatch.policy.circle`) with the service's settings.

    The circle starts at `reach_s`; every `interval_s`, if nobody at the current reach is worth
    alerting but someone farther (up to `reach_max_s`) is, the reach grows by `step_s` and the
    newly reachable are topped up — escalation only when the pool runs dry. A person's AEDs are
    those they could bring within the reach, the `aeds_per_person` soonest, among the
    `aeds_considered` open AEDs nearest the patient (the service's `DISPATCH_AEDS_CONSIDERED`).
    """

    model: ReachModel
    rules: CircleRules
    reach_s: float = 300.0
    interval_s: float = 30.0
    step_s: float = 60.0
    reach_max_s: float = 480.0
    aeds_per_person: int = 3
    aeds_considered: int = 30
    key: str = "ours"
    label: str = "ours: chance-sized, roles on accept, phased, stand-down"

    @classmethod
    def from_settings(cls, settings: Any, model: ReachModel) -> RescueCircle:
        return cls(
            model,
            CircleRules.from_settings(settings),
            float(settings.reach_s),
            float(settings.escalation_interval_s),
            float(settings.escalation_step_s),
            float(settings.reach_max_s),
            aeds_considered=int(settings.aeds_considered),
        )

    @property
    def responder_radius_m(self) -> float:
        return self.model.max_distance_for(self.reach_max_s)

    @property
    def aed_radius_m(self) -> float:
        return self.model.max_distance_for(self.reach_max_s - self.model.aed_pickup_s)

    def circle(self, scene: Scene, estimates: Mapping[str, float]) -> Circle:
        reachable = scene._memo(
            (
                "ours",
                _model_key(self.model),
                self.reach_max_s,
                self.aeds_per_person,
                self.aeds_considered,
                id(estimates),
            ),
            lambda: _Reachable.of(
                scene, self.model, estimates, self.reach_max_s, self.aeds_per_person, self.aeds_considered
            ),
        )
        return _Ours(self, reachable)


@dataclass(frozen=True)
class _Reachable:
    """The scene as `Person`s with their ETAs, so each reach is a filter."""

    people: tuple[Person, ...]
    fetch_all: tuple[tuple[Fetch, ...], ...]

    @classmethod
    def of(
        cls,
        scene: Scene,
        model: ReachModel,
        estimates: Mapping[str, float],
        reach_s: float,
        per_person: int,
        considered: int,
    ) -> _Reachable:
        """Everyone who could reach the patient within `reach_s`, with the `per_person` AEDs they
        could bring soonest within it (filtered to a smaller reach, these stay the soonest), among
        the `considered` open AEDs nearest the patient, as the service asks PostGIS for."""
        etas = scene.etas(model)
        fetch = scene.fetch_etas(model)[:, :considered]
        people, fetches = [], []
        for i in np.flatnonzero(etas <= reach_s):
            c = scene.responders[i]
            people.append(
                Person(c.responder_id, estimates.get(c.responder_id, 0.0), float(etas[i]), c.distance_m)
            )
            usable = np.flatnonzero(fetch[i] <= reach_s)
            soonest = usable[np.argsort(fetch[i, usable], kind="stable")[:per_person]]
            fetches.append(tuple(Fetch(scene.aeds[j].aed_id, float(fetch[i, j])) for j in soonest))
        return cls(tuple(people), tuple(fetches))

    def within(self, reach_s: float, per_person: int) -> list[Person]:
        out = []
        for p, fetch in zip(self.people, self.fetch_all, strict=True):
            if p.eta_s <= reach_s:
                mine = tuple(f for f in fetch if f.eta_s <= reach_s)[:per_person]
                out.append(Person(p.responder_id, p.p_accept, p.eta_s, p.distance_m, mine))
        return out


@dataclass
class _Ours:
    policy: RescueCircle
    reachable: _Reachable
    reach_s: float = 0.0
    people: list[Person] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._widen_to(self.policy.reach_s)

    def _widen_to(self, reach_s: float) -> None:
        self.reach_s = reach_s
        self.people = self.reachable.within(reach_s, self.policy.aeds_per_person)

    @property
    def rules(self) -> CircleRules:
        return self.policy.rules

    @property
    def timeout_s(self) -> float | None:
        return self.rules.answer_timeout_s

    @property
    def tick_s(self) -> float | None:
        return self.policy.interval_s

    def _alert(self, people: Sequence[Person]) -> Reaction:
        return Reaction(tuple(_pending(p.responder_id, p.p_accept) for p in people))

    def open(self) -> Reaction:
        return self._alert(top_up([], self.people, 0.0, self.rules))

    def role(self, now_s: float, sent: Sequence[Sent], responder_id: str) -> RoleChoice:
        acceptor = next(p for p in self.people if p.responder_id == responder_id)
        return choose_role(acceptor, sent, self.people, now_s, self.rules)

    def after(self, now_s: float, sent: Sequence[Sent]) -> Reaction:
        cancel = stand_down(sent, self.people, self.rules)
        if cancel:
            return Reaction(cancel=tuple(cancel))
        return self._alert(top_up(sent, self.people, now_s, self.rules))

    def tick(self, now_s: float, sent: Sequence[Sent]) -> Reaction | None:
        if self.reach_s >= self.policy.reach_max_s:
            return None
        widest = self.reachable.within(self.policy.reach_max_s, self.policy.aeds_per_person)
        if enough(sent, widest, self.rules):
            return None  # targets met, or nobody even at the widest reach could bring an AED
        if top_up(sent, self.people, now_s, self.rules):
            return NOTHING  # the pool is not dry: answers and timeouts top it up
        if not top_up(sent, widest, now_s, self.rules):
            return NOTHING  # nobody farther would be alerted either
        self._widen_to(min(self.reach_s + self.policy.step_s, self.policy.reach_max_s))
        return self._alert(top_up(sent, self.people, now_s, self.rules))
