"""Taking a person out of a JSON document the service keeps (pure).

Feedback to emergency centres (`cad.feedback`) names each accepted responder for the call-taker:
`{"responder_id": …, "name": …, "phone": …}`, in the stream's tallies and in every body of its
outbox. Those copies stay with the incident record, so an erased account's name and phone must
leave them too; the rest (ids, roles, ETAs, counts) is the record and stays.
"""

from __future__ import annotations

from typing import Any

PERSONAL_KEYS = ("name", "phone")


def without_person(value: Any, responder_id: str) -> Any:
    """`value` with the name and phone of every object about this responder (`"responder_id"`
    equal to it) set to null; everything else, at any depth, as it was."""
    if isinstance(value, dict):
        out = {k: without_person(v, responder_id) for k, v in value.items()}
        if out.get("responder_id") == responder_id:
            out.update({k: None for k in PERSONAL_KEYS if k in out})
        return out
    if isinstance(value, list):
        return [without_person(v, responder_id) for v in value]
    return value
