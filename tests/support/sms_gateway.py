"""A stand-in for an SMS/voice webhook gateway: checks `X-Rescue-Signature` like a receiver must.

It verifies the signature over the raw body with the shared secret (core/signing.verify) and
refuses an old `t` (401), wants an `Idempotency-Key` (400) and the documented JSON fields (422),
and answers a key it has already accepted with the same message id without counting a second
message, as a well-behaved gateway does. Planned answers (503, a slow answer) come first.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from core import signing
from tests.support.standin import Received, SignedReceiver

_E164 = re.compile(r"\+[1-9]\d{7,14}")


@dataclass
class SmsGateway(SignedReceiver):
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # Idempotency-Key -> message

    def answer(self, req: Received) -> tuple[int, str, bytes]:
        if (refused := self.refusal(req)) is not None:
            return refused
        key = req.headers[signing.IDEMPOTENCY_HEADER]
        try:
            req.json = message = json.loads(req.body)
            assert isinstance(message, dict)
            assert _E164.fullmatch(message["to"]), "to is not E.164"
            assert message["kind"] in ("sms", "voice"), "kind is not sms or voice"
            assert isinstance(message["text"], str) and message["text"], "text is empty"
            assert isinstance(message["alert_id"], str) and message["alert_id"], "alert_id is empty"
        except (ValueError, KeyError, TypeError, AssertionError) as exc:
            req.verdict = f"bad message: {exc}"
            return self._reply(422, {"error": req.verdict})
        if (failed := self.planned_failure(req)) is not None:
            return failed
        with self._lock:
            known = self.messages.get(key)
            if known is None:
                known = self.messages[key] = {**message, "id": "msg-" + secrets.token_hex(6)}
        return self._reply(200, {"id": known["id"]})
