"""CSV bulk registration: parse, validate row by row, group certificates under their responder.

One row per certificate; rows sharing an `external_id` belong to one responder (the first row's
responder fields win, later rows must agree or leave them empty). Every bad row is reported with
its line number and the field, and never stops the good rows.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from pydantic import ValidationError

from responders.schemas import CertificateIn, ImportError_, ResponderCreate

REQUIRED = ("external_id", "name", "category")
RESPONDER_COLUMNS = ("external_id", "name", "phone", "category", "team", "mode", "alert_places")
CERTIFICATE_COLUMNS = {
    "cert_kind": "kind",
    "cert_number": "number",
    "cert_issuer": "issuer",
    "cert_valid_from": "valid_from",
    "cert_valid_until": "valid_until",
    "cert_verified": "verified",
}
MAX_ROWS = 200_000


class CsvFileError(ValueError):
    """The file as a whole is unusable (no header, missing required columns, not text)."""


@dataclass
class ParsedResponder:
    line: int
    data: ResponderCreate
    certificate_lines: list[int] = field(default_factory=list)


def _errors(line: int, exc: ValidationError, prefix: str = "") -> list[ImportError_]:
    return [
        ImportError_(line=line, field=prefix + ".".join(str(p) for p in e["loc"]) or "row", reason=e["msg"])
        for e in exc.errors()
    ]


def _certificate(row: dict[str, str], line: int) -> tuple[CertificateIn | None, list[ImportError_]]:
    values = {name: row[col] for col, name in CERTIFICATE_COLUMNS.items() if row.get(col)}
    if not values:
        return None, []
    try:
        return CertificateIn.model_validate(values), []
    except ValidationError as exc:
        return None, _errors(line, exc, "cert_")


def parse_csv(text: str) -> tuple[list[ParsedResponder], list[ImportError_], int]:
    """Responders to upsert, the rows' errors, and the number of data rows read."""
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise CsvFileError(f"file: header must name the columns {', '.join(missing)}")
    unknown = sorted(set(header) - set(RESPONDER_COLUMNS) - set(CERTIFICATE_COLUMNS))
    if unknown:
        raise CsvFileError(f"file: unknown columns {', '.join(unknown)}")
    reader.fieldnames = header
    by_id: dict[str, ParsedResponder] = {}
    errors: list[ImportError_] = []
    rows = 0
    for row in reader:
        rows += 1
        line = reader.line_num
        if rows > MAX_ROWS:
            raise CsvFileError(f"file: more than {MAX_ROWS} rows; split it")
        if None in row:  # more cells than header columns
            errors.append(ImportError_(line=line, field="row", reason="more cells than header columns"))
            continue
        clean = {k: (v or "").strip() for k, v in row.items()}
        certificate, cert_errors = _certificate(clean, line)
        if cert_errors:
            errors.extend(cert_errors)
            continue
        external_id = clean["external_id"]
        known = by_id.get(external_id)
        if known is not None:
            clash = [
                c
                for c in RESPONDER_COLUMNS[1:]
                if clean.get(c) and clean[c] != str(getattr(known.data, c) or "")
            ]
            if clash:
                reason = f"differs from line {known.line} for the same external_id"
                errors.append(ImportError_(line=line, field=clash[0], reason=reason))
                continue
            if certificate is not None:
                earlier = [
                    n
                    for c, n in zip(known.data.certificates, known.certificate_lines, strict=True)
                    if (c.kind, c.number) == (certificate.kind, certificate.number)
                ]
                if earlier:
                    reason = f"the same kind and number as line {earlier[0]} for this responder"
                    errors.append(ImportError_(line=line, field="cert_number", reason=reason))
                    continue
                known.data.certificates.append(certificate)
                known.certificate_lines.append(line)
            continue
        values = {c: clean[c] for c in RESPONDER_COLUMNS if clean.get(c)}
        try:
            data = ResponderCreate.model_validate(
                {**values, "certificates": [certificate.model_dump()] if certificate else []}
            )
        except ValidationError as exc:
            errors.extend(_errors(line, exc))
            continue
        by_id[external_id] = ParsedResponder(line, data, [line] if certificate else [])
    return list(by_id.values()), errors, rows
