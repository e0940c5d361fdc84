"""The export's rows and their two encodings, CSV and JSON (pure: rows in, text out).

The column names are a contract with volunteer-management systems (service_record/README.md):
never rename one; add new columns at the end. Figures are rounded for people (seconds to the
millisecond, hours to 4 places, points to 2), so a sum of rows may differ from a total by rounding.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from service_record.tally import HOUR_S, PointsRule, ServiceTally

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Member:
    """Who a row is about; an erased responder (`deleted_at` set) keeps only the id and the team."""

    id: uuid.UUID
    external_id: str | None
    name: str | None
    team_path: str | None


class ExportBy(StrEnum):
    responder = "responder"
    team = "team"


class ExportFormat(StrEnum):
    csv = "csv"
    json = "json"


FIGURES = ("on_duty_s", "on_duty_hours", "incidents_attended", "incident_s", "arrivals", "points")
COLUMNS: dict[ExportBy, tuple[str, ...]] = {
    ExportBy.responder: ("month", "responder_id", "external_id", "name", "team_path", *FIGURES),
    ExportBy.team: ("month", "team_path", "responders", *FIGURES),
}


def figures(record: ServiceTally, rule: PointsRule) -> Row:
    """The numbers of a row (also the per-responder endpoint's)."""
    on_duty_s = record.on_duty.total_seconds()
    return {
        "on_duty_s": round(on_duty_s, 3),
        "on_duty_hours": round(on_duty_s / HOUR_S, 4),
        "incidents_attended": record.incidents_attended,
        "incident_s": round(record.incident_time.total_seconds(), 3),
        "arrivals": record.arrivals,
        "points": round(record.points(rule), 2),
    }


def responder_row(month: str, member: Member, record: ServiceTally, rule: PointsRule) -> Row:
    return {
        "month": month,
        "responder_id": str(member.id),
        "external_id": member.external_id,
        "name": member.name,
        "team_path": member.team_path,
        **figures(record, rule),
    }


async def rows_by(
    tallies: AsyncIterable[tuple[str, Member, ServiceTally]], by: ExportBy, rule: PointsRule
) -> AsyncIterator[Row]:
    """Rows per responder as they come, or per team (the responders whose own team it is; no
    roll-up, so rows never count a person twice) once each month is complete."""
    month_now: str | None = None
    teams: dict[str | None, tuple[int, ServiceTally]] = {}

    def team_rows() -> Iterable[Row]:
        for path in sorted(teams, key=lambda p: p or ""):
            people, record = teams[path]
            yield {"month": month_now, "team_path": path, "responders": people, **figures(record, rule)}

    async for month, member, record in tallies:
        if by is ExportBy.responder:
            yield responder_row(month, member, record, rule)
            continue
        if month != month_now:
            for row in team_rows():
                yield row
            month_now, teams = month, {}
        people, total = teams.get(member.team_path, (0, ServiceTally()))
        teams[member.team_path] = (people + 1, total + record)
    for row in team_rows():
        yield row


def csv_line(values: Iterable[Any]) -> str:
    """One CSV record (RFC 4180 quoting, CRLF); None is an empty field."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(["" if v is None else v for v in values])
    return buffer.getvalue()


async def in_pieces(chunks: AsyncIterable[str], size: int = 64 * 1024) -> AsyncIterator[str]:
    """The text in pieces of about `size` characters: a message per row cost the server more than
    the rows themselves (24,000 rows, ~2 s of ASGI messages)."""
    pending: list[str] = []
    held = 0
    async for chunk in chunks:
        pending.append(chunk)
        held += len(chunk)
        if held >= size:
            yield "".join(pending)
            pending, held = [], 0
    if pending:
        yield "".join(pending)


async def as_csv(rows: AsyncIterable[Row], by: ExportBy) -> AsyncIterator[str]:
    columns = COLUMNS[by]
    yield csv_line(columns)
    async for row in rows:
        yield csv_line(row[c] for c in columns)


async def as_json(rows: AsyncIterable[Row], header: Row) -> AsyncIterator[str]:
    """`{...header, "rows": [...]}`, written a row at a time."""
    yield json.dumps(header, ensure_ascii=False)[:-1] + ', "rows": ['
    separator = ""
    async for row in rows:
        yield separator + json.dumps(row, ensure_ascii=False)
        separator = ",\n"
    yield "]}\n"


def json_header(start: datetime, end: datetime, by: ExportBy, timezone: str, rule: PointsRule) -> Row:
    return {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "by": by.value,
        "timezone": timezone,
        "rule": rule.named(),
        "columns": list(COLUMNS[by]),
    }
