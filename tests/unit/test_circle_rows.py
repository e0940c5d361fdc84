"""An incident's alert rows as the dispatch policy reads them (pure: rows built in memory)."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dispatch.circle import sent_of
from dispatch.models import Alert, Incident
from dispatch.policy.circle import Fetch, Person
from dispatch.service import Plan, first_overdue

OPENED = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
AED = uuid.uuid4()


def incident() -> Incident:
    return Incident(id=uuid.uuid4(), created_at=OPENED, reach_s=300.0)


def alert(
    status: str, *, sent_s: float = 5.0, role: str = "undecided", answered_s: float | None = None
) -> Alert:
    at = OPENED + timedelta(seconds=sent_s)
    return Alert(
        id=uuid.uuid4(),
        responder_id=uuid.uuid4(),
        role=role,
        aed_id=AED if role == "fetch_aed" else None,
        eta_s=140.0,
        distance_m=90.0,
        status=status,
        created_at=at,
        updated_at=at,
        answered_at=OPENED + timedelta(seconds=answered_s) if answered_s is not None else None,
    )


@pytest.mark.parametrize(
    ("status", "counted"),
    [
        ("sent", "pending"),
        ("delivered", "pending"),  # a receipt is not an answer
        ("accepted", "accepted"),
        ("en_route", "accepted"),
        ("on_scene", "accepted"),
        ("declined", "declined"),
        ("expired", "expired"),
        ("cancelled", "cancelled"),
    ],
)
def test_every_status_is_counted_as_the_policy_knows_it(status: str, counted: str) -> None:
    assert sent_of(incident(), alert(status), 0.4).status == counted


def test_times_are_seconds_since_the_incident_opened() -> None:
    runner = sent_of(incident(), alert("en_route", sent_s=12.5, role="fetch_aed", answered_s=40.0), 0.3)
    assert runner.sent_at_s == 12.5 and runner.answered_at_s == 40.0
    assert (runner.role, runner.aed_id, runner.eta_s, runner.p_accept) == ("fetch_aed", str(AED), 140.0, 0.3)
    assert runner.arrival_s == 180.0


def test_an_acceptor_not_yet_decided_has_no_role_and_no_arrival() -> None:
    """The row being decided right now: accepted, but its ETA is still the direct one."""
    deciding = sent_of(incident(), alert("accepted", answered_s=20.0), 0.3)
    assert deciding.role is None and deciding.aed_id is None and math.isinf(deciding.eta_s)
    pending = sent_of(incident(), alert("sent"), 0.3)
    assert pending.role is None and pending.answered_at_s is None


def test_the_clock_looks_when_the_next_pending_alert_goes_unanswered() -> None:
    now = OPENED + timedelta(seconds=20)
    rows = [alert("sent", sent_s=0), alert("delivered", sent_s=10), alert("declined", sent_s=15)]
    assert first_overdue(rows, now, 30.0) == OPENED + timedelta(seconds=30)
    assert first_overdue(rows, OPENED + timedelta(seconds=31), 30.0) == OPENED + timedelta(seconds=40)
    assert first_overdue(rows, OPENED + timedelta(seconds=45), 30.0) is None  # all overdue already
    assert first_overdue([alert("accepted")], now, 30.0) is None


def test_coverage_is_the_soonest_help_and_the_soonest_aed() -> None:
    people = [
        Person("a", 0.35, 95.0, 60.0),
        Person("b", 0.35, 130.0, 100.0, (Fetch("x", 210.0), Fetch("y", 250.0))),
        Person("c", 0.35, 160.0, 130.0, (Fetch("x", 190.0),)),
    ]
    assert Plan(people, []).coverage() == {
        "covered": True,
        "fastest_eta_s": 95.0,
        "aed_eta_s": 190.0,
        "positions": "live",
    }
    assert Plan([], [], "unavailable").coverage() == {
        "covered": False,
        "fastest_eta_s": None,
        "aed_eta_s": None,
        "positions": "unavailable",
    }
