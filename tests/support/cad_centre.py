"""A stand-in for an emergency centre's CAD receiving our feedback, as strict as a real one should be.

It verifies `X-Rescue-Signature` over the raw body with the subscription's secret and refuses an old
`t` (401), wants an `Idempotency-Key` (400) and the envelope fields (422). Planned failures (500, a
slow answer past our timeout) come next; a refused connection is `stop()` (and `start()` again on
the same port). A key it already took is answered 200 again without counting a second event, as a
well-behaved receiver does; an event whose `seq` is not the next of its incident is noted in
`out_of_order` (and refused 409), so a test sees any reordering however it happened.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from core import signing
from tests.support.standin import Received, SignedReceiver

ENVELOPE = ("event", "incident_id", "tracking_id", "seq", "at")


@dataclass
class CadCentre(SignedReceiver):
    events: list[dict[str, Any]] = field(default_factory=list)  # every event taken, once, in order
    keys: set[str] = field(default_factory=set)
    duplicates: int = 0  # requests for a key already taken (a retry whose first answer was lost)
    out_of_order: list[tuple[str, int, int]] = field(default_factory=list)  # (incident, want, got)
    last_seq: dict[str, int] = field(default_factory=dict)

    def answer(self, req: Received) -> tuple[int, str, bytes]:
        if (refused := self.refusal(req)) is not None:
            return refused
        key = req.headers[signing.IDEMPOTENCY_HEADER]
        try:
            req.json = event = json.loads(req.body)
            assert isinstance(event, dict), "not an object"
            missing = [k for k in ENVELOPE if k not in event]
            assert not missing, f"missing {missing}"
            assert isinstance(event["seq"], int) and event["seq"] >= 1, "seq is not a positive integer"
        except (ValueError, AssertionError) as exc:
            req.verdict = f"bad event: {exc}"
            return self._reply(422, {"error": req.verdict})
        if (failed := self.planned_failure(req)) is not None:
            return failed
        return self._take(req, key, event)

    def _take(self, req: Received, key: str, event: dict[str, Any]) -> tuple[int, str, bytes]:
        with self._lock:
            if key in self.keys:
                self.duplicates += 1
                req.verdict = "duplicate"
                return self._reply(200, {"duplicate": True})
            stream = f"{event['incident_id']}"
            want = self.last_seq.get(stream, 0) + 1
            if event["seq"] != want:
                self.out_of_order.append((stream, want, event["seq"]))
                req.verdict = f"out of order: want seq {want}"
                return self._reply(409, {"error": req.verdict})
            self.keys.add(key)
            self.last_seq[stream] = event["seq"]
            self.events.append(event)
        return self._reply(200, {"ok": True})

    def of(self, incident_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e["incident_id"] == incident_id]
