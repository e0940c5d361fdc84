"""Reading AED registries as published: CSV with any column names, GeoJSON, OpenStreetMap tags.

Pure code: text in, `AedRecord`s and per-row errors out. A bad row never stops an import; it is
reported by line (CSV, counting the header as line 1) or feature number (GeoJSON) with the field and
the rule, and every good row is kept. Coordinates are converted to WGS-84 here, once, from the
source's `crs`, so nothing downstream ever sees GCJ-02 or BD-09.
"""

from __future__ import annotations

import csv
import io
import json
import math
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from aed_registry.models import AED_ACCESS, AED_STATUSES
from aed_registry.opening_hours import OpeningHoursError, parse_opening_hours
from core.inputs import NUL_RULE, nul_problem
from geo.crs import Crs, to_wgs84
from geo.distance import haversine_m
from geo.validation import check_lat_lng

RECORD_FIELDS = (
    "external_id", "name", "address", "location_detail", "opening_hours", "access", "status",
    "contact", "source", "last_checked",
)  # fmt: skip
# Column names tried (case-insensitively) when the caller maps nothing: ours, OSM keys, Chinese.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "lat": ("lat", "latitude", "y", "纬度"),
    "lng": ("lng", "lon", "long", "longitude", "x", "经度"),
    "external_id": ("external_id", "ref", "id", "编号"),
    "name": ("name", "名称"),
    "address": ("address", "addr:full", "地址"),
    "location_detail": ("location_detail", "defibrillator:location", "具体位置"),
    "opening_hours": ("opening_hours", "开放时间"),
    "access": ("access",),
    "status": ("status",),
    "contact": ("contact", "contact:phone", "phone", "operator", "联系人"),
    "source": ("source",),
    "last_checked": ("last_checked", "check_date", "survey:date"),
}
# OpenStreetMap `access` values mapped onto ours.
ACCESS_ALIASES = {"yes": "public", "permissive": "public", "no": "private", "permit": "private"}
DEFAULT_NAME = "AED"


class ImportFileError(ValueError):
    """The file as a whole cannot be read (not CSV/GeoJSON, or a mapped column is absent)."""


@dataclass(frozen=True, slots=True)
class AedRecord:
    """One AED as an import row or an edit states it; None means "not given" (keep what is stored)."""

    line: int
    lat: float | None = None
    lng: float | None = None
    external_id: str | None = None
    name: str | None = None
    address: str | None = None
    location_detail: str | None = None
    opening_hours: str | None = None
    access: str | None = None
    status: str | None = None
    contact: str | None = None
    source: str | None = None
    last_checked: datetime | None = None

    def given(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in RECORD_FIELDS if getattr(self, k) is not None}

    def with_source(self, source: str) -> AedRecord:
        return replace(self, source=source)


