"""The stand-ins for Tencent Cloud and the webhook gateway refuse what the real ones would refuse
(over real local HTTP, no stores needed)."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from core import signing
from dispatch.channels import tc3
from tests.support.sms_gateway import SmsGateway
from tests.support.standin import Plan
from tests.support.tencent_cloud import TencentCloud

SMS = {
    "PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400000001", "SignName": "急救呼叫",
    "TemplateId": "1000001", "TemplateParamSet": ["心脏骤停", "350米", "3分钟", "alert=a1&code=c1"],
}  # fmt: skip


def tencent_post(cloud: TencentCloud, *, key: str | None = None, host: str = "sms.tencentcloudapi.com",
                 send_host: str | None = None, ts: int | None = None, action: str = "SendSms",
                 params: dict | None = None) -> dict:  # fmt: skip
    payload = json.dumps(params or SMS, ensure_ascii=False).encode()
    headers = tc3.request_headers(cloud.secret_id, key or cloud.secret_key, host=host, action=action,
                                  version="2021-01-11", region="ap-guangzhou",
                                  timestamp=ts or int(time.time()), payload=payload)  # fmt: skip
    if send_host:
        headers["Host"] = send_host
    r = httpx.post(cloud.url + "/", content=payload, headers=headers, timeout=10)
    assert r.status_code == 200
    return r.json()["Response"]


def error_code(response: dict) -> str | None:
    return (response.get("Error") or {}).get("Code")


def test_tencent_stand_in_accepts_a_correct_request(cloud: TencentCloud) -> None:
    response = tencent_post(cloud)
    assert error_code(response) is None and response["SendStatusSet"][0]["Code"] == "Ok"
    assert response["RequestId"] and len(cloud.accepted) == 1


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"key": "not-the-secret"}, "AuthFailure.SignatureFailure"),
        ({"ts": int(time.time()) - 400}, "AuthFailure.SignatureExpire"),
        ({"host": "vms.tencentcloudapi.com", "send_host": "sms.tencentcloudapi.com"},
         "AuthFailure.InvalidAuthorization"),  # signed for the voice service, sent to SMS
        ({"send_host": "sms.tencentcloudapi.com.evil.example"}, "InvalidParameter"),
        ({"action": "SendTtsVoice"}, "InvalidAction"),
        ({"params": {**SMS, "TemplateParamSet": ["心脏骤停"]}},
         "FailedOperation.TemplateParamSetNotMatchApprovedTemplate"),
        ({"params": {**SMS, "SmsSdkAppId": "1400999999"}}, "InvalidParameterValue.SdkAppIdNotExist"),
        ({"params": {**SMS, "TemplateParamSet": ["心脏骤停", "350米", "3分钟", "https://x.cn/r?a=1"]}},
         "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter"),
    ],
)  # fmt: skip
def test_tencent_stand_in_refuses(cloud: TencentCloud, change: dict, code: str) -> None:
    assert error_code(tencent_post(cloud, **change)) == code
    assert cloud.received[-1].verdict == code and not cloud.accepted


def test_tencent_stand_in_refuses_a_body_changed_after_signing(cloud: TencentCloud) -> None:
    payload = json.dumps(SMS).encode()
    headers = tc3.request_headers(cloud.secret_id, cloud.secret_key, host="sms.tencentcloudapi.com",
                                  action="SendSms", version="2021-01-11", region="ap-guangzhou",
                                  timestamp=int(time.time()), payload=payload)  # fmt: skip
    tampered = payload.replace(b"+8613800138000", b"+8613900139000")
    r = httpx.post(cloud.url + "/", content=tampered, headers=headers, timeout=10)
    assert r.json()["Response"]["Error"]["Code"] == "AuthFailure.SignatureFailure"


def test_tencent_stand_in_plans(cloud: TencentCloud) -> None:
    cloud.plan(
        Plan(status=502), Plan(code="InternalError.Timeout"), Plan(code="LimitExceeded.PhoneNumberDailyLimit")
    )
    payload = json.dumps(SMS).encode()
    headers = tc3.request_headers(cloud.secret_id, cloud.secret_key, host="sms.tencentcloudapi.com",
                                  action="SendSms", version="2021-01-11", region="ap-guangzhou",
                                  timestamp=int(time.time()), payload=payload)  # fmt: skip
    assert httpx.post(cloud.url + "/", content=payload, headers=headers, timeout=10).status_code == 502
    assert error_code(tencent_post(cloud)) == "InternalError.Timeout"
    assert tencent_post(cloud)["SendStatusSet"][0]["Code"] == "LimitExceeded.PhoneNumberDailyLimit"


def gateway_post(gateway: SmsGateway, *, secret: str | None = None, t: int | None = None,
                 key: str | None = "k1", body: dict | None = None) -> httpx.Response:  # fmt: skip
    raw = json.dumps(
        body or {"to": "+8613800138000", "text": "急救", "alert_id": "a1", "kind": "sms"}
    ).encode()
    headers = {signing.HEADER: signing.sign(secret or gateway.secret, raw, t=t)}
    if key:
        headers[signing.IDEMPOTENCY_HEADER] = key
    return httpx.post(gateway.url + "/hook", content=raw, headers=headers, timeout=10)


def test_gateway_stand_in_accepts_once_per_idempotency_key(gateway: SmsGateway) -> None:
    first, again = gateway_post(gateway), gateway_post(gateway)
    assert first.status_code == again.status_code == 200 and first.json()["id"] == again.json()["id"]
    assert len(gateway.messages) == 1 and len(gateway.received) == 2


@pytest.mark.parametrize(
    ("change", "status", "verdict"),
    [
        ({"secret": "wrong"}, 401, "does not match"),
        ({"t": int(time.time()) - 3600}, 401, "off"),
        ({"key": None}, 400, "Idempotency-Key"),
        ({"body": {"to": "13800138000", "text": "x", "alert_id": "a", "kind": "sms"}}, 422, "E.164"),
        ({"body": {"to": "+8613800138000", "text": "x", "alert_id": "a", "kind": "fax"}}, 422, "kind"),
    ],
)
def test_gateway_stand_in_refuses(gateway: SmsGateway, change: dict, status: int, verdict: str) -> None:
    assert gateway_post(gateway, **change).status_code == status
    assert verdict in gateway.received[-1].verdict and not gateway.messages
