"""PIDF-LO (RFC 4119, shapes of RFC 5491) read into the one point we dispatch to.

A centre sends where the patient is as a PIDF-LO document. We dispatch to one point, so each
geodetic shape becomes a representative point and the distance in metres within which the patient
is (its uncertainty, kept on the incident so the dispatcher knows how far to trust the pin):

* Point: itself, uncertainty unknown (None);
* Circle / Sphere: the centre, the radius;
* Ellipse / Ellipsoid: the centre, the semi-major axis;
* Polygon: the centroid of the ring, the farthest vertex from it;
* ArcBand: the middle of the band (mid radius, mid angle), the farthest corner or arc point from it.

A civic address (RFC 5139) becomes one line of text. Pure: the standard library's XML parser on
a string, no I/O; errors say which element broke which rule (`PidfError`).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from geo.distance import destination, haversine_m

GML = "http://www.opengis.net/gml"
GS = "http://www.opengis.net/pidflo/1.0"
CIVIC = "urn:ietf:params:xml:ns:pidf:geopriv10:civicAddr"
WGS84_2D, WGS84_3D = "urn:ogc:def:crs:EPSG::4326", "urn:ogc:def:crs:EPSG::4979"
METRES = "urn:ogc:def:uom:EPSG::9001"
DEGREES, RADIANS = "urn:ogc:def:uom:EPSG::9102", "urn:ogc:def:uom:EPSG::9101"
CIVIC_ORDER = ("NAM", "LMK", "FLR", "ROOM", "HNO", "HNS", "RD", "STS", "A6", "A5", "A4", "A3", "A2", "A1")
"""Civic elements as a line, most specific first (RFC 5139: A1 is the state/province, NAM a name)."""


class PidfError(ValueError):
    """A PIDF-LO document we cannot read: `where` names the element, `rule` what it broke."""

    def __init__(self, where: str, rule: str) -> None:
        super().__init__(f"{where}: {rule}")
        self.where, self.rule = where, rule


@dataclass(frozen=True)
class Geodetic:
    """A representative point (WGS-84 coordinates as sent; the datum is the centre's), the shape it
    came from and how far from it the patient may be (None: not said)."""

    lat: float
    lng: float
    shape: str
    uncertainty_m: float | None


@dataclass(frozen=True)
class PidfLocation:
    """What a PIDF-LO said: a geodetic location, a civic address as text, either or both."""

    geodetic: Geodetic | None
    civic: str | None


def parse_pidf(document: str) -> PidfLocation:
    """The first geodetic shape and the first civic address in `document` (PidfError if malformed,
    or when it has neither)."""
    try:
        root = ET.fromstring(document)
    except ET.ParseError as exc:
        raise PidfError("presence", f"not well-formed XML ({exc})") from None
    shapes = (e for e in root.iter() if _local(e.tag) in SHAPES and _ns(e.tag) in (GML, GS))
    geodetic = next((_shape(e) for e in shapes), None)
    civic = next((_civic(e) for e in root.iter(f"{{{CIVIC}}}civicAddress")), None)
    if geodetic is None and civic is None:
        raise PidfError("location-info", "holds no geodetic shape (RFC 5491) and no civic address")
    return PidfLocation(geodetic, civic)


# --- shapes ---------------------------------------------------------------------------------------


def _point(e: ET.Element) -> Geodetic:
    lat, lng = _pos(e)
    return Geodetic(lat, lng, "Point", None)


def _circle(e: ET.Element) -> Geodetic:
    lat, lng = _pos(e)
    return Geodetic(lat, lng, _local(e.tag), _length(e, "radius"))


def _ellipse(e: ET.Element) -> Geodetic:
    lat, lng = _pos(e)
    major, minor = _length(e, "semiMajorAxis"), _length(e, "semiMinorAxis")
    if minor > major:
        raise PidfError(f"{_local(e.tag)}/semiMinorAxis", "must not exceed semiMajorAxis")
    return Geodetic(lat, lng, _local(e.tag), major)


def _polygon(e: ET.Element) -> Geodetic:
    ring = e.find(f"{{{GML}}}exterior/{{{GML}}}LinearRing")
    if ring is None:
        raise PidfError("Polygon", "needs gml:exterior/gml:LinearRing")
    pos_list = ring.find(f"{{{GML}}}posList")
    if pos_list is not None:
        numbers = _numbers(pos_list, "Polygon/posList")
        if len(numbers) % 2:
            raise PidfError("Polygon/posList", "needs pairs of 'lat lon'")
        vertices = list(zip(numbers[::2], numbers[1::2], strict=True))
    else:
        vertices = [_pair(p, "Polygon/pos") for p in ring.findall(f"{{{GML}}}pos")]
    if vertices and vertices[0] == vertices[-1]:
        vertices = vertices[:-1]  # the ring is closed by repeating its first vertex (RFC 5491 §5.2.2)
    if len(set(vertices)) < 3:
        raise PidfError("Polygon", "needs at least 3 distinct vertices")
    for lat, lng in vertices:
        _check_range(lat, lng, "Polygon")
    lat, lng = _centroid(vertices)
    return Geodetic(lat, lng, "Polygon", max(haversine_m(lat, lng, a, b) for a, b in vertices))


def _arc_band(e: ET.Element) -> Geodetic:
    lat, lng = _pos(e)
    inner, outer = _length(e, "innerRadius"), _length(e, "outerRadius")
    if inner > outer:
        raise PidfError("ArcBand/innerRadius", "must not exceed outerRadius")
    start, opening = _angle(e, "startAngle"), _angle(e, "openingAngle")
    if not 0 < opening <= 360:
        raise PidfError("ArcBand/openingAngle", "must be within (0, 360] degrees")
    middle = destination(lat, lng, (inner + outer) / 2, start + opening / 2)
    edge = [destination(lat, lng, r, start + opening * k / 16) for r in (inner, outer) for k in range(17)]
    return Geodetic(*middle, "ArcBand", max(haversine_m(*middle, a, b) for a, b in edge))


SHAPES: dict[str, Callable[[ET.Element], Geodetic]] = {
    "Point": _point,
    "Circle": _circle,
    "Sphere": _circle,
    "Ellipse": _ellipse,
    "Ellipsoid": _ellipse,
    "Polygon": _polygon,
    "ArcBand": _arc_band,
}


def _shape(e: ET.Element) -> Geodetic:
    srs = e.get("srsName")
    if srs is not None and srs not in (WGS84_2D, WGS84_3D):
        raise PidfError(f"{_local(e.tag)}@srsName", f"must be {WGS84_2D} (or {WGS84_3D})")
    return SHAPES[_local(e.tag)](e)


# --- values ---------------------------------------------------------------------------------------


def _pos(shape: ET.Element) -> tuple[float, float]:
    pos = shape.find(f"{{{GML}}}pos")
    if pos is None:
        raise PidfError(_local(shape.tag), "needs gml:pos ('lat lon')")
    return _pair(pos, f"{_local(shape.tag)}/pos")


def _pair(pos: ET.Element, where: str) -> tuple[float, float]:
    numbers = _numbers(pos, where)
    if len(numbers) not in (2, 3):
        raise PidfError(where, "must be 'lat lon' (or 'lat lon alt')")
    _check_range(numbers[0], numbers[1], where)
    return numbers[0], numbers[1]


def _numbers(e: ET.Element, where: str) -> list[float]:
    try:
        numbers = [float(x) for x in (e.text or "").split()]
    except ValueError:
        raise PidfError(where, "must be numbers separated by spaces") from None
    if not numbers or not all(math.isfinite(x) for x in numbers):
        raise PidfError(where, "must be finite numbers")
    return numbers


def _check_range(lat: float, lng: float, where: str) -> None:
    if not (-90 <= lat <= 90 and -180 <= lng <= 180):
        raise PidfError(where, "latitude must be within [-90, 90] and longitude within [-180, 180]")


def _measure(shape: ET.Element, name: str) -> tuple[float, str | None]:
    e = shape.find(f"{{{GS}}}{name}")
    where = f"{_local(shape.tag)}/{name}"
    if e is None:
        raise PidfError(where, "is required")
    numbers = _numbers(e, where)
    if len(numbers) != 1 or numbers[0] < 0:
        raise PidfError(where, "must be one number >= 0")
    return numbers[0], e.get("uom")


def _length(shape: ET.Element, name: str) -> float:
    value, uom = _measure(shape, name)
    if uom != METRES:
        raise PidfError(f"{_local(shape.tag)}/{name}@uom", f"must be {METRES} (metres)")
    return value


def _angle(shape: ET.Element, name: str) -> float:
    value, uom = _measure(shape, name)
    if uom == RADIANS:
        return math.degrees(value)
    if uom != DEGREES:
        raise PidfError(f"{_local(shape.tag)}/{name}@uom", f"must be {DEGREES} (degrees) or {RADIANS}")
    return value


def _civic(e: ET.Element) -> str | None:
    parts = {_local(c.tag): (c.text or "").strip() for c in e}
    line = ", ".join(parts[k] for k in CIVIC_ORDER if parts.get(k))
    return line or None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _ns(tag: str) -> str:
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""


# --- plane geometry (the shapes are small: metres to kilometres) ----------------------------------


def _centroid(vertices: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """The area centroid of a small ring, on a plane tangent at its first vertex (metres east and
    north); the vertices' mean when the ring has no area."""
    lat0, lng0 = vertices[0]
    k = math.cos(math.radians(lat0))
    xy = [((lng - lng0) * k, lat - lat0) for lat, lng in vertices]
    area = cx = cy = 0.0
    for (x1, y1), (x2, y2) in zip(xy, [*xy[1:], xy[0]], strict=True):
        cross = x1 * y2 - x2 * y1
        area += cross
        cx += (x1 + x2) * cross
        cy += (y1 + y2) * cross
    if abs(area) < 1e-18:
        x, y = sum(p[0] for p in xy) / len(xy), sum(p[1] for p in xy) / len(xy)
    else:
        x, y = cx / (3 * area), cy / (3 * area)
    return lat0 + y, lng0 + x / k
