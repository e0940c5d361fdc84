"""SMS or voice through any gateway: a signed JSON POST the gateway turns into a message or a call.

For providers we have no adapter for (Aliyun, Twilio, a carrier's own gateway, an in-house PBX):
`{"to": "+86…", "text": "…", "alert_id": "…", "kind": "sms" | "voice"}`, signed with
`X-Rescue-Signature` (core/signing.py) and carrying an `Idempotency-Key` that is the same on every
retry of one attempt, so a gateway that saw the first try succeed does not send twice. Any 2xx is
`sent`; the gateway's message id is taken from `{"id": …}` when it answers one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import httpx

from core import signing
from dispatch.channels import texts
from dispatch.channels.base import Attempt, AttemptResult, Outcome
from dispatch.channels.phone import e164
from dispatch.channels.retry import RetryPolicy, TryAgain, with_retries


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    url: str
    secret: str
    kind: Literal["sms", "voice"]
    language: texts.Language
    policy: RetryPolicy
    client: httpx.AsyncClient

    @property
    def name(self) -> str:
        return self.kind

    async def aclose(self) -> None:
        """Close the HTTP connections (at shutdown)."""
        await self.client.aclose()

    def text(self, attempt: Attempt) -> str:
        if self.kind == "voice":
            return texts.voice_text(attempt.alert, self.language)
        return texts.sms_text(attempt.alert, attempt.link, self.language)

    async def send(self, attempt: Attempt) -> AttemptResult:
        phone = e164(attempt.phone)
        if phone is None:
            return AttemptResult(Outcome.unreachable, "no usable phone number")
        body = json.dumps(
            {"to": phone, "text": self.text(attempt), "alert_id": attempt.alert.alert_id, "kind": self.kind},
            ensure_ascii=False,
        ).encode()
        key = f"{attempt.alert.alert_id}:{self.kind}:{attempt.step}"

        async def once(timeout_s: float) -> AttemptResult:
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                signing.HEADER: signing.sign(self.secret, body),  # a fresh t on each try
                signing.IDEMPOTENCY_HEADER: key,
            }
            r = await self.client.post(self.url, content=body, headers=headers, timeout=timeout_s)
            if r.status_code >= 500 or r.status_code == 429:
                raise TryAgain(f"gateway HTTP {r.status_code}")
            if not r.is_success:
                return AttemptResult(Outcome.provider_error, f"gateway HTTP {r.status_code}: {r.text[:100]}")
            try:
                answer = r.json()
                message_id = answer.get("id") if isinstance(answer, dict) else None
            except ValueError:
                message_id = None
            provider_id = str(message_id) if message_id else None
            return AttemptResult(Outcome.sent, f"accepted by the gateway (HTTP {r.status_code})", provider_id)

        return await with_retries(once, self.policy, attempt.alert.expires_at)
