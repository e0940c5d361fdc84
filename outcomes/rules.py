"""Whether an outcome record holds together: pure checks on the record as it would be stored.

Facts arrive piecemeal from different people (the dispatcher that evening, the EMS centre weeks
later), so a contradiction is easy to enter and hard to see afterwards in a registry. Each rule
names the field at fault and what it must be; null is "not known" and never contradicts anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from outcomes.schemas import TIMES

CLOCK_SLACK = timedelta(minutes=2)
"""A time "now" on the sender's clock may be a little ahead of ours: so much is not the future."""


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: the field at fault and the rule, as the 422 body names them."""

    field: str
    rule: str


def _times_in_order(record: Mapping[str, Any], opened_at: datetime, now: datetime) -> list[Problem]:
    problems = []
    for name in TIMES:
        at = record.get(name)
        if at is None:
            continue
        if at < opened_at:
            problems.append(
                Problem(name, f"must not be before the incident opened ({opened_at.isoformat()})")
            )
        elif at > now + CLOCK_SLACK:
            problems.append(Problem(name, "must not be in the future"))
    attached, shocked = record.get("aed_attached_at"), record.get("first_shock_at")
    if attached is not None and shocked is not None and shocked < attached:
        problems.append(Problem("first_shock_at", "must not be before aed_attached_at"))
    return problems


# (field, value it has, field it depends on, values that contradict it, rule): "shock_delivered
# true needs aed_attached not false" reads (shock_delivered, True, aed_attached, {False}, ...).
_DEPENDS: tuple[tuple[str, object, str, frozenset[object], str], ...] = (
    ("shock_delivered", True, "aed_attached", frozenset({False}), "true needs aed_attached not false"),
    ("aed_attached_at", ..., "aed_attached", frozenset({False, None}), "needs aed_attached true"),
    ("first_shock_at", ..., "shock_delivered", frozenset({False, None}), "needs shock_delivered true"),
    ("survived_admission", True, "rosc", frozenset({False}), "true needs rosc not false"),
    (
        "survived_discharge",
        True,
        "survived_admission",
        frozenset({False}),
        "true needs survived_admission not false",
    ),
)
"""`...` as the value: any value that is known (not null)."""


def problems(record: Mapping[str, Any], opened_at: datetime, now: datetime) -> list[Problem]:
    """Every rule the record breaks, in a fixed order (none: it may be stored)."""
    found = _times_in_order(record, opened_at, now)
    for name, value, other, contradicting, rule in _DEPENDS:
        have = record.get(name)
        applies = have is not None if value is ... else have == value
        if applies and record.get(other) in contradicting:
            found.append(Problem(name, rule))
    return found


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """The fields whose value an edit changed (a first record: every field it knows)."""
    return [name for name in after if before.get(name) != after[name]]
