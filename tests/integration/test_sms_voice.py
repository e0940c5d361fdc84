"""SMS and voice calls for a real alert: the channels built from settings, sending through local
stand-ins of Tencent Cloud and of a webhook gateway that verify every signature.

The alert comes from a real incident opened over the API and read back from PostgreSQL as the
ladder will read it; the phone number is the one stored for the responder.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from core import signing
from core.config import Settings
from core.db import Database
from dispatch.channels import texts
from dispatch.channels.base import Attempt, Channel, Outcome
from dispatch.channels.sms import ChannelConfigError, build_sms, build_voice
from dispatch.frames import AlertView
from dispatch.service import alert_views
from tests.integration.test_dispatch import dispatcher, offset, remote_spot
from tests.support.db import fetch
from tests.support.people import bearer, on_duty_at
from tests.support.sms_gateway import SmsGateway
from tests.support.standin import Plan
from tests.support.tencent_cloud import TencentCloud

pytestmark = pytest.mark.integration
PREFIX = "https://rescue.example.cn/responder?"  # constant text in the approved Tencent template


@dataclasses.dataclass
class Alerted:
    view: AlertView
    phone: str | None
    link: str

    def attempt(self, step: int = 2, **changes: Any) -> Attempt:
        fields = {"alert": self.view, "phone": self.phone, "link": self.link, "step": step, **changes}
        return Attempt(**fields)


@pytest.fixture(scope="module")
async def alerted(live_server, admin_headers, store_env) -> dict[str, Alerted]:
    """A cardiac arrest with a CPR responder (mainland mobile typed with spaces), an AED runner
    (typed with dashes) and a responder without a number; their alerts as stored. Roles are
    decided at the accept: the runner, beside the AED, accepts first and is given it; the other
    accepts next and goes straight to the patient (which stands the third one down)."""
    http = httpx.Client(base_url=live_server.url, timeout=30)
    lat, lng = remote_spot()
    people = {
        "cpr": on_duty_at(http, admin_headers, *offset(lat, lng, 120, 0), phone="138 0013 8000"),
        "fetch_aed": on_duty_at(http, admin_headers, *offset(lat, lng, 150, 150), mode="ebike",
                                phone="139-0013-9000"),
        "none": on_duty_at(http, admin_headers, *offset(lat, lng, 0, 200)),
    }  # fmt: skip
    a_lat, a_lng = offset(lat, lng, 152, 152)
    r = http.post(
        "/v1/aeds",
        headers=admin_headers,
        json={"name": "市民中心地铁站B出口", "lat": a_lat, "lng": a_lng, "opening_hours": "24/7"},
    )
    assert r.status_code == 201, r.text
    r = http.post(
        "/v1/incidents",
        headers=dispatcher(http, admin_headers),
        json={"lat": lat, "lng": lng, "category": "cardiac_arrest", "address": "深南大道6008号 3栋"},
    )
    assert r.status_code == 201, r.text
    by_responder = {a["responder_id"]: a for a in r.json()["alerts"]}
    for role in ("fetch_aed", "cpr"):
        person = people[role]
        alert_id = by_responder[person["id"]]["alert_id"]
        answer = {"response": "accept"}
        r = http.post(f"/v1/alerts/{alert_id}/answer", json=answer, headers=bearer(person["token"]))
        assert r.status_code == 200 and r.json()["incident"]["role"] == role, r.text
    db = Database(store_env["DATABASE_URL"])
    try:
        async with db.sessions() as session:
            views = await alert_views(session, [uuid.UUID(a["alert_id"]) for a in by_responder.values()])
    finally:
        await db.engine.dispose()
    out = {}
    for key, person in people.items():
        view = next(v for v in views if v.responder_id == person["id"])
        [row] = await fetch(store_env["DATABASE_URL"], "SELECT phone FROM responders WHERE id = $1",
                            uuid.UUID(person["id"]))  # fmt: skip
        link = f"{PREFIX}alert={view.alert_id}&code={secrets.token_urlsafe(16)}"
        out[key] = Alerted(view, row["phone"], link)
    assert out["fetch_aed"].view.role == "fetch_aed" and out["cpr"].view.role == "cpr"
    return out


def tencent_settings(cloud: TencentCloud, **extra: Any) -> Settings:
    return Settings(
        sms_provider="tencent", voice_provider="tencent", tencent_secret_id=cloud.secret_id,
        tencent_secret_key=cloud.secret_key, tencent_endpoint_url=cloud.url,
        tencent_sms_sdk_app_id=cloud.sms_app_id, tencent_sms_sign_name=cloud.sign_name,
        tencent_sms_template_id="1000001", tencent_sms_aed_template_id="1000002",
        tencent_sms_link_prefix=PREFIX,
        tencent_voice_sdk_app_id=cloud.voice_app_id, tencent_voice_template_id="2000001",
        sms_retry_backoff_s=0.05, **extra,
    )  # fmt: skip


def webhook_settings(gateway: SmsGateway, **extra: Any) -> Settings:
    return Settings(
        sms_provider="webhook", voice_provider="webhook", sms_webhook_url=gateway.url + "/send",
        sms_webhook_secret=gateway.secret, sms_retry_backoff_s=0.05, **extra,
    )  # fmt: skip


async def send(channel: Channel | None, attempt: Attempt):  # type: ignore[no-untyped-def]
    assert channel is not None
    try:
        return await channel.send(attempt)
    finally:
        await channel.aclose()  # type: ignore[attr-defined]


def never_exact(raw: bytes, view: AlertView) -> None:
    text = raw.decode()
    assert view.address and view.address not in text
    assert f"{view.lat:.4f}" not in text and f"{view.lng:.4f}" not in text


async def test_tencent_sms_for_a_cpr_responder(alerted, cloud) -> None:
    a = alerted["cpr"]
    result = await send(build_sms(tencent_settings(cloud)), a.attempt())
    [req] = cloud.received
    assert req.verdict == "" and result.outcome is Outcome.sent, (req.verdict, result)
    assert req.headers["Host"] == "sms.tencentcloudapi.com" and req.headers["X-TC-Action"] == "SendSms"
    assert req.headers["X-TC-Version"] == "2021-01-11" and req.headers["X-TC-Region"] == "ap-guangzhou"
    body = req.json
    assert body["PhoneNumberSet"] == ["+8613800138000"]
    assert body["SmsSdkAppId"] == cloud.sms_app_id and body["SignName"] == cloud.sign_name
    assert body["TemplateId"] == "1000001"
    f = texts.facts(a.view, "zh")
    assert body["TemplateParamSet"] == ["心脏骤停", f.distance, f.eta, a.link.removeprefix(PREFIX)]
    assert body["TemplateParamSet"][3].startswith(f"alert={a.view.alert_id}&code=")
    assert f.distance == texts.distance_text(a.view.distance_m, "zh") and f.distance.endswith("米")
    assert body["SessionContext"] == f"{a.view.alert_id}:sms:2"
    assert result.provider_id and len(result.provider_id) == 20  # the SerialNo Tencent answered
    never_exact(req.body, a.view)


async def test_tencent_sms_for_an_aed_runner_names_the_aed(alerted, cloud) -> None:
    a = alerted["fetch_aed"]
    result = await send(build_sms(tencent_settings(cloud, sms_language="en")), a.attempt())
    assert result.outcome is Outcome.sent, result
    body = cloud.accepted[0].json
    assert body["PhoneNumberSet"] == ["+8613900139000"] and body["TemplateId"] == "1000002"
    assert body["TemplateParamSet"][0] == "cardiac arrest"
    assert body["TemplateParamSet"][3:] == ["市民中心地铁站B出口", a.link.removeprefix(PREFIX)]


async def test_tencent_voice_call(alerted, cloud) -> None:
    a = alerted["cpr"]
    result = await send(build_voice(tencent_settings(cloud)), a.attempt(step=3))
    [req] = cloud.received
    assert req.verdict == "" and result.outcome is Outcome.sent, (req.verdict, result)
    assert req.headers["Host"] == "vms.tencentcloudapi.com" and req.headers["X-TC-Action"] == "SendTtsVoice"
    assert req.headers["X-TC-Version"] == "2020-09-02"
    assert "/vms/tc3_request" in req.headers["Authorization"]
    body = req.json
    assert body["CalledNumber"] == "+8613800138000" and body["VoiceSdkAppid"] == cloud.voice_app_id
    assert body["TemplateId"] == "2000001" and body["PlayTimes"] == 2
    assert body["TemplateParamSet"] == texts.voice_params(a.view, "zh")
    assert a.link not in req.body.decode()
    assert result.provider_id and result.detail == "call placed by Tencent voice"


async def test_tencent_refusals_are_provider_errors_and_not_retried(alerted, cloud) -> None:
    wrong_key = tencent_settings(cloud).model_copy(update={"tencent_secret_key": SecretStr("not-the-key")})
    result = await send(build_sms(wrong_key), alerted["cpr"].attempt())
    assert result.outcome is Outcome.provider_error and result.detail.startswith(
        "AuthFailure.SignatureFailure"
    )
    assert len(cloud.received) == 1
    cloud.plan(Plan(code="LimitExceeded.PhoneNumberDailyLimit"))
    result = await send(build_sms(tencent_settings(cloud)), alerted["cpr"].attempt())
    assert (result.outcome, result.detail) == (
        Outcome.provider_error,
        "LimitExceeded.PhoneNumberDailyLimit: refused",
    )
    cloud.plan(Plan(code="FailedOperation.InsufficientBalanceInSmsPackage"))
    result = await send(build_voice(tencent_settings(cloud)), alerted["cpr"].attempt())
    assert result.outcome is Outcome.provider_error
    assert result.detail.startswith("FailedOperation.InsufficientBalanceInSmsPackage")
    assert len(cloud.received) == 3


async def test_tencent_sms_never_puts_a_url_in_a_template_variable(alerted, cloud) -> None:
    """Tencent refuses URLs in variables: with the link's start not in the template, nothing is sent;
    the stand-in refuses a whole link as Tencent does."""
    a = alerted["cpr"]
    other = a.attempt(link=a.link.replace("rescue.example.cn", "elsewhere.example.cn"))
    result = await send(build_sms(tencent_settings(cloud)), other)
    assert (result.outcome, cloud.received) == (Outcome.provider_error, [])
    whole = tencent_settings(cloud).model_copy(update={"tencent_sms_link_prefix": "https:"})
    result = await send(build_sms(whole), a.attempt())
    assert result.outcome is Outcome.provider_error
    assert result.detail.startswith("InvalidParameterValue.ProhibitedUseUrlInTemplateParameter")


async def test_tencent_5xx_and_internal_errors_are_retried_then_sent(alerted, cloud) -> None:
    cloud.plan(Plan(status=502), Plan(code="InternalError.Timeout"))
    result = await send(build_sms(tencent_settings(cloud)), alerted["cpr"].attempt())
    assert result.outcome is Outcome.sent, result
    assert [r.status for r in cloud.received] == [502, 200, 200]
    stamps = [r.headers["X-TC-Timestamp"] for r in cloud.received]
    assert all(abs(int(s) - time.time()) < 60 for s in stamps)  # each try signed afresh


async def test_webhook_sms_and_voice(alerted, gateway) -> None:
    a = alerted["fetch_aed"]
    settings = webhook_settings(gateway)
    sms = await send(build_sms(settings), a.attempt(step=2))
    voice = await send(build_voice(settings), a.attempt(step=3))
    assert sms.outcome is voice.outcome is Outcome.sent, (sms, voice)
    first, second = gateway.received
    assert first.path == "/send" and first.verdict == second.verdict == ""
    assert signing.verify(gateway.secret, first.body, first.headers[signing.HEADER]) > 0
    assert first.json == {
        "to": "+8613900139000",
        "text": texts.sms_text(a.view, a.link),
        "alert_id": a.view.alert_id,
        "kind": "sms",
    }
    assert "先取AED（市民中心地铁站B出口）" in first.json["text"] and a.link in first.json["text"]
    assert second.json["kind"] == "voice" and second.json["text"] == texts.voice_text(a.view)
    assert a.link not in second.json["text"]
    assert first.headers[signing.IDEMPOTENCY_HEADER] == f"{a.view.alert_id}:sms:2"
    assert second.headers[signing.IDEMPOTENCY_HEADER] == f"{a.view.alert_id}:voice:3"
    assert sms.provider_id == gateway.messages[f"{a.view.alert_id}:sms:2"]["id"]
    never_exact(first.body, a.view)


async def test_webhook_retries_with_the_same_idempotency_key(alerted, gateway) -> None:
    gateway.plan(Plan(status=503), Plan(status=500))
    result = await send(build_sms(webhook_settings(gateway)), alerted["cpr"].attempt())
    assert result.outcome is Outcome.sent, result
    assert [r.status for r in gateway.received] == [503, 500, 200]
    assert {r.headers[signing.IDEMPOTENCY_HEADER] for r in gateway.received} == {
        f"{alerted['cpr'].view.alert_id}:sms:2"
    }
    assert len(gateway.messages) == 1


async def test_webhook_timeout_is_retried(alerted, gateway) -> None:
    gateway.plan(Plan(delay_s=1.5))
    result = await send(build_sms(webhook_settings(gateway, sms_timeout_s=0.5)), alerted["cpr"].attempt())
    assert result.outcome is Outcome.sent, result
    assert len(gateway.messages) == 1


async def test_webhook_failures_are_provider_errors(alerted, gateway) -> None:
    gateway.plan(*[Plan(status=503)] * 3)
    result = await send(build_sms(webhook_settings(gateway)), alerted["cpr"].attempt())
    assert (result.outcome, result.detail) == (Outcome.provider_error, "gateway HTTP 503 (3 tries)")
    wrong = webhook_settings(gateway).model_copy(update={"sms_webhook_secret": SecretStr("not-the-secret")})
    result = await send(build_sms(wrong), alerted["cpr"].attempt())
    assert result.outcome is Outcome.provider_error and result.detail.startswith("gateway HTTP 401")
    assert len(gateway.received) == 4 and not gateway.messages  # a 4xx is not retried


async def test_retries_stop_at_the_alerts_expiry(alerted, gateway) -> None:
    """Ten retries allowed, backoff 0.4 s doubling, 1.5 s of alert left: tries at about 0, 0.4 and
    1.2 s, then the next wait would end past the expiry, so it stops there."""
    expires_at = datetime.now(UTC) + timedelta(seconds=1.5)
    soon = dataclasses.replace(alerted["cpr"].view, expires_at=expires_at)
    gateway.plan(*[Plan(status=503)] * 20)
    settings = webhook_settings(gateway, sms_retries=10).model_copy(update={"sms_retry_backoff_s": 0.4})
    result = await send(build_sms(settings), alerted["cpr"].attempt(alert=soon))
    assert result.outcome is Outcome.provider_error and result.detail.startswith("gateway HTTP 503")
    assert datetime.now(UTC) < expires_at + timedelta(seconds=0.5)
    assert 2 <= len(gateway.received) <= 3 and all(r.at < expires_at.timestamp() for r in gateway.received)
    over = dataclasses.replace(soon, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    tries = len(gateway.received)
    result = await send(build_voice(settings), alerted["cpr"].attempt(alert=over))
    assert (result.outcome, result.detail) == (
        Outcome.provider_error,
        "alert expired before the first try (0 tries)",
    )
    assert len(gateway.received) == tries


async def test_no_phone_number_is_unreachable_and_sends_nothing(alerted, cloud, gateway) -> None:
    nobody = alerted["none"]
    assert nobody.phone is None
    for channel in (
        build_sms(tencent_settings(cloud)),
        build_voice(tencent_settings(cloud)),
        build_sms(webhook_settings(gateway)),
        build_voice(webhook_settings(gateway)),
    ):
        result = await send(channel, nobody.attempt())
        assert result.outcome is Outcome.unreachable and result.detail == "no usable phone number"
        result = await send(channel, nobody.attempt(phone="12345"))
        assert result.outcome is Outcome.unreachable
    assert cloud.received == [] and gateway.received == []


def test_nothing_configured_builds_nothing() -> None:
    assert build_sms(Settings()) is None and build_voice(Settings()) is None


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({"sms_provider": "webhook"}, "DISPATCH_SMS_WEBHOOK_URL, DISPATCH_SMS_WEBHOOK_SECRET"),
        ({"voice_provider": "webhook", "sms_webhook_url": "https://gw"}, "DISPATCH_SMS_WEBHOOK_SECRET"),
        ({"sms_provider": "tencent", "tencent_sms_sdk_app_id": "1", "tencent_sms_sign_name": "s",
          "tencent_sms_template_id": "t", "tencent_sms_link_prefix": "https://x/responder?"},
         "DISPATCH_TENCENT_SECRET_ID, DISPATCH_TENCENT_SECRET_KEY"),
        ({"sms_provider": "tencent", "tencent_secret_id": "i", "tencent_secret_key": "k",
          "tencent_sms_sdk_app_id": "1", "tencent_sms_sign_name": "s", "tencent_sms_template_id": "t"},
         "DISPATCH_TENCENT_SMS_LINK_PREFIX"),
        ({"voice_provider": "tencent", "tencent_secret_id": "i", "tencent_secret_key": "k"},
         "DISPATCH_TENCENT_VOICE_SDK_APP_ID, DISPATCH_TENCENT_VOICE_TEMPLATE_ID"),
    ],
)  # fmt: skip
def test_a_provider_chosen_but_not_configured_stops_the_start(settings: dict, missing: str) -> None:
    with pytest.raises(ChannelConfigError, match=missing):
        (build_sms if "sms_provider" in settings else build_voice)(Settings(**settings))


def test_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISPATCH_SMS_PROVIDER", "webhook")
    monkeypatch.setenv("DISPATCH_SMS_WEBHOOK_URL", "https://gw.example/send")
    monkeypatch.setenv("DISPATCH_SMS_WEBHOOK_SECRET", "s3cret")
    channel = build_sms(Settings())
    assert channel is not None and channel.name == "sms" and build_voice(Settings()) is None
    assert json.dumps(Settings().sms_language) == '"zh"'
    assert "s3cret" not in repr(Settings()) and "s3cret" not in str(Settings().model_dump())
