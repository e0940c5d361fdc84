"""Tencent Cloud SMS (`SendSms`, 2021-01-11) and voice calls (`SendTtsVoice`, 2020-09-02).

Plain HTTPS with API 3.0 signing (`tc3.py`) rather than the SDK: two actions, one JSON body each,
and an async client the SDK does not have. Tencent answers HTTP 200 also for refusals, with
`Response.Error`; an SMS is accepted when its `SendStatusSet[].Code` is `Ok`, a call when a
`SendStatus.CallId` comes back. Mainland SMS and TTS text come from templates approved in the
console; we pass only their parameters (texts.py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from dispatch.channels import tc3, texts
from dispatch.channels.base import Attempt, AttemptResult, Outcome
from dispatch.channels.phone import e164
from dispatch.channels.retry import RetryPolicy, TryAgain, with_retries

SMS_HOST, SMS_VERSION = "sms.tencentcloudapi.com", "2021-01-11"
VOICE_HOST, VOICE_VERSION = "vms.tencentcloudapi.com", "2020-09-02"
DETAIL_MAX = 160


@dataclass(frozen=True, slots=True)
class TencentApi:
    """Signed calls to Tencent Cloud API 3.0 with one key pair, one region."""

    secret_id: str
    secret_key: str
    region: str
    client: httpx.AsyncClient
    endpoint_url: str | None = None  # set: requests go here, the signed Host stays the service's

    async def call(
        self, host: str, action: str, version: str, params: dict[str, Any], timeout_s: float
    ) -> dict:
        """The `Response` object of one call; `TryAgain` when Tencent says its side failed."""
        payload = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
        headers = tc3.request_headers(
            self.secret_id, self.secret_key, host=host, action=action, version=version,
            region=self.region, timestamp=int(time.time()), payload=payload,
        )  # fmt: skip
        url = self.endpoint_url.rstrip("/") + "/" if self.endpoint_url else f"https://{host}/"
        r = await self.client.post(url, content=payload, headers=headers, timeout=timeout_s)
        if r.status_code >= 500:
            raise TryAgain(f"HTTP {r.status_code}")
        try:
            response = r.json()["Response"]
        except (ValueError, KeyError, TypeError):
            response = {"Error": {"Code": f"HTTP {r.status_code}", "Message": "unreadable answer"}}
        error = response.get("Error") if isinstance(response, dict) else None
        if isinstance(error, dict):
            code, message = str(error.get("Code")), str(error.get("Message", ""))
            if code.startswith("InternalError"):  # Tencent's side: the same request may pass later
                raise TryAgain(f"{code}: {message}"[:DETAIL_MAX])
        return response


def _error(response: dict) -> AttemptResult | None:
    error = response.get("Error")
    if not isinstance(error, dict):
        return None
    detail = f"{error.get('Code')}: {error.get('Message', '')}"[:DETAIL_MAX]
    return AttemptResult(Outcome.provider_error, detail)


def _context(attempt: Attempt, kind: str) -> str:
    """Echoed back by Tencent and in its delivery reports: which attempt this was."""
    return f"{attempt.alert.alert_id}:{kind}:{attempt.step}"


class _ViaTencent:
    """What the SMS and the voice channel share: the API client they close at shutdown."""

    __slots__ = ()
    api: TencentApi

    async def aclose(self) -> None:
        """Close the HTTP connections (at shutdown)."""
        await self.api.client.aclose()


@dataclass(frozen=True, slots=True)
class TencentSms(_ViaTencent):
    """An alert SMS through an approved template (4 parameters, or 5 for AED runners).

    Tencent refuses a URL in a template variable (`ProhibitedUseUrlInTemplateParameter`): the
    template writes the link's constant start, the last variable carries the rest.
    """

    api: TencentApi
    sdk_app_id: str
    sign_name: str
    template_id: str
    aed_template_id: str | None
    language: texts.Language
    policy: RetryPolicy
    link_prefix: str  # the template's constant start of every alert link
    name: str = "sms"

    async def send(self, attempt: Attempt) -> AttemptResult:
        phone = e164(attempt.phone)
        if phone is None:
            return AttemptResult(Outcome.unreachable, "no usable phone number")
        if not attempt.link:
            return AttemptResult(Outcome.provider_error, "no alert link to send")
        if not attempt.link.startswith(self.link_prefix):
            return AttemptResult(Outcome.provider_error, "alert link does not start with the template's")
        link = attempt.link.removeprefix(self.link_prefix)  # Tencent refuses a URL in a variable
        with_aed = attempt.alert.aed is not None and self.aed_template_id is not None
        params = {
            "PhoneNumberSet": [phone],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": self.sign_name,
            "TemplateId": self.aed_template_id if with_aed else self.template_id,
            "TemplateParamSet": texts.sms_params(attempt.alert, link, self.language, with_aed=with_aed),
            "SessionContext": _context(attempt, "sms"),
        }

        async def once(timeout_s: float) -> AttemptResult:
            response = await self.api.call(SMS_HOST, "SendSms", SMS_VERSION, params, timeout_s)
            if (failed := _error(response)) is not None:
                return failed
            statuses = response.get("SendStatusSet") or [{}]
            status = statuses[0] if isinstance(statuses[0], dict) else {}
            if status.get("Code") == "Ok":
                return AttemptResult(Outcome.sent, "accepted by Tencent SMS", status.get("SerialNo"))
            detail = f"{status.get('Code')}: {status.get('Message', '')}"[:DETAIL_MAX]
            return AttemptResult(Outcome.provider_error, detail)

        return await with_retries(once, self.policy, attempt.alert.expires_at)


@dataclass(frozen=True, slots=True)
class TencentVoice(_ViaTencent):
    """An alert call that reads an approved TTS template (category, distance, ETA)."""

    api: TencentApi
    sdk_app_id: str
    template_id: str
    play_times: int
    language: texts.Language
    policy: RetryPolicy
    name: str = "voice"

    async def send(self, attempt: Attempt) -> AttemptResult:
        phone = e164(attempt.phone)
        if phone is None:
            return AttemptResult(Outcome.unreachable, "no usable phone number")
        params = {
            "TemplateId": self.template_id,
            "CalledNumber": phone,
            "VoiceSdkAppid": self.sdk_app_id,
            "TemplateParamSet": texts.voice_params(attempt.alert, self.language),
            "PlayTimes": self.play_times,
            "SessionContext": _context(attempt, "voice"),
        }

        async def once(timeout_s: float) -> AttemptResult:
            response = await self.api.call(VOICE_HOST, "SendTtsVoice", VOICE_VERSION, params, timeout_s)
            if (failed := _error(response)) is not None:
                return failed
            call_id = (response.get("SendStatus") or {}).get("CallId")
            if call_id:
                return AttemptResult(Outcome.sent, "call placed by Tencent voice", str(call_id))
            return AttemptResult(Outcome.provider_error, "no CallId in the answer")

        return await with_retries(once, self.policy, attempt.alert.expires_at)