@dataclass(frozen=True, slots=True)
class RowError:
    """A row left out (or, for `hours_flagged`, kept with a warning): where, which field, which rule."""

    line: int
    field: str
    rule: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A row superseded by a later row of the same file (same external_id, or same name within 10 m)."""

    line: int
    superseded_by: int
    key: str


@dataclass
class ImportReport:
    """What an import read and did; `records` are the good rows, the counts fill in when written."""

    rows: int = 0
    records: list[AedRecord] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    hours_flagged: list[RowError] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0


@dataclass(frozen=True, slots=True)
class ColumnMapping:
    """Which CSV column holds each field; unmapped fields fall back to `DEFAULT_COLUMNS`."""

    columns: Mapping[str, str] = field(default_factory=dict)  # field name ("lat", "name", ...) -> column

    @classmethod
    def parse(cls, items: Iterable[str]) -> ColumnMapping:
        """From `field:Column` strings (the `map=` query parameter and the CLI's `--map`)."""
        columns: dict[str, str] = {}
        for item in items:
            name, sep, column = item.partition(":")
            if not sep or not column.strip():
                raise ImportFileError(f"map: '{item}' must look like field:Column Name")
            if name.strip() not in DEFAULT_COLUMNS:
                raise ImportFileError(f"map: unknown field '{name}'; one of {', '.join(DEFAULT_COLUMNS)}")
            columns[name.strip()] = column.strip()
        return cls(columns)

    def resolve(self, header: list[str]) -> dict[str, str]:
        """field -> the header's column for it; a mapped column missing from the header is an error."""
        lowered = {h.strip().lower(): h for h in header}
        out: dict[str, str] = {}
        for name, candidates in DEFAULT_COLUMNS.items():
            if name in self.columns:
                wanted = self.columns[name]
                if wanted.strip().lower() not in lowered:
                    raise ImportFileError(f"map: column '{wanted}' for {name} is not in the header")
                out[name] = lowered[wanted.strip().lower()]
            else:
                hit = next((lowered[c] for c in candidates if c in lowered), None)
                if hit is not None and hit not in out.values():
                    out[name] = hit
        for needed in ("lat", "lng"):
            if needed not in out:
                raise ImportFileError(f"{needed}_col: no {needed} column found; map one with {needed}:Column")
        return out


def parse_csv(
    data: str, *, crs: Crs = Crs.wgs84, mapping: ColumnMapping | None = None, delimiter: str = ",",
    on_row: Callable[[int], None] | None = None,
) -> ImportReport:  # fmt: skip
    """Read a CSV registry; `crs` is the datum of its coordinates."""
    reader = csv.DictReader(io.StringIO(data.lstrip("\ufeff")), delimiter=delimiter)
    if not reader.fieldnames:
        raise ImportFileError("file: empty CSV, no header row")
    columns = (mapping or ColumnMapping()).resolve(list(reader.fieldnames))
    report = ImportReport()
    line = reader.line_num
    for raw in reader:
        start, line = line + 1, reader.line_num
        report.rows += 1
        values = {name: raw.get(column) for name, column in columns.items()}
        _add(report, start, values, crs)
        if on_row is not None:
            on_row(report.rows)
    return report


def parse_geojson(data: str | bytes, *, crs: Crs = Crs.wgs84) -> ImportReport:
    """Read a FeatureCollection of Points; properties use our field names or the OSM keys."""
    try:
        doc = json.loads(data)
    except json.JSONDecodeError as exc:
        raise ImportFileError(f"file: not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise ImportFileError("file: GeoJSON must be a FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise ImportFileError("features: must be a list")
    report = ImportReport()
    for number, feature in enumerate(features, start=1):
        report.rows += 1
        values = _feature_values(feature)
        if isinstance(values, RowError):
            report.errors.append(replace(values, line=number))
        else:
            _add(report, number, values, crs)
    return report


def _feature_values(feature: Any) -> dict[str, Any] | RowError:
    if not isinstance(feature, dict):
        return RowError(0, "feature", "must be a GeoJSON Feature object")
    geometry, props = feature.get("geometry") or {}, feature.get("properties") or {}
    coords = geometry.get("coordinates") if isinstance(geometry, dict) else None
    if not isinstance(geometry, dict) or geometry.get("type") != "Point" or not isinstance(coords, list):
        return RowError(0, "geometry", "must be a Point")
    if len(coords) < 2:
        return RowError(0, "geometry.coordinates", "must be [lng, lat]")
    emergency = props.get("emergency")
    if emergency is not None and emergency != "defibrillator":
        return RowError(0, "emergency", f"must be 'defibrillator', got '{emergency}'")
    lowered = {str(k).lower(): v for k, v in props.items()}
    values: dict[str, Any] = {"lng": coords[0], "lat": coords[1]}
    for name in RECORD_FIELDS:
        hit = next((lowered[c] for c in DEFAULT_COLUMNS[name] if lowered.get(c) not in (None, "")), None)
        values[name] = hit
    if values["address"] is None and lowered.get("addr:street"):
        values["address"] = " ".join(
            str(lowered[k]) for k in ("addr:street", "addr:housenumber") if lowered.get(k)
        )
    return values


def _add(report: ImportReport, line: int, values: Mapping[str, Any], crs: Crs) -> None:
    """Validate one row's values and append a record or an error."""
    try:
        record = build_record(line, values, crs)
    except RowProblem as problem:
        report.errors.append(RowError(line, problem.field, problem.rule))
        return
    if record.opening_hours is not None:
        reason = hours_problem(record.opening_hours)
        if reason is not None:
            report.hours_flagged.append(
                RowError(line, "opening_hours", f"kept as written, unknown: {reason}")
            )
    report.records.append(record)


class RowProblem(ValueError):
    def __init__(self, field_name: str, rule: str) -> None:
        super().__init__(f"{field_name}: {rule}")
        self.field, self.rule = field_name, rule


def build_record(line: int, values: Mapping[str, Any], crs: Crs) -> AedRecord:
    """One validated record in WGS-84; raises `RowProblem` naming the field and the rule."""
    lat, lng = _coordinate(values.get("lat"), "lat"), _coordinate(values.get("lng"), "lng")
    try:
        check_lat_lng(lat, lng)
    except ValueError as exc:
        name, _, rule = str(exc).partition(": ")
        raise RowProblem(name, rule) from exc
    lat, lng = to_wgs84(lat, lng, crs)
    text = {k: _text(values.get(k)) for k in RECORD_FIELDS}
    if (name := nul_problem(text)) is not None:
        raise RowProblem(name, NUL_RULE)
    access = text["access"]
    if access is not None:
        access = ACCESS_ALIASES.get(access.lower(), access.lower())
        if access not in AED_ACCESS:
            raise RowProblem("access", f"must be one of {', '.join(AED_ACCESS)}")
    status = text["status"]
    if status is not None and status.lower() not in AED_STATUSES:
        raise RowProblem("status", f"must be one of {', '.join(AED_STATUSES)}")
    plain = {k: text[k] for k in ("external_id", "name", "address", "location_detail", "opening_hours")}
    return AedRecord(
        line=line,
        lat=lat,
        lng=lng,
        **plain,
        access=access,
        status=status.lower() if status else None,
        contact=text["contact"],
        source=text["source"],
        last_checked=_when(text["last_checked"]),
    )


@lru_cache(maxsize=8192)
def hours_problem(opening_hours: str) -> str | None:
    """Why `opening_hours` cannot be evaluated, or None when it can."""
    try:
        parse_opening_hours(opening_hours)
    except OpeningHoursError as exc:
        return str(exc)[:300]
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    out = str(value).strip()
    return out or None


def _coordinate(value: Any, name: str) -> float:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise RowProblem(name, "required")
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise RowProblem(name, f"must be a number, got '{value}'") from exc
    if not math.isfinite(number):
        raise RowProblem(name, "must be a finite number")
    return number


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RowProblem("last_checked", f"must be an ISO date or date-time, got '{value}'") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def dedupe_records(records: list[AedRecord], within_m: float) -> tuple[list[AedRecord], list[Duplicate]]:
    """Collapse repeats inside one file onto the last occurrence (a re-import within the import)."""
    last_by_id: dict[str, int] = {}
    grid: dict[tuple[str, int, int], list[int]] = {}
    superseded: dict[int, tuple[int, str]] = {}
    cell = 0.001  # ~100 m of latitude: a 10 m match is always in the same or a neighbouring cell
    for i, r in enumerate(records):
        assert r.lat is not None and r.lng is not None
        if r.external_id:
            if r.external_id in last_by_id:
                superseded[last_by_id[r.external_id]] = (i, f"external_id {r.external_id}")
            last_by_id[r.external_id] = i
            continue
        gy, gx = int(r.lat // cell), int(r.lng // cell)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                for j in grid.get((r.name or DEFAULT_NAME, gy + dy, gx + dx), []):
                    o = records[j]
                    if (
                        j not in superseded
                        and haversine_m(r.lat, r.lng, o.lat or 0.0, o.lng or 0.0) <= within_m
                    ):
                        superseded[j] = (i, f"name '{r.name or DEFAULT_NAME}' within {within_m:g} m")
        grid.setdefault((r.name or DEFAULT_NAME, gy, gx), []).append(i)
    kept = [r for i, r in enumerate(records) if i not in superseded]
    dups = [Duplicate(records[j].line, records[i].line, key) for j, (i, key) in sorted(superseded.items())]
    return kept, dups


def merge_record(existing: Any, record: AedRecord) -> tuple[dict[str, Any], dict[str, Any]]:
    """The full row to store and what changed, from the stored row (`AedRow` or None) and a record.

    Fields the record does not give keep their stored value; a new AED gets `active` and `public`.
    Changes are `{field: value}` for a new AED and `{field: [old, new]}` for an existing one.
    """
    given = record.given()
    if "opening_hours" in given:
        given["opening_hours_error"] = hours_problem(given["opening_hours"])
    if existing is None:
        if record.lat is None or record.lng is None:
            raise RowProblem("lat", "required")
        row = {k: None for k in (*RECORD_FIELDS, "opening_hours_error")}
        row.update({"status": "active", "access": "public", "name": DEFAULT_NAME, **given})
        row.update(id=str(uuid.uuid4()), lat=record.lat, lng=record.lng)
        return row, {k: _jsonable(v) for k, v in row.items() if v is not None and k != "id"}
    row = {**existing.values, "id": existing.id, "lat": existing.lat, "lng": existing.lng}
    changes = {k: [_jsonable(row[k]), _jsonable(v)] for k, v in given.items() if row.get(k) != v}
    row.update(given)
    if record.lat is not None and record.lng is not None:
        moved = haversine_m(existing.lat, existing.lng, record.lat, record.lng)
        if moved > 0.01:
            changes["location"] = [[existing.lat, existing.lng], [record.lat, record.lng]]
            row.update(lat=record.lat, lng=record.lng)
    return row, changes


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime | date) else value
