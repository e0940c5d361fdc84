"""An Emergency Incident Data Object (NENA-STA-021, the JSON form) read into plain data.

A centre's CAD sends the whole incident each time it changes: the incident component (tracking id,
`lastUpdateTimeStamp`, type, status, which location), the location components (PIDF-LO by value,
or a URL by reference), notes, the agency and the call-taker. We keep what dispatching needs and
refuse, naming the JSON path and the rule (`EidoError`), anything we would otherwise guess at.

NENA's JSON lets a component be one object or a list of them; both are read (a list: the first,
or for locations the one `incidentComponent.locationReference` names). Pure: no I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from cad.pidf import Geodetic, PidfError, parse_pidf

TRACKING_ID = re.compile(r"^urn:emergency:uid:incidentid:\S{1,260}$")
TYPE_FIELDS = ("incidentTypeInternalCode", "incidentTypeLocalText", "incidentTypeCommonRegistryText")
"""Where a centre puts its incident type, the most specific first (its own code, then registry text)."""
NOTE_MAX, ADDRESS_MAX = 2000, 500  # what an incident stores (dispatch.schemas.IncidentCreate)
CODE_MAX = 200  # an incident-type code (cad_reports.category_mapped_from)
CentreStatus = Literal["active", "closed", "ems_on_scene"]
STATUSES: dict[str, CentreStatus] = {
    "closed": "closed",
    "cancelled": "closed",
    "canceled": "closed",
    "completed": "closed",
    "emsonscene": "ems_on_scene",
    "onscene": "ems_on_scene",
}
"""Incident status texts (case, spaces, '_' and '-' ignored) that end our part; others are active."""


class EidoError(ValueError):
    """Input we refuse: `path` is the JSON path (`$.locationComponent[0].locationByValue`), `rule`
    what it broke."""

    def __init__(self, path: str, rule: str) -> None:
        super().__init__(f"{path}: {rule}")
        self.path, self.rule = path, rule


@dataclass(frozen=True)
class Eido:
    """What one EIDO says about the incident, as sent (coordinates in the centre's datum)."""

    tracking_id: str
    updated_at: datetime
    type_codes: tuple[str, ...]
    status: CentreStatus
    geodetic: Geodetic | None
    civic: str | None
    reference: str | None  # the URL of a location sent by reference
    note: str | None
    agency: str | None
    call_taker: str | None

    def fields(self) -> dict[str, Any]:
        """The facts a dispatcher sees, to tell what an update changed (`changed_fields`)."""
        facts = asdict(self)
        del facts["tracking_id"], facts["updated_at"]
        geodetic = facts.pop("geodetic")
        facts["location"] = None if geodetic is None else [geodetic["lat"], geodetic["lng"]]
        facts["uncertainty_m"] = None if geodetic is None else geodetic["uncertainty_m"]
        facts["shape"] = None if geodetic is None else geodetic["shape"]
        facts["type_codes"] = list(self.type_codes)
        return facts


def changed_fields(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[str]:
    """Names of the facts an update changed (none for the first document: nothing was there before)."""
    if before is None:
        return []
    return sorted(k for k in after if before.get(k) != after[k])


def parse_eido(doc: Any) -> Eido:
    """Read an EIDO document (parsed JSON) or raise `EidoError` naming path and rule."""
    if not isinstance(doc, Mapping):
        raise EidoError("$", "must be a JSON object (an EIDO)")
    for path, rule in _unstorable(doc, "$"):
        raise EidoError(path, rule)
    incident, ipath = _component(doc, "incidentComponent", required=True)
    tracking_id = incident.get("incidentTrackingIdentifier", doc.get("$id"))
    tpath = f"{ipath}.incidentTrackingIdentifier" if "incidentTrackingIdentifier" in incident else "$.$id"
    if (
        not isinstance(tracking_id, str)
        or not TRACKING_ID.match(tracking_id)
        or not tracking_id.isprintable()
    ):
        raise EidoError(tpath, "must be an incident tracking id 'urn:emergency:uid:incidentid:<id>'")
    location = _location(doc, incident, ipath)
    geodetic, civic, reference = location
    return Eido(
        tracking_id=tracking_id,
        updated_at=_updated_at(doc, incident, ipath),
        type_codes=_type_codes(incident, ipath),
        status=_status(incident, ipath),
        geodetic=geodetic,
        civic=civic[:ADDRESS_MAX] if civic else None,
        reference=reference,
        note=_notes(doc),
        agency=_first_text(doc, "agencyComponent", ("agencyIdentifier", "agencyName")),
        call_taker=_first_text(doc, "agentComponent", ("agentIdentifier", "agentName", "personName")),
    )


def _unstorable(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """Where the document holds what PostgreSQL's JSONB cannot keep (the document is stored as
    sent): text with U+0000, numbers that are not finite."""
    if isinstance(value, str) and "\x00" in value:
        yield path, "must not contain NUL characters (U+0000)"
    elif isinstance(value, float) and not math.isfinite(value):
        yield path, "must be a finite number"
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if "\x00" in key:
                yield path, "keys must not contain NUL characters (U+0000)"
            yield from _unstorable(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _unstorable(item, f"{path}[{i}]")


def _component(doc: Mapping[str, Any], name: str, *, required: bool = False) -> tuple[Mapping[str, Any], str]:
    """The first `name` component (an object, or a list of them) and its path; `{}` when absent."""
    value, path = doc.get(name), f"$.{name}"
    if value is None:
        if required:
            raise EidoError(path, "is required")
        return {}, path
    if isinstance(value, list):
        if not value:
            raise EidoError(path, "must not be an empty list")
        value, path = value[0], f"{path}[0]"
    if not isinstance(value, Mapping):
        raise EidoError(path, "must be an object")
    return value, path


def _components(doc: Mapping[str, Any], name: str) -> list[tuple[Mapping[str, Any], str]]:
    value = doc.get(name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items):
        path = f"$.{name}[{i}]" if isinstance(value, list) else f"$.{name}"
        if not isinstance(item, Mapping):
            raise EidoError(path, "must be an object")
        out.append((item, path))
    return out


def _text(value: Any, path: str, max_length: int | None = None) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EidoError(path, "must be a non-empty string")
    if max_length is not None and len(value.strip()) > max_length:
        raise EidoError(path, f"must be at most {max_length} characters")
    return value.strip()


def _texts(value: Any, path: str, max_length: int | None = None) -> list[str]:
    """A string or a list of strings (NENA allows either for registry texts)."""
    if isinstance(value, list):
        if not value:
            raise EidoError(path, "must not be an empty list")
        return [_text(v, f"{path}[{i}]", max_length) for i, v in enumerate(value)]
    return [_text(value, path, max_length)]


def _updated_at(doc: Mapping[str, Any], incident: Mapping[str, Any], ipath: str) -> datetime:
    if "lastUpdateTimeStamp" in incident:
        value, path = incident["lastUpdateTimeStamp"], f"{ipath}.lastUpdateTimeStamp"
    else:
        value, path = doc.get("lastUpdateTimeStamp"), "$.lastUpdateTimeStamp"
    if value is None:
        raise EidoError(path, "is required")
    rule = "must be an ISO 8601 date-time with its UTC offset (e.g. 2026-11-29T19:02:00+08:00)"
    try:
        when = datetime.fromisoformat(_text(value, path))
    except ValueError:
        raise EidoError(path, rule) from None
    if when.tzinfo is None:
        raise EidoError(path, rule)
    return when


def _type_codes(incident: Mapping[str, Any], ipath: str) -> tuple[str, ...]:
    codes = [c for f in TYPE_FIELDS if f in incident for c in _texts(incident[f], f"{ipath}.{f}", CODE_MAX)]
    if not codes:
        rule = "is required (or incidentTypeInternalCode)"
        raise EidoError(f"{ipath}.incidentTypeCommonRegistryText", rule)
    return tuple(codes)


def _status(incident: Mapping[str, Any], ipath: str) -> CentreStatus:
    field = "incidentStatusCommonRegistryText"
    if field not in incident:
        return "active"
    said = {re.sub(r"[\s_-]", "", t).casefold() for t in _texts(incident[field], f"{ipath}.{field}")}
    found = {STATUSES[s] for s in said if s in STATUSES}
    return "closed" if "closed" in found else "ems_on_scene" if found else "active"


def _location(
    doc: Mapping[str, Any], incident: Mapping[str, Any], ipath: str
) -> tuple[Geodetic | None, str | None, str | None]:
    """The geodetic shape, civic address and reference URL of the incident's location."""
    components = _components(doc, "locationComponent")
    if not components:
        raise EidoError("$.locationComponent", "is required")
    wanted = _reference_id(incident.get("locationReference"), f"{ipath}.locationReference")
    chosen = components[0]
    if wanted is not None:
        named = [c for c in components if wanted in (c[0].get("$id"), c[0].get("componentIdentifier"))]
        if not named:
            raise EidoError(f"{ipath}.locationReference", f"names no locationComponent ('{wanted}')")
        chosen = named[0]
    component, path = chosen
    by_value, by_reference = component.get("locationByValue"), component.get("locationByReference")
    if by_value is None and by_reference is None:
        raise EidoError(path, "needs locationByValue (PIDF-LO) or locationByReference (a URL)")
    reference = None
    if by_reference is not None:
        reference = _text(by_reference, f"{path}.locationByReference")
        if not re.match(r"^(https|sips?|http)://\S+$", reference):
            raise EidoError(f"{path}.locationByReference", "must be an https, sip or sips URL")
    if by_value is None:
        return None, None, reference
    try:
        pidf = parse_pidf(_text(by_value, f"{path}.locationByValue"))
    except PidfError as exc:
        raise EidoError(f"{path}.locationByValue", f"PIDF-LO {exc.where}: {exc.rule}") from None
    return pidf.geodetic, pidf.civic, reference


def _reference_id(value: Any, path: str) -> str | None:
    """The id a `locationReference` names: '$ref:loc-1', '#loc-1', {'$ref': '#loc-1'} or a list."""
    if value is None:
        return None
    if isinstance(value, list) and value:
        value, path = value[0], f"{path}[0]"
    if isinstance(value, Mapping):
        value, path = value.get("$ref"), f"{path}.$ref"
    ref = _text(value, path)
    return ref.removeprefix("$ref:").removeprefix("#")


def _notes(doc: Mapping[str, Any]) -> str | None:
    texts = [
        _text(note["noteText"], f"{path}.noteText")
        for note, path in _components(doc, "notesComponent")
        if "noteText" in note
    ]
    joined = "\n".join(texts)
    return joined[:NOTE_MAX] or None


def _first_text(doc: Mapping[str, Any], name: str, keys: Sequence[str]) -> str | None:
    component, path = _component(doc, name)
    for key in keys:
        if key in component:
            return _text(component[key], f"{path}.{key}")[:100]
    return None
