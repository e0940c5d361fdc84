"""A stand-in for Tencent Cloud API 3.0 (SMS `SendSms`, voice `SendTtsVoice`) on a local port.

It checks each request the way Tencent documents it does, recomputing TC3-HMAC-SHA256 from the
raw request as received (its own code, not the service's signer, so a shared mistake cannot pass):
the Host names the service, the credential scope names that service and the UTC date of
X-TC-Timestamp, the timestamp is within five minutes, `content-type` and `host` are signed, the
SecretId is known and the signature matches the body and the signed headers. Refusals come back as
Tencent sends them: HTTP 200 with `Response.Error` (`AuthFailure.SignatureFailure`, …). Then it
checks the action's parameters (app ids, the template's parameter count, E.164 numbers, the
signature name for mainland numbers, no URL in a template variable) and answers success, or what
the test planned.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.standin import Plan, Received, StandIn

SERVICES = {  # host -> (service, version, actions)
    "sms.tencentcloudapi.com": ("sms", "2021-01-11", {"SendSms"}),
    "vms.tencentcloudapi.com": ("vms", "2020-09-02", {"SendTtsVoice"}),
}
MAX_SKEW_S = 300
_AUTH = re.compile(
    r"TC3-HMAC-SHA256 Credential=(?P<id>[^/\s]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>[a-z]+)/tc3_request,"
    r" "
    r"SignedHeaders=(?P<signed>[a-z0-9;\-]+), Signature=(?P<sig>[0-9a-f]{64})"
)
_E164 = re.compile(r"\+[1-9]\d{7,14}")
_URL = re.compile(r"https?://|www\.|\.(cn|com|net|org)\b", re.IGNORECASE)


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def expected_signature(
    secret_key: str, method: str, query: str, headers: Mapping[str, str], signed: list[str], body: bytes,
    timestamp: str, date: str, service: str,
) -> str:  # fmt: skip
    """Tencent's documented recipe, step by step, over the request as received."""
    canonical_headers = "".join(f"{name}:{headers[name].strip().lower()}\n" for name in signed)
    canonical = "\n".join(
        [method, "/", query, canonical_headers, ";".join(signed), hashlib.sha256(body).hexdigest()]
    )
    to_sign = "\n".join(
        ["TC3-HMAC-SHA256", timestamp, f"{date}/{service}/tc3_request",
         hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
    )  # fmt: skip
    key = _hmac(_hmac(_hmac(("TC3" + secret_key).encode("utf-8"), date), service), "tc3_request")
    return hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def check_signature(
    method: str, path: str, headers: Mapping[str, str], body: bytes, keys: Mapping[str, str], now: float
) -> str:
    """The service the request is for, or `Refused` with Tencent's error code. `headers` must be
    looked up case-insensitively (names lower case)."""
    h = {k.lower(): v for k, v in headers.items()}
    host = h.get("host", "")
    if host not in SERVICES:
        raise Refused("InvalidParameter", f"host {host!r} is not a Tencent Cloud API endpoint")
    service, _, _ = SERVICES[host]
    m = _AUTH.fullmatch(h.get("authorization", ""))
    if m is None:
        raise Refused("AuthFailure.InvalidAuthorization", "Authorization header is malformed")
    stamp = h.get("x-tc-timestamp", "")
    if not stamp.isdigit():
        raise Refused("MissingParameter", "X-TC-Timestamp missing")
    if abs(now - int(stamp)) > MAX_SKEW_S:
        raise Refused("AuthFailure.SignatureExpire", "signature expired: timestamp more than 5 minutes off")
    if m["date"] != datetime.fromtimestamp(int(stamp), UTC).strftime("%Y-%m-%d"):
        raise Refused(
            "AuthFailure.InvalidAuthorization", "credential date is not the UTC date of the timestamp"
        )
    if m["service"] != service:
        raise Refused(
            "AuthFailure.InvalidAuthorization", f"credential service {m['service']} is not {service}"
        )
    signed = m["signed"].split(";")
    if "content-type" not in signed or "host" not in signed or signed != sorted(signed):
        raise Refused(
            "AuthFailure.InvalidAuthorization", "SignedHeaders must list content-type and host, sorted"
        )
    if any(name not in h for name in signed):
        raise Refused("AuthFailure.InvalidAuthorization", "a signed header is missing")
    secret_key = keys.get(m["id"])
    if secret_key is None:
        raise Refused("AuthFailure.SecretIdNotFound", "the SecretId does not exist")
    path_part, _, query = path.partition("?")
    if path_part != "/":
        raise Refused("InvalidParameter", "API 3.0 requests go to /")
    want = expected_signature(secret_key, method, query, h, signed, body, stamp, m["date"], service)
    if not hmac.compare_digest(want, m["sig"]):
        raise Refused("AuthFailure.SignatureFailure", "the provided credentials could not be validated")
    return host


@dataclass
class TencentCloud(StandIn):
    """Serves sms.* and vms.* (chosen by the Host header) on one local port."""

    secret_id: str = field(default_factory=lambda: "AKID" + secrets.token_hex(16))
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    sms_app_id: str = "1400000001"
    sign_name: str = "急救呼叫"
    templates: dict[str, int] = field(default_factory=lambda: {"1000001": 4, "1000002": 5})  # id -> params
    voice_app_id: str = "1400000002"
    voice_templates: dict[str, int] = field(default_factory=lambda: {"2000001": 3})
    clock: Callable[[], float] = time.time

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if not r.verdict]

    def answer(self, req: Received) -> tuple[int, str, bytes]:
        request_id = secrets.token_hex(8)
        headers = {k: v for k, v in req.headers.items()}
        try:
            host = check_signature(req.method, req.path, headers, req.body, {self.secret_id: self.secret_key},
                                   self.clock())  # fmt: skip
            _, version, actions = SERVICES[host]
            h = {k.lower(): v for k, v in headers.items()}
            action = h.get("x-tc-action", "")
            if action not in actions:
                raise Refused("InvalidAction", f"action {action!r} not found")
            if h.get("x-tc-version") != version:
                raise Refused(
                    "NoSuchVersion", f"version {h.get('x-tc-version')!r} of {action} does not exist"
                )
            if not h.get("x-tc-region"):
                raise Refused("MissingParameter", "X-TC-Region missing")
            if not h.get("content-type", "").startswith("application/json"):
                raise Refused("InvalidParameter", "Content-Type must be application/json")
            try:
                req.json = json.loads(req.body)
            except ValueError:
                raise Refused("InvalidParameter", "body is not JSON") from None
            plan = self.next_plan()
            self.pause(plan.delay_s)
            if plan.status != 200:
                req.verdict = f"planned HTTP {plan.status}"
                return plan.status, "text/plain", b"upstream failure"
            result = self._send_sms(req.json, plan) if action == "SendSms" else self._send_tts(req.json, plan)
        except Refused as exc:
            req.verdict = exc.code
            result = {"Error": {"Code": exc.code, "Message": exc.message}}
        return 200, "application/json", json.dumps({"Response": {**result, "RequestId": request_id}}).encode()

    def _send_sms(self, p: dict[str, Any], plan: Plan) -> dict[str, Any]:
        for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
            if not p.get(name):
                raise Refused("MissingParameter", f"{name} missing")
        if p["SmsSdkAppId"] != self.sms_app_id:
            raise Refused("InvalidParameterValue.SdkAppIdNotExist", "SmsSdkAppId does not exist")
        params = p.get("TemplateParamSet") or []
        if any(_URL.search(str(v)) for v in params):
            raise Refused("InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
                          "URLs are not allowed in template variables")  # fmt: skip
        if self.templates.get(p["TemplateId"]) != len(params):
            raise Refused("FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                          "template parameters do not match the approved template")  # fmt: skip
        if plan.code and plan.code.startswith(("InternalError", "FailedOperation", "AuthFailure")):
            raise Refused(plan.code, "planned by the test")
        statuses = []
        for number in p["PhoneNumberSet"]:
            if not _E164.fullmatch(str(number)):
                code = "InvalidParameterValue.IncorrectPhoneNumber"
            elif number.startswith("+86") and p.get("SignName") != self.sign_name:
                code = "FailedOperation.SignatureIncorrectOrUnapproved"
            else:
                code = plan.code or "Ok"
            statuses.append({
                "SerialNo": secrets.token_hex(10), "PhoneNumber": number, "Fee": 1,
                "SessionContext": p.get("SessionContext", ""), "Code": code,
                "Message": "send success" if code == "Ok" else "refused", "IsoCode": "CN",
            })  # fmt: skip
        return {"SendStatusSet": statuses}

    def _send_tts(self, p: dict[str, Any], plan: Plan) -> dict[str, Any]:
        for name in ("TemplateId", "CalledNumber", "VoiceSdkAppid"):
            if not p.get(name):
                raise Refused("MissingParameter", f"{name} missing")
        if p["VoiceSdkAppid"] != self.voice_app_id:
            raise Refused("InvalidParameterValue.SdkAppIdNotExist", "VoiceSdkAppid does not exist")
        if not _E164.fullmatch(str(p["CalledNumber"])):
            raise Refused("InvalidParameterValue.IncorrectPhoneNumber", "CalledNumber is not E.164")
        if self.voice_templates.get(p["TemplateId"]) != len(p.get("TemplateParamSet") or []):
            raise Refused("FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                          "template parameters do not match the approved template")  # fmt: skip
        if plan.code:
            raise Refused(plan.code, "planned by the test")
        return {
            "SendStatus": {"CallId": secrets.token_hex(12), "SessionContext": p.get("SessionContext", "")}
        }
