"""The programme report through the real service on a scripted week (tests/support/programme_week.py):
every grouping agrees with the hand count, the CSV says what the JSON says, bad parameters are 422s
naming the field, and only planners, admins and coordinators may read it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from programme.figures import COLUMNS
from tests.support.people import bearer
from tests.support.programme_week import ZONE, Played, expected, turn_of_month, week_server
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
FIGURES = (
    "incidents", "responder_5min", "aed_5min", "alerts", "answered", "accepted", "acceptance_rate",
    "median_accept_s", "alerts_per_incident", "ran_for_nothing", "active_responders", "on_duty_hours",
)  # fmt: skip
NOTHING = {
    **dict.fromkeys(FIGURES, 0),
    **dict.fromkeys(
        ("responder_5min", "aed_5min", "acceptance_rate", "median_accept_s", "alerts_per_incident")
    ),
    "on_duty_hours": 0.0,
}


@pytest.fixture(scope="module")
def week(
    app_env: dict[str, str], store_env: dict[str, str], admin_headers: dict[str, str]
) -> Iterator[tuple[ServerProcess, Played]]:
    with week_server(app_env, store_env, admin_headers) as played:
        yield played


@pytest.fixture(scope="module")
def planner(week: tuple[ServerProcess, Played], admin_headers: dict[str, str]) -> Iterator[httpx.Client]:
    server, _ = week
    with httpx.Client(base_url=server.url, timeout=30) as http:
        token = http.post("/v1/tokens", json={"role": "planner", "label": "plan"}, headers=admin_headers)
        http.headers.update(bearer(token.json()["token"]))
        yield http


def window(played: Played, **more: str) -> dict[str, str]:
    start, end = played.window
    return {"from": start.isoformat(), "to": end.isoformat(), **more}


def figures(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in FIGURES}


@pytest.mark.parametrize("by", ["district", "street", "team", "month"])
def test_every_grouping_agrees_with_the_hand_count(by: str, week, planner: httpx.Client) -> None:
    _, played = week
    r = planner.get("/v1/reports/programme", params=window(played, by=by))
    assert r.status_code == 200, r.text
    report = r.json()
    hand = expected(by, played)
    keys = [row["key"] for row in report["rows"]]
    if by == "district":
        assert keys == ["East", "West", "outside"]
    elif by == "street":
        assert keys == ["East/North", "East/South", "West/North", "West/South", "outside"]
    elif by == "team":
        assert keys == [*sorted(k for k in hand if k != "outside"), "outside"]
    else:
        start, end = played.window
        days = [start + timedelta(days=d) for d in range((end - start).days)]
        assert keys == sorted({d.strftime("%Y-%m") for d in days})
    assert set(hand) <= set(keys), (sorted(hand), keys)
    for row in report["rows"]:
        assert figures(row) == hand.get(row["key"], NOTHING), row["key"]
    assert figures(report["total"]) == expected("total", played)["total"]
    assert report["total"]["key"] == "total" and report["by"] == by and report["time_zone"] == "Asia/Shanghai"


def test_the_districts_by_hand(week, planner: httpx.Client) -> None:
    """The hand count written out. West: I1 (help at 240 s with an AED), I2 (late, 420 s), I3 (the
    responder was still on the way when it closed); East: I4 (a decline, an expiry), I5 (280 s),
    I6 (AED at 330 s: late); outside: I7 (100 s). Duty: 8-hour shifts by team, w1's 3 h across the
    window's start, e1's open shift (2 h), e2's shift before the window not counted."""
    _, played = week
    rows = {
        row["key"]: row for row in planner.get("/v1/reports/programme", params=window(played)).json()["rows"]
    }
    west, east, outside = rows["West"], rows["East"], rows["outside"]
    assert (west["name"], west["name_zh"], east["name_zh"]) == ("West", "西区", "东区")
    assert figures(west) == {
        "incidents": 3, "responder_5min": 0.3333, "aed_5min": 0.3333, "alerts": 7, "answered": 4,
        "accepted": 3, "acceptance_rate": 0.75, "median_accept_s": 45.0, "alerts_per_incident": 2.33,
        "ran_for_nothing": 1, "active_responders": 6, "on_duty_hours": 51.0,
    }  # fmt: skip
    assert figures(east) == {
        "incidents": 3, "responder_5min": 0.3333, "aed_5min": 0.0, "alerts": 6, "answered": 4,
        "accepted": 2, "acceptance_rate": 0.5, "median_accept_s": 57.5, "alerts_per_incident": 2.0,
        "ran_for_nothing": 0, "active_responders": 6, "on_duty_hours": 50.0,
    }  # fmt: skip
    assert figures(outside) == {
        "incidents": 1, "responder_5min": 1.0, "aed_5min": 0.0, "alerts": 1, "answered": 1,
        "accepted": 1, "acceptance_rate": 1.0, "median_accept_s": 15.0, "alerts_per_incident": 1.0,
        "ran_for_nothing": 0, "active_responders": 3, "on_duty_hours": 24.0,
    }  # fmt: skip


