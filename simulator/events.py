"""One incident played out in time: alerts go out, answers come back after their delays, people run.

The engine is the same for every policy; a policy is a `Circle` that answers four questions as the
clock runs — whom to alert at the start, which role an acceptor takes (if it was not fixed when the
alert went out), what to do after an answer or an unanswered alert's timeout (alert more, stand
down the rest), and, on its escalation ticks, whether to widen. Alerts are the core's own
`dispatch.policy.circle.Sent` records, so the policy sees exactly what the service would.

Timing, stated once: an alert sent at t is answered at t + the worker's delay (or never); an
acceptor sets off when they accept and reaches the patient (or brings the AED) `eta_s` later, the
reach model's activation counted after the accept (getting going), so arrival = answer time + ETA
for every policy. An alert cancelled before its answer (stand-down) is never answered: that person
does not run. Events after `horizon_s` no longer change anything measured and are not played.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from dispatch.policy.circle import RoleChoice, Sent
from simulator.answers import Answer

Kind = Literal["answer", "timeout", "tick"]


@dataclass(frozen=True, slots=True)
class Reaction:
    """What a policy does at one moment: alerts to send (pending `Sent`s) and alerts to cancel."""

    send: tuple[Sent, ...] = ()
    cancel: tuple[str, ...] = ()


NOTHING = Reaction()


class Circle(Protocol):
    """One policy at one incident (it may keep state: ours widens its reach)."""

    @property
    def timeout_s(self) -> float | None:
        """Seconds after which an unanswered alert is reported to `after` (None: never)."""
        ...

    @property
    def tick_s(self) -> float | None:
        """Seconds between escalation ticks (None: no escalation)."""
        ...

    def open(self) -> Reaction: ...

    def role(self, now_s: float, sent: Sequence[Sent], responder_id: str) -> RoleChoice:
        """The role of an acceptor whose alert went out without one."""
        ...

    def after(self, now_s: float, sent: Sequence[Sent]) -> Reaction:
        """After an answer or a timeout."""
        ...

    def tick(self, now_s: float, sent: Sequence[Sent]) -> Reaction | None:
        """An escalation tick; None: no more ticks."""
        ...


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one policy achieved at one incident (seconds from opening; inf: never)."""

    responder_s: float
    aed_s: float
    alerts: tuple[Sent, ...]
    ran_for_nothing: int

    @property
    def accepted(self) -> frozenset[str]:
        return frozenset(s.responder_id for s in self.alerts if s.status == "accepted")


def ran_for_nothing(sent: Sequence[Sent], wanted: int) -> int:
    """Acceptors who were neither among the first `wanted` to arrive nor the first to bring an AED:
    people who ran but whose arrival changed nothing the targets ask for."""
    yes = sorted((s for s in sent if s.status == "accepted"), key=lambda s: (s.arrival_s, s.responder_id))
    useful = {s.responder_id for s in yes[:wanted]}
    first_aed = next((s for s in yes if s.role == "fetch_aed"), None)
    if first_aed is not None:
        useful.add(first_aed.responder_id)
    return len(yes) - len(useful)


@dataclass
class _Clock:
    """The incident's alerts and the events still to come."""

    answers: Mapping[str, Answer]
    timeout_s: float | None
    alerts: dict[str, Sent] = field(default_factory=dict)
    queue: list[tuple[float, int, Kind, str]] = field(default_factory=list)
    seq: int = 0

    def push(self, at_s: float, kind: Kind, responder_id: str = "") -> None:
        self.seq += 1
        heapq.heappush(self.queue, (at_s, self.seq, kind, responder_id))

    def apply(self, reaction: Reaction, now_s: float) -> None:
        for rid in reaction.cancel:
            if self.alerts[rid].status == "pending":
                self.alerts[rid] = replace(self.alerts[rid], status="cancelled")
        for s in reaction.send:
            if s.responder_id in self.alerts:
                raise ValueError(f"{s.responder_id} alerted twice")
            self.alerts[s.responder_id] = replace(s, sent_at_s=now_s, status="pending")
            answer = self.answers[s.responder_id]
            if answer.answers:
                self.push(now_s + answer.delay_s, "answer", s.responder_id)
            if self.timeout_s is not None:
                self.push(now_s + self.timeout_s, "timeout", s.responder_id)

    @property
    def sent(self) -> list[Sent]:
        return list(self.alerts.values())


def play(circle: Circle, answers: Mapping[str, Answer], *, horizon_s: float, wanted: int) -> Outcome:
    """Run one incident to `horizon_s`: every answer, timeout and tick in time order (ties: in the
    order they were scheduled)."""
    clock = _Clock(answers, circle.timeout_s)
    clock.apply(circle.open(), 0.0)
    if circle.tick_s is not None:
        clock.push(circle.tick_s, "tick")
    while clock.queue and clock.queue[0][0] <= horizon_s:
        now, _, kind, rid = heapq.heappop(clock.queue)
        if kind == "tick":
            reaction = circle.tick(now, clock.sent)
            if reaction is None:
                continue
            clock.apply(reaction, now)
            clock.push(now + (circle.tick_s or math.inf), "tick")
            continue
        alert = clock.alerts[rid]
        if alert.status != "pending":
            continue  # answered already, or stood down before the answer came
        if kind == "answer":
            if answers[rid].accepts:
                if alert.role is None:
                    choice = circle.role(now, clock.sent, rid)
                    alert = replace(alert, role=choice.role, aed_id=choice.aed_id, eta_s=choice.eta_s)
                clock.alerts[rid] = replace(alert, status="accepted", answered_at_s=now)
            else:
                clock.alerts[rid] = replace(alert, status="declined", answered_at_s=now)
        clock.apply(circle.after(now, clock.sent), now)
    sent = clock.sent
    yes = [s for s in sent if s.status == "accepted"]
    return Outcome(
        min((s.arrival_s for s in yes), default=math.inf),
        min((s.arrival_s for s in yes if s.role == "fetch_aed"), default=math.inf),
        tuple(sent),
        ran_for_nothing(sent, wanted),
    )
