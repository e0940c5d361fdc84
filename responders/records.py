"""The binary layout of one live position in the cell index, shared by the Lua scripts and numpy.

A page of the index (the cells of one H3 ancestor, `responders.store`) is one Redis string: its
responders' records back to back, each `RECORD_BYTES` long. A query fetches the strings of every
page covering its disk with one `MGET` and reads them with `numpy.frombuffer`: no script, no
per-person parsing, the distance, freshness, travel-mode and certificate filters all vectorised.
(The earlier layout, a hash per cell with a text value per person parsed in Lua, spent ~10 µs per
person and was 4x slower than a bare GEOSEARCH.)

The ingest script writes a record as the fix's bytes (`FIX_DTYPE`, packed here by numpy) followed
by the profile's summary: the certificates it packs with `CERTS_LUA_FORMAT`, then the tier (may
the responder be alerted in homes); `RECORD_DTYPE` reads them. The tier is in the record, not
looked up, so a residential incident's query filters it with the rest, in numpy.
Certificates are summarised per kind as one validity period, so the query checks them
without a second lookup; a responder whose certificates one period per kind cannot describe
(two of a kind, a kind not listed here) is flagged, and only those are checked against the profile.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import numpy as np

from core.hexdigits import hex_digits
from geo.reach import TravelMode
from responders.schemas import CertificateKind

ID_BYTES = 36  # a UUID's text form; shorter ids are padded with NUL bytes (numpy strips them)
# Codes kept in Redis: the enums' order, so a new mode or kind is appended, never inserted.
MODES: tuple[str, ...] = tuple(m.value for m in TravelMode)
KINDS: tuple[str, ...] = tuple(k.value for k in CertificateKind)
NO_ACCURACY = -1.0

RECORD_DTYPE = np.dtype(
    [
        ("id", f"S{ID_BYTES}"),
        ("lat", "<f8"),
        ("lng", "<f8"),
        ("ts_ms", "<f8"),
        ("accuracy_m", "<f4"),
        ("mode", "u1"),
        ("valid", "<u4", (len(KINDS), 2)),  # per kind [from, until) in epoch seconds; 0, 0 = none
        ("check_profile", "u1"),
        ("homes", "u1"),  # 1: the responder's tier allows alerts in homes (`residential` incidents)
    ]
)
RECORD_BYTES = RECORD_DTYPE.itemsize

# A fix on its way to the ingest script: the responder's padded id, its region (the H3 ancestor
# whose hash tag its keys carry, `responders.live_layout`), its page (the H3 cell whose key keeps
# it), then exactly the bytes of a record from `lat` to `mode` (mode `PROFILE_MODE` = the
# profile's). Packed by numpy for a whole batch; the script slices it at fixed offsets.
PROFILE_MODE = 255
PAGE_CHARS = 15  # an H3 index in hex, at any resolution
FIX_DTYPE = np.dtype(
    [
        ("id", f"S{ID_BYTES}"),
        ("region", f"S{PAGE_CHARS}"),
        ("page", f"S{PAGE_CHARS}"),
        ("lat", "<f8"),
        ("lng", "<f8"),
        ("ts_ms", "<f8"),
        ("accuracy_m", "<f4"),
        ("mode", "u1"),
    ]
)
MODE_CODES = {m: i for i, m in enumerate(MODES)}
CERTS_LUA_FORMAT = "<" + "I4I4" * len(KINDS) + "B"
TS_OFFSET = RECORD_DTYPE.fields["ts_ms"][1]
CERTS_OFFSET = RECORD_DTYPE.fields["valid"][1]
assert ID_BYTES + 3 * 8 + 4 + 1 + len(KINDS) * 8 + 1 + 1 == RECORD_BYTES  # packed, as Lua writes it
assert FIX_DTYPE.itemsize == ID_BYTES + 2 * PAGE_CHARS + CERTS_OFFSET - ID_BYTES  # a record's body, sliced


def lua_tables() -> str:
    """The constants the scripts need, generated from the Python side so the two cannot drift."""
    modes = ", ".join(f"{m}={i}" for i, m in enumerate(MODES))
    kinds = ", ".join(f"{k}={i + 1}" for i, k in enumerate(KINDS))
    return f"""
local REC, ID_BYTES, TS_AT, CERTS_AT = {RECORD_BYTES}, {ID_BYTES}, {TS_OFFSET + 1}, {CERTS_OFFSET}
local FIX, PAGE_CHARS, PROFILE_MODE = {FIX_DTYPE.itemsize}, {PAGE_CHARS}, {PROFILE_MODE}
local CERTS_FORMAT = '{CERTS_LUA_FORMAT}'
local MODES = {{{modes}}}
local KINDS = {{{kinds}}}
local N_KINDS = {len(KINDS)}
"""


def padded_id(responder_id: str) -> bytes:
    """The id as a record holds it: at most `ID_BYTES` bytes, NUL-padded (so NUL may not occur)."""
    raw = responder_id.encode()
    if not raw or len(raw) > ID_BYTES or b"\0" in raw:
        raise ValueError(f"responder_id: 1 to {ID_BYTES} bytes, no NUL ({responder_id!r})")
    return raw.ljust(ID_BYTES, b"\0")


_UUID_GROUPS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))  # a UUID's text: 8-4-4-4-12 digits


def uuid_ids(uuids: Sequence[uuid.UUID]) -> np.ndarray:
    """UUIDs as record ids (`str(u)` for each, as bytes), formatted by numpy for a whole batch.

    A gateway batch names 5,000 responders; `str()` on each cost over a microsecond apiece, a
    tenth of the app's whole share of an update.
    """
    raw = np.frombuffer(b"".join([u.int.to_bytes(16) for u in uuids]), dtype=np.uint8)
    digits = hex_digits(raw.reshape(len(uuids), 16))
    text = np.full((len(uuids), ID_BYTES), ord("-"), dtype=np.uint8)
    for group, (start, end) in enumerate(_UUID_GROUPS):
        text[:, start + group : end + group] = digits[:, start:end]
    return text.view(f"S{ID_BYTES}").ravel()


def decode_ids(ids: np.ndarray) -> list[str]:
    """The ids of some records as text (numpy drops the NUL padding of an `S` field by itself)."""
    return [i.decode() for i in ids.tolist()]


def qualified_mask(records: np.ndarray, at_s: float, kinds: set[str] | None) -> np.ndarray:
    """Rows holding a certificate of one of `kinds` (None: any) valid at `at_s`, by the summary."""
    valid = records["valid"]
    ok = (valid[:, :, 0] <= at_s) & (at_s < valid[:, :, 1])
    columns = [i for i, k in enumerate(KINDS) if kinds is None or k in kinds]
    return ok[:, columns].any(axis=1) if columns else np.zeros(len(records), dtype=bool)