def test_an_empty_window_has_null_shares_not_zeros(week, planner: httpx.Client) -> None:
    _, played = week
    start = played.window[0] - timedelta(days=60)
    r = planner.get(
        "/v1/reports/programme",
        params={"from": start.isoformat(), "to": (start + timedelta(days=7)).isoformat()},
    )
    assert r.status_code == 200, r.text
    for row in [*r.json()["rows"], r.json()["total"]]:
        assert row["incidents"] == 0 and row["responder_5min"] is None and row["acceptance_rate"] is None


@pytest.mark.parametrize("by", ["district", "street", "team", "month"])
def test_the_csv_says_what_the_json_says(by: str, week, planner: httpx.Client) -> None:
    _, played = week
    as_json = planner.get("/v1/reports/programme", params=window(played, by=by)).json()
    r = planner.get("/v1/reports/programme", params=window(played, by=by, format="csv"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert f"programme-{by}-" in r.headers["content-disposition"]
    lines = list(csv.reader(io.StringIO(r.text)))
    assert tuple(lines[0]) == COLUMNS
    rows = [*as_json["rows"], as_json["total"]]
    assert len(lines) - 1 == len(rows)
    for line, row in zip(lines[1:], rows, strict=True):
        assert line == ["" if row[c] is None else str(row[c]) for c in COLUMNS]


def test_naive_times_and_dates_are_on_the_city_clock(week, planner: httpx.Client) -> None:
    """`from=2026-11-23` is Shenzhen's midnight: the same report as with the offset written out."""
    _, played = week
    start, end = played.window
    naive = {"from": start.date().isoformat(), "to": end.replace(tzinfo=None).isoformat()}
    assert (
        planner.get("/v1/reports/programme", params=naive).json()["rows"]
        == (planner.get("/v1/reports/programme", params=window(played)).json()["rows"])
    )


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"to": "2026-11-01"}, "from"),
        ({"from": "2026-11-01"}, "to"),
        ({"from": "last week", "to": "2026-11-01"}, "from"),
        ({"from": "2026-11-01", "to": "2026-10-01"}, "to"),
        ({"from": "2026-11-01", "to": "2026-11-01"}, "to"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "to"),
        ({"from": "9999-12-01", "to": "9999-12-31", "by": "month"}, "to"),
        ({"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-02"}, "from"),
        ({"from": "2026-10-01", "to": "2026-11-01", "by": "week"}, "by"),
        ({"from": "2026-10-01", "to": "2026-11-01", "format": "xlsx"}, "format"),
    ],
)
def test_bad_parameters_are_422_naming_the_field(params, field: str, planner: httpx.Client) -> None:
    r = planner.get("/v1/reports/programme", params=params)
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == [field], r.json()


@pytest.mark.parametrize(("role", "status"), [("coordinator", 200), ("admin", 200), ("dispatcher", 403)])
def test_who_may_read_it(role: str, status: int, week, admin_headers: dict[str, str]) -> None:
    server, played = week
    with httpx.Client(base_url=server.url, timeout=30) as http:
        token = http.post("/v1/tokens", json={"role": role, "label": role}, headers=admin_headers).json()[
            "token"
        ]
        r = http.get("/v1/reports/programme", params=window(played), headers=bearer(token))
        assert r.status_code == status, r.text
        assert http.get("/v1/reports/programme", params=window(played)).status_code == 401


def test_months_split_duty_at_the_turn_of_a_month(week, planner: httpx.Client) -> None:
    """By month over the week and the 45 days before it: o2's night shift across the turn of a month
    counts 2 h in the month it began and 3 h in the next, as the hand count says; every month of the
    window is a row (those without incidents with null shares)."""
    _, played = week
    start, end = played.window
    first = start - timedelta(days=45)
    params = {"from": first.isoformat(), "to": end.isoformat(), "by": "month"}
    report = planner.get("/v1/reports/programme", params=params).json()
    hand = expected("month", played, (first, end))
    assert report["rows"][0]["key"] == first.strftime("%Y-%m")
    for row in report["rows"]:
        assert figures(row) == hand.get(row["key"], NOTHING), row["key"]
    assert figures(report["total"]) == expected("total", played, (first, end))["total"]
    turn = turn_of_month(start)
    before, after = (turn - timedelta(hours=1)).strftime("%Y-%m"), turn.strftime("%Y-%m")
    assert before != after and {before, after} <= set(hand)
    assert datetime.fromisoformat(report["from"]).utcoffset() == ZONE.utcoffset(first.replace(tzinfo=None))
