"""An alert climbs the ladder end to end: the app's own ladder, its real channels, faithful providers.

The app runs on a database of its own (no other server steps its alerts) with Web Push pointed at
the local push service (which verifies VAPID and decrypts as a browser would) and SMS and voice at
the local webhook gateway (which verifies `X-Rescue-Signature`). A phone holds a socket but never
confirms (half-open: a phone in a lift); only a receipt stops the climb.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.db import fresh_database
from tests.support.people import bearer, on_duty_at
from tests.support.phones import Phone
from tests.support.push_service import Browser, PushService
from tests.support.server import ServerProcess
from tests.support.sms_gateway import SmsGateway

pytestmark = pytest.mark.integration
RECEIPT_TIMEOUT_S, SMS_AFTER_S, VOICE_AFTER_S = 1, 3, 6
WAIT_S = 20.0


@pytest.fixture(scope="module")
def push_service() -> Iterator[PushService]:
    with PushService() as service:
        yield service


@pytest.fixture(scope="module")
def gateway() -> Iterator[SmsGateway]:
    with SmsGateway() as running:
        yield running


@pytest.fixture(scope="module")
def server(
    store_env: dict[str, str], app_env: dict[str, str], gateway: SmsGateway
) -> Iterator[ServerProcess]:
    with fresh_database(store_env["DATABASE_URL"], "reach") as url:
        env = {
            **app_env,
            "DATABASE_URL": url,
            "DISPATCH_REDIS_PREFIX": "rcreach" + secrets.token_hex(3),
            "DISPATCH_PUSH_ALLOW_HTTP_LOOPBACK": "1",
            "DISPATCH_RECEIPT_TIMEOUT_S": str(RECEIPT_TIMEOUT_S),
            "DISPATCH_SMS_AFTER_S": str(SMS_AFTER_S),
            "DISPATCH_VOICE_AFTER_S": str(VOICE_AFTER_S),
            "DISPATCH_SMS_PROVIDER": "webhook",
            "DISPATCH_VOICE_PROVIDER": "webhook",
            "DISPATCH_SMS_WEBHOOK_URL": gateway.url,
            "DISPATCH_SMS_WEBHOOK_SECRET": gateway.secret,
        }
        process = ServerProcess(env=env).start()
        try:
            yield process
        finally:
            process.stop()


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client


def responder_with_push(
    api: httpx.Client, admin: dict[str, str], service: PushService
) -> tuple[dict, Browser]:
    """An on-duty responder with a phone number and one browser subscribed as the app does it."""
    lat, lng = 22.5 + secrets.randbelow(10_000) / 1e5, 114.0 + secrets.randbelow(10_000) / 1e5
    person = on_duty_at(api, admin, lat, lng, phone="138 0013 8000")
    person["lat"], person["lng"] = lat, lng
    me = bearer(person["token"])
    key = api.get("/v1/push/vapid-public-key", headers=me).json()["public_key"]
    browser = service.subscribe(key)
    r = api.post(f"/v1/responders/{person['id']}/push-subscriptions", json=browser.subscription(), headers=me)
    assert r.status_code == 201, r.text
    return person, browser


def open_incident(api: httpx.Client, admin: dict[str, str], person: dict) -> dict[str, Any]:
    desk = bearer(
        api.post("/v1/tokens", json={"role": "dispatcher", "label": "reach"}, headers=admin).json()["token"]
    )
    r = api.post(
        "/v1/incidents",
        json={"lat": person["lat"] + 0.0005, "lng": person["lng"], "category": "cardiac_arrest"},
        headers=desk,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    assert [a["responder_id"] for a in incident["alerts"]] == [person["id"]]
    incident["desk"] = desk
    return incident


async def until(found: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            value = found()
            if value:
                return value
            await asyncio.sleep(0.1)


def texts_for(gateway: SmsGateway, alert_id: str, kind: str) -> list[dict[str, Any]]:
    return [
        r.json
        for r in list(gateway.received)
        if not r.verdict and r.json and r.json["alert_id"] == alert_id and r.json["kind"] == kind
    ]


def attempts(api: httpx.Client, incident: dict[str, Any]) -> list[dict[str, Any]]:
    detail = api.get(f"/v1/incidents/{incident['id']}", headers=incident["desk"]).json()
    return [e["data"] for e in detail["events"] if e["kind"] == "attempt"]


def alert_status(api: httpx.Client, incident: dict[str, Any]) -> str:
    detail = api.get(f"/v1/incidents/{incident['id']}", headers=incident["desk"]).json()
    return detail["alerts"][0]["status"]


async def test_a_half_open_phone_is_reached_by_push_then_sms_and_the_sms_receipt_stops_the_climb(
    server: ServerProcess,
    api: httpx.Client,
    admin_headers: dict,
    push_service: PushService,
    gateway: SmsGateway,
) -> None:
    person, browser = responder_with_push(api, admin_headers, push_service)
    async with Phone(server.ws_url, person["token"], confirm=False) as phone:
        incident = open_incident(api, admin_headers, person)
        opened = time.monotonic()
        alert_id = incident["alerts"][0]["alert_id"]
        assert (await phone.next(type_="alert"))["alert_id"] == alert_id  # written into the socket...
        pushed = await until(lambda: push_service.received(browser))
        pushed_after = time.monotonic() - opened
        assert alert_status(api, incident) == "sent"  # ...and pushed, but nobody confirmed it
        assert pushed[0].payload["alert_id"] == alert_id and "address" not in pushed[0].payload
        assert pushed[0].headers["Urgency"] == "high"
        (sms,) = await until(lambda: texts_for(gateway, alert_id, "sms"))
        sms_after = time.monotonic() - opened
        assert sms["to"] == "+8613800138000"
        code = re.search(rf"alert={alert_id}&code=([\w-]+)", sms["text"]).group(1)
        # the SMS link's page confirms with the code: delivered via SMS, the climb stops
        r = api.post(f"/v1/alerts/{alert_id}/received", json={}, headers={"X-Alert-Code": code})
        assert r.status_code == 200 and r.json()["delivered_via"] == "sms", r.text
        await asyncio.sleep(VOICE_AFTER_S - sms_after + 2)
    assert RECEIPT_TIMEOUT_S <= pushed_after < SMS_AFTER_S <= sms_after
    assert texts_for(gateway, alert_id, "voice") == []
    tried = [(a["channel"], a["outcome"]) for a in attempts(api, incident)]
    assert tried == [("socket", "sent"), ("push", "sent"), ("sms", "sent")]
    assert alert_status(api, incident) == "delivered"


async def test_the_service_workers_receipt_stops_the_climb_before_sms(
    server: ServerProcess,
    api: httpx.Client,
    admin_headers: dict,
    push_service: PushService,
    gateway: SmsGateway,
) -> None:
    person, browser = responder_with_push(api, admin_headers, push_service)
    incident = open_incident(api, admin_headers, person)  # no socket: push at once
    alert_id = incident["alerts"][0]["alert_id"]
    await until(lambda: push_service.received(browser))
    r = api.post(f"/v1/alerts/{alert_id}/received", json={"channel": "push"}, headers=bearer(person["token"]))
    assert r.status_code == 200 and r.json()["delivered_via"] == "push", r.text
    await asyncio.sleep(SMS_AFTER_S + 2)
    assert texts_for(gateway, alert_id, "sms") == []
    assert [a["channel"] for a in attempts(api, incident)] == ["push"]


async def test_a_gone_subscription_is_removed_and_the_climb_goes_on_to_sms(
    server: ServerProcess,
    api: httpx.Client,
    admin_headers: dict,
    push_service: PushService,
    gateway: SmsGateway,
) -> None:
    person, browser = responder_with_push(api, admin_headers, push_service)
    push_service.answer(browser, 410)  # the app was uninstalled
    incident = open_incident(api, admin_headers, person)
    alert_id = incident["alerts"][0]["alert_id"]
    await until(lambda: texts_for(gateway, alert_id, "sms"))
    subs = api.get(f"/v1/responders/{person['id']}/push-subscriptions", headers=bearer(person["token"]))
    assert subs.status_code == 200 and subs.json() == []
    tried = {a["channel"]: a["outcome"] for a in attempts(api, incident)}
    assert tried["push"] in ("unreachable", "provider_error") and tried["sms"] == "sent"


async def test_push_is_skipped_for_a_responder_without_a_device(
    server: ServerProcess, api: httpx.Client, admin_headers: dict, gateway: SmsGateway
) -> None:
    lat, lng = 22.6 + secrets.randbelow(10_000) / 1e5, 114.1 + secrets.randbelow(10_000) / 1e5
    person = on_duty_at(api, admin_headers, lat, lng, phone="+86 139 0013 9000")
    person["lat"], person["lng"] = lat, lng
    incident = open_incident(api, admin_headers, person)
    alert_id = incident["alerts"][0]["alert_id"]
    await until(lambda: texts_for(gateway, alert_id, "sms"))
    detail = api.get(f"/v1/incidents/{incident['id']}", headers=incident["desk"]).json()
    skipped = [e["data"] for e in detail["events"] if e["kind"] == "attempt_skipped"]
    assert [s["channel"] for s in skipped] == ["push"] and "subscription" in skipped[0]["detail"]
    assert [a["channel"] for a in attempts(api, incident)] == ["sms"]
