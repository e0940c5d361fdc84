"""The dispatch policy: whom to alert next, which role an acceptor takes, and when to stand down.

One incident's circle is plain data — the people in reach (`Person`: how soon they reach the
patient, which AEDs they could bring and how soon, how likely they are to accept) and the alerts
already out (`Sent`: pending, accepted with a role, declined, …). Three decisions are made on it,
as pure functions, by the service (on opening, on every answer, on the clock), and by the
simulator, which replays thousands of incidents through exactly these functions:

* `top_up` — size the batch by the **chance of success**: alert until the chance that at least
  the target number accept reaches `level`, for the AED (among people who could bring one) and
  for help overall, using each person's own acceptance probability, never past the cap. An alert
  unanswered after `answer_timeout_s` counts for little (`late_weight`), so a decline or a silence
  calls the replacement at once: that is phased alerting.
* `choose_role` — roles are decided **as people accept**: each acceptor takes the role (straight
  to the patient, or via one of the AEDs nobody accepted to bring yet) that minimises the expected
  time to defibrillation plus `cpr_weight` × the expected time to CPR, given who has accepted and
  who may still accept. Pending people count with their chance of accepting.
* `stand_down` — once enough have accepted, the alerts still pending are cancelled
  (`enough_responders`): fewer people run for nothing. Only someone who could still bring an AED
  sooner than the one on its way is kept a little longer.

Times are seconds on one clock (the service: since the incident opened). ETAs count from when the
person sets off, activation included (`geo.reach.ReachModel`).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from dispatch.policy.chance import at_least, expected_first

Status = Literal["pending", "accepted", "declined", "expired", "cancelled"]
Role = Literal["cpr", "fetch_aed"]
STAND_DOWN_REASON = "enough_responders"


@dataclass(frozen=True, slots=True)
class Fetch:
    """A way for one person to bring one AED: responder → AED → patient, pick-up included."""

    aed_id: str
    eta_s: float


@dataclass(frozen=True, slots=True)
class Person:
    """Someone dispatchable in reach. `fetch` holds the AEDs they could bring within the reach,
    soonest first."""

    responder_id: str
    p_accept: float
    eta_s: float
    distance_m: float
    fetch: tuple[Fetch, ...] = ()

    @property
    def best_fetch_s(self) -> float:
        return self.fetch[0].eta_s if self.fetch else math.inf


@dataclass(frozen=True, slots=True)
class Sent:
    """An alert out. Accepted ones carry their role, AED and ETA (from `answered_at_s`)."""

    responder_id: str
    sent_at_s: float
    status: Status
    p_accept: float
    role: Role | None = None
    aed_id: str | None = None
    eta_s: float = math.inf
    answered_at_s: float | None = None

    @property
    def arrival_s(self) -> float:
        """When an accepted responder reaches the patient (with the AED, for a runner)."""
        if self.status != "accepted" or self.answered_at_s is None:
            return math.inf
        return self.answered_at_s + self.eta_s


@dataclass(frozen=True, slots=True)
class CircleRules:
    """The policy's knobs (the service's come from settings; the simulator varies them)."""

    target_aed: int = 1
    target_cpr: int = 1
    level: float = 0.9
    alert_cap: int = 20
    answer_timeout_s: float = 30.0
    late_weight: float = 0.25
    cpr_weight: float = 0.5
    horizon_s: float = 900.0

    @property
    def target_total(self) -> int:
        return self.target_aed + self.target_cpr

    @classmethod
    def from_settings(cls, settings: Any) -> CircleRules:
        return cls(
            target_aed=int(settings.target_aed),
            target_cpr=int(settings.target_cpr),
            level=float(settings.success_level),
            alert_cap=int(settings.alert_cap),
            answer_timeout_s=float(settings.answer_timeout_s),
            late_weight=float(settings.late_answer_weight),
            cpr_weight=float(settings.cpr_weight),
            horizon_s=float(settings.ems_defib_s),
        )


@dataclass(frozen=True, slots=True)
class RoleChoice:
    role: Role
    aed_id: str | None
    eta_s: float


# --- reading the circle ------------------------------------------------------------------------


def accepted(sent: Iterable[Sent]) -> list[Sent]:
    return [s for s in sent if s.status == "accepted"]


def pending(sent: Iterable[Sent]) -> list[Sent]:
    return [s for s in sent if s.status == "pending"]


def taken_aeds(sent: Iterable[Sent]) -> set[str]:
    """AEDs an accepted runner is bringing: nobody else is sent for them."""
    return {s.aed_id for s in sent if s.status == "accepted" and s.aed_id is not None}


def _weight(s: Sent, now_s: float, rules: CircleRules) -> float:
    """What a pending alert is still worth: its chance, or a fraction of it once overdue."""
    late = now_s - s.sent_at_s >= rules.answer_timeout_s
    return s.p_accept * (rules.late_weight if late else 1.0)


def _fetches(person: Person | None, taken: Collection[str]) -> list[Fetch]:
    return [f for f in person.fetch if f.aed_id not in taken] if person is not None else []


def enough(sent: Sequence[Sent], people: Sequence[Person], rules: CircleRules) -> bool:
    """Targets met: enough accepted overall, and an AED coming (or none anybody here could bring)."""
    yes = accepted(sent)
    if len(yes) < rules.target_total:
        return False
    runners = sum(s.role == "fetch_aed" for s in yes)
    if runners >= rules.target_aed:
        return True
    taken = taken_aeds(sent)
    answered = {s.responder_id for s in sent if s.status != "pending"}
    return not any(_fetches(p, taken) for p in people if p.responder_id not in answered)


# --- the three decisions -----------------------------------------------------------------------


def top_up(sent: Sequence[Sent], people: Sequence[Person], now_s: float, rules: CircleRules) -> list[Person]:
    """Whom to alert now, in order: until the chance that at least the missing number accept
    reaches `rules.level`, first for the AED (people who could bring one, soonest AED first), then
    for help overall (soonest first); nobody already alerted, never past the cap."""
    if enough(sent, people, rules):
        return []
    room = rules.alert_cap - len(sent)
    if room <= 0:
        return []
    by_id = {p.responder_id: p for p in people}
    yes = accepted(sent)
    taken = taken_aeds(sent)
    need_aed = max(0, rules.target_aed - sum(s.role == "fetch_aed" for s in yes))
    need_total = max(0, rules.target_total - len(yes))
    waiting = pending(sent)
    aed_chances = [_weight(s, now_s, rules) for s in waiting if _fetches(by_id.get(s.responder_id), taken)]
    all_chances = [_weight(s, now_s, rules) for s in waiting]
    alerted = {s.responder_id for s in sent}
    pool = [p for p in people if p.responder_id not in alerted]
    runners = sorted(
        (p for p in pool if _fetches(p, taken)), key=lambda p: (_fetches(p, taken)[0].eta_s, p.responder_id)
    )
    nearest = sorted(pool, key=lambda p: (p.eta_s, p.responder_id))
    chosen: list[Person] = []
    picked: set[str] = set()

    def next_of(queue: list[Person]) -> Person | None:
        while queue and queue[0].responder_id in picked:
            queue.pop(0)
        return queue.pop(0) if queue else None

    while len(chosen) < room:
        aed_short = need_aed > 0 and at_least(aed_chances, need_aed) < rules.level
        person = next_of(runners) if aed_short else None
        if person is None:
            if at_least(all_chances, need_total) >= rules.level:
                break
            person = next_of(nearest)
            if person is None:
                break
        chosen.append(person)
        picked.add(person.responder_id)
        all_chances.append(person.p_accept)
        if _fetches(person, taken):
            aed_chances.append(person.p_accept)
    return chosen


def choose_role(
    acceptor: Person, sent: Sequence[Sent], people: Sequence[Person], now_s: float, rules: CircleRules
) -> RoleChoice:
    """The acceptor's role: straight to the patient, or via a free AED — whichever gives the least
    expected time to defibrillation + `cpr_weight` × expected time to CPR, counting those already
    on their way as certain and those still pending with their (overdue-weighted) chances."""
    others = [s for s in sent if s.responder_id != acceptor.responder_id]
    yes = accepted(others)
    taken = taken_aeds(others)
    cpr_fixed = min((s.arrival_s for s in yes), default=math.inf)
    aed_fixed = min((s.arrival_s for s in yes if s.role == "fetch_aed"), default=math.inf)
    by_id = {p.responder_id: p for p in people}
    maybe = [
        (by_id[s.responder_id], _weight(s, now_s, rules)) for s in pending(others) if s.responder_id in by_id
    ]
    options = [RoleChoice("cpr", None, acceptor.eta_s)]
    options += [RoleChoice("fetch_aed", f.aed_id, f.eta_s) for f in _fetches(acceptor, taken)]

    def cost(option: RoleChoice) -> float:
        arrive = now_s + option.eta_s
        busy = taken | ({option.aed_id} if option.aed_id else set())
        cpr = min(cpr_fixed, arrive, now_s + rules.horizon_s)
        aed = min(aed_fixed, arrive if option.role == "fetch_aed" else math.inf, now_s + rules.horizon_s)
        aed_maybe = [(now_s + f[0].eta_s, w) for p, w in maybe if (f := _fetches(p, busy))]
        cpr_maybe = [(now_s + p.eta_s, w) for p, w in maybe]
        return expected_first(aed, aed_maybe) + rules.cpr_weight * expected_first(cpr, cpr_maybe)

    return min(options, key=cost)  # ties: the first, straight to the patient


def stand_down(sent: Sequence[Sent], people: Sequence[Person], rules: CircleRules) -> list[str]:
    """Responders whose alerts are to be cancelled now: once enough accepted, everyone still pending
    except those who, accepting at this moment, could still bring a free AED sooner than the one
    already on its way — cancelling them would cost defibrillation time whenever the runner is far.
    They are stood down at the first answer after which they no longer could ("this moment" is the
    latest answer, the event stand-down follows)."""
    if not enough(sent, people, rules):
        return []
    now_s = max((s.answered_at_s for s in sent if s.answered_at_s is not None), default=0.0)
    aed_at = min((s.arrival_s for s in accepted(sent) if s.role == "fetch_aed"), default=math.inf)
    taken = taken_aeds(sent)
    by_id = {p.responder_id: p for p in people}

    def could_beat(s: Sent) -> bool:
        fetch = _fetches(by_id.get(s.responder_id), taken)
        return bool(fetch) and now_s + fetch[0].eta_s < aed_at

    return [s.responder_id for s in pending(sent) if not could_beat(s)]


def with_answer(sent: Sequence[Sent], responder_id: str, **change: Any) -> list[Sent]:
    """The alerts with one of them changed (an answer, a role): for callers replaying a circle."""
    return [replace(s, **change) if s.responder_id == responder_id else s for s in sent]
