"""The export's encodings (service_record.export): CSV and JSON carry the same rows, names with
commas, quotes and Chinese survive, erased people have empty fields, and team rows add up their
responders' rows month by month."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service_record.export import (
    COLUMNS,
    ExportBy,
    Member,
    Row,
    as_csv,
    as_json,
    json_header,
    rows_by,
)
from service_record.tally import PointsRule, ServiceTally

RULE = PointsRule(per_duty_hour=1.0, per_incident=10.0, per_arrival=5.0)
FUTIAN, NANSHAN = "shenzhen/futian/shatou", "shenzhen/nanshan"
ANNA = Member(uuid.UUID(int=1), "SZ-1", 'Wang "Anna", 王\nsecond line', FUTIAN)
BO = Member(uuid.UUID(int=2), "SZ-2", "Bo", FUTIAN)
GONE = Member(uuid.UUID(int=3), None, None, NANSHAN)
LONER = Member(uuid.UUID(int=4), "SZ-4", "Loner", None)


def served(hours: float, attended: int = 0, arrivals: int = 0, incident_min: float = 0) -> ServiceTally:
    return ServiceTally(timedelta(hours=hours), attended, timedelta(minutes=incident_min), arrivals)


TALLIES = [
    ("2026-10", ANNA, served(2, 1, 1, 16)),
    ("2026-10", BO, served(0.75)),
    ("2026-10", GONE, served(10)),
    ("2026-11", ANNA, served(1.5)),
    ("2026-11", BO, served(24, 2, 0, 30)),
    ("2026-11", LONER, served(1)),
]


async def stream(items: Iterable[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


async def collect(chunks: AsyncIterator[str]) -> str:
    return "".join([chunk async for chunk in chunks])


def rows(by: ExportBy) -> list[Row]:
    async def run() -> list[Row]:
        return [row async for row in rows_by(stream(TALLIES), by, RULE)]

    return asyncio.run(run())


def typed(record: dict[str, str]) -> Row:
    numbers = {"on_duty_s", "on_duty_hours", "incident_s", "points"}
    counts = {"incidents_attended", "arrivals", "responders"}
    return {
        k: None if v == "" else int(v) if k in counts else float(v) if k in numbers else v
        for k, v in record.items()
    }


@pytest.mark.parametrize("by", list(ExportBy))
def test_csv_and_json_carry_the_same_rows(by: ExportBy) -> None:
    expected = rows(by)
    text = asyncio.run(collect(as_csv(stream(expected), by)))
    assert text.splitlines()[0].split(",") == list(COLUMNS[by])
    assert [typed(r) for r in csv.DictReader(io.StringIO(text))] == expected
    start = datetime(2026, 10, 1, tzinfo=UTC)
    header = json_header(start, start + timedelta(days=40), by, "Asia/Shanghai", RULE)
    document = json.loads(asyncio.run(collect(as_json(stream(expected), header))))
    assert document["rows"] == expected and document["columns"] == list(COLUMNS[by])
    assert document["rule"] == {
        "points_per_duty_hour": 1.0,
        "points_per_incident": 10.0,
        "points_per_arrival": 5.0,
    }


def test_an_empty_export_is_still_a_header_and_a_document() -> None:
    assert (
        asyncio.run(collect(as_csv(stream([]), ExportBy.team))) == ",".join(COLUMNS[ExportBy.team]) + "\r\n"
    )
    header = json_header(
        datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC), ExportBy.team, "UTC", RULE
    )
    assert json.loads(asyncio.run(collect(as_json(stream([]), header))))["rows"] == []


def test_responder_rows_name_people_except_the_erased() -> None:
    by_id = {(r["month"], r["responder_id"]): r for r in rows(ExportBy.responder)}
    anna = by_id[("2026-10", str(ANNA.id))]
    assert anna == {
        "month": "2026-10",
        "responder_id": str(ANNA.id),
        "external_id": "SZ-1",
        "name": ANNA.name,
        "team_path": FUTIAN,
        "on_duty_s": 7200.0,
        "on_duty_hours": 2.0,
        "incidents_attended": 1,
        "incident_s": 960.0,
        "arrivals": 1,
        "points": 2 + 10 + 5,
    }
    gone = by_id[("2026-10", str(GONE.id))]
    assert (gone["name"], gone["external_id"], gone["team_path"]) == (None, None, NANSHAN)


def test_team_rows_add_up_their_responders_month_by_month() -> None:
    teams = rows(ExportBy.team)
    assert [(t["month"], t["team_path"], t["responders"]) for t in teams] == [
        ("2026-10", FUTIAN, 2),
        ("2026-10", NANSHAN, 1),
        ("2026-11", None, 1),
        ("2026-11", FUTIAN, 2),
    ]
    futian_nov = teams[3]
    assert futian_nov["on_duty_s"] == (1.5 + 24) * 3600
    assert futian_nov["incidents_attended"] == 2 and futian_nov["incident_s"] == 1800.0
    assert futian_nov["points"] == pytest.approx(25.5 + 20)
