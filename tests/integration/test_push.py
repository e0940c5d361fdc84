"""Web Push end to end: subscriptions through the real app, pushes through the channel to a local
push service that verifies VAPID and decrypts like a browser (tests/support/push_service.py).

The ladder that decides when to push is not on this branch, so the channel is driven in-process
with the app's own PostgreSQL; the app serves the key and the subscriptions over real HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import pytest_asyncio

from core.config import Settings
from core.db import Database
from dispatch.channels.base import Attempt, Outcome
from dispatch.channels.push import PushChannel, topic_of
from dispatch.channels.push_keys import stored_private_key
from dispatch.frames import AlertView, alert_frame
from tests.support.db import fetch
from tests.support.people import bearer, register
from tests.support.push_service import Browser, PushService
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
SUBS = "/v1/responders/{}/push-subscriptions"


@pytest.fixture(scope="module")
def push_server(app_env: dict[str, str]) -> Iterator[ServerProcess]:
    """The app, accepting http:// push endpoints on loopback (the local push service)."""
    server = ServerProcess(env={**app_env, "DISPATCH_PUSH_ALLOW_HTTP_LOOPBACK": "1"}).start()
    yield server
    server.stop()


@pytest.fixture
def api(push_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=push_server.url, timeout=30.0) as client:
        yield client


@pytest.fixture(scope="module")
def service() -> Iterator[PushService]:
    with PushService() as running:
        yield running


@pytest_asyncio.fixture
async def channel(store_env: dict[str, str]) -> AsyncIterator[PushChannel]:
    settings = Settings(database_url=store_env["DATABASE_URL"], push_backoff_s=0.2, push_tries=10)
    db = Database(settings.database_url, pool_size=2)
    push = PushChannel(settings, db)
    yield push
    await push.aclose()
    await db.dispose()


def public_key(api: httpx.Client, headers: dict[str, str]) -> str:
    r = api.get("/v1/push/vapid-public-key", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()["public_key"]


def subscribed(api: httpx.Client, service: PushService, person: dict, devices: int = 1) -> list[Browser]:
    """`devices` fake browsers of this responder, subscribed through the API as the page does."""
    me = bearer(person["token"])
    key = public_key(api, me)
    browsers = [service.subscribe(key) for _ in range(devices)]
    for browser in browsers:
        r = api.post(SUBS.format(person["id"]), json=browser.subscription(), headers=me)
        assert r.status_code == 201, r.text
    return browsers


def attempt(person: dict, life_s: float = 120.0) -> Attempt:
    view = AlertView(
        alert_id=str(uuid.uuid4()),
        incident_id=str(uuid.uuid4()),
        responder_id=person["id"],
        role="cpr",
        status="sent",
        eta_s=142.4,
        distance_m=210.2,
        expires_at=datetime.now(UTC) + timedelta(seconds=life_s),
        category="cardiac_arrest",
        lat=22.5431,
        lng=114.0579,
        address="Futian Civic Centre, gate 3",
        note="collapsed by the fountain",
        aed=None,
    )
    return Attempt(alert=view, phone=None, link=None, step=1)


def listed(api: httpx.Client, person: dict) -> list[dict]:
    r = api.get(SUBS.format(person["id"]), headers=bearer(person["token"]))
    assert r.status_code == 200, r.text
    return r.json()


# --- the VAPID key ---------------------------------------------------------------------------------


async def test_the_public_key_is_a_p256_point_shared_by_the_app_and_every_reader(
    api, admin_headers, token_for, channel
) -> None:
    key = public_key(api, token_for("dispatcher"))
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    assert len(raw) == 65 and raw[0] == 4
    assert public_key(api, admin_headers) == key
    assert await channel.public_key() == key  # read from PostgreSQL, as another worker would
    assert api.get("/v1/push/vapid-public-key").status_code == 401


async def test_workers_starting_at_once_agree_on_one_key(store_env) -> None:
    """Eight workers' first starts race on an empty table; all must end with the same key."""
    url = store_env["DATABASE_URL"]
    (kept,) = await fetch(url, "SELECT private_key FROM push_vapid_keys WHERE id = 1")
    await fetch(url, "DELETE FROM push_vapid_keys")
    databases = [Database(url, pool_size=1) for _ in range(8)]
    try:
        keys = await asyncio.gather(*(stored_private_key(db) for db in databases))
        assert len(set(keys)) == 1
        assert [
            r["private_key"] for r in await fetch(url, "SELECT private_key FROM push_vapid_keys")
        ] == keys[:1]
    finally:
        await asyncio.gather(*(db.dispose() for db in databases))
        await fetch(url, "UPDATE push_vapid_keys SET private_key = $1", kept["private_key"])  # the app's key


# --- subscriptions -------------------------------------------------------------------------------


def test_a_responder_keeps_several_devices_and_the_same_endpoint_updates(api, admin_headers, service) -> None:
    person = register(api, admin_headers)
    me = bearer(person["token"])
    phone, tablet = subscribed(api, service, person, devices=2)
    first = listed(api, person)
    assert {s["endpoint"] for s in first} == {phone.endpoint, tablet.endpoint}
    assert "auth" not in first[0]
    renewed = service.subscribe(phone.application_server_key)  # the browser made new keys
    again = api.post(
        SUBS.format(person["id"]), json={**renewed.subscription(), "endpoint": phone.endpoint}, headers=me
    )
    assert again.status_code == 201
    assert again.json()["id"] == next(s["id"] for s in first if s["endpoint"] == phone.endpoint)
    after = {s["endpoint"]: s for s in listed(api, person)}
    assert len(after) == 2 and after[phone.endpoint]["p256dh"] == renewed.p256dh
    gone = api.delete(SUBS.format(person["id"]) + f"/{again.json()['id']}", headers=me)
    assert gone.status_code == 204
    assert [s["endpoint"] for s in listed(api, person)] == [tablet.endpoint]
    assert api.delete(SUBS.format(person["id"]) + f"/{again.json()['id']}", headers=me).status_code == 404


def test_only_the_responder_and_admins_touch_subscriptions(api, admin_headers, token_for, service) -> None:
    person, other = register(api, admin_headers), register(api, admin_headers)
    (browser,) = subscribed(api, service, person)
    (sub,) = listed(api, person)
    path = SUBS.format(person["id"])
    for headers in (bearer(other["token"]), token_for("dispatcher"), token_for("gateway")):
        assert api.get(path, headers=headers).status_code == 403
        assert (
            api.post(
                path, json=service.subscribe(browser.application_server_key).subscription(), headers=headers
            ).status_code
            == 403
        )
        assert api.delete(f"{path}/{sub['id']}", headers=headers).status_code == 403
    # another responder cannot delete it through their own path either
    assert (
        api.delete(SUBS.format(other["id"]) + f"/{sub['id']}", headers=bearer(other["token"])).status_code
        == 404
    )
    assert [s["id"] for s in api.get(path, headers=admin_headers).json()] == [sub["id"]]
    added = api.post(
        path, json=service.subscribe(browser.application_server_key).subscription(), headers=admin_headers
    )
    assert added.status_code == 201
    assert api.delete(f"{path}/{added.json()['id']}", headers=admin_headers).status_code == 204
    assert api.get(SUBS.format(uuid.uuid4()), headers=admin_headers).status_code == 404
    assert api.post(path, json=browser.subscription()).status_code == 401


def test_bad_subscriptions_are_refused_naming_the_field(api, admin_headers, service) -> None:
    person = register(api, admin_headers)
    me, path = bearer(person["token"]), SUBS.format(person["id"])
    good = service.subscribe("unused").subscription()
    not_on_curve = base64.urlsafe_b64encode(b"\x04" + secrets.token_bytes(64)).rstrip(b"=").decode()
    cases = {
        "keys.p256dh": {**good, "keys": {**good["keys"], "p256dh": not_on_curve}},
        "keys.auth": {**good, "keys": {**good["keys"], "auth": "c2hvcnQ"}},
        "endpoint": {**good, "endpoint": "http://push.example.com/send/abc"},  # not https
    }
    for field, body in cases.items():
        r = api.post(path, json=body, headers=me)
        assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:"), (field, r.text)
    compressed = {**good, "keys": {**good["keys"], "p256dh": "A" + good["keys"]["p256dh"][1:44]}}
    assert "keys.p256dh" in api.post(path, json=compressed, headers=me).json()["detail"]
    assert "keys" in api.post(path, json={"endpoint": good["endpoint"]}, headers=me).json()["detail"]
    assert api.post(path, json={**good, "extra": 1}, headers=me).status_code == 422
    assert listed(api, person) == []


# --- sending -------------------------------------------------------------------------------------


async def test_an_alert_reaches_every_device_encrypted_with_the_right_headers(
    api, admin_headers, service, channel
) -> None:
    person = register(api, admin_headers)
    phone, tablet = subscribed(api, service, person, devices=2)
    tried = attempt(person)
    result = await channel.send(tried)
    assert result.outcome is Outcome.sent and result.detail.startswith("2 of 2"), result
    assert result.provider_id and result.provider_id.startswith(service.origin)
    frame = alert_frame(tried.alert)
    for browser in (phone, tablet):
        (got,) = service.received(browser)
        assert got.payload == frame  # decrypted with the browser's own keys
        assert got.payload["type"] == "alert" and "address" not in got.payload and "note" not in got.payload
        for key in ("alert_id", "incident_id", "role", "category", "eta_s", "distance_m", "expires_at"):
            assert got.payload[key] == frame[key]
        assert got.headers["Urgency"] == "high"
        assert 100 <= int(got.headers["TTL"]) <= 120
        assert got.headers["Topic"] == topic_of(tried.alert.alert_id) and len(got.headers["Topic"]) <= 32
        assert got.headers["Content-Encoding"] == "aes128gcm"
        assert got.claims["aud"] == service.origin and got.claims["exp"] <= time.time() + 24 * 3600
    again = await channel.send(tried)  # a resend of the same alert replaces the undelivered one
    assert again.outcome is Outcome.sent
    assert list(service.pending[phone.token]) == [topic_of(tried.alert.alert_id)]
    assert len(service.received(phone)) == 2


async def test_gone_subscriptions_are_removed(api, admin_headers, service, channel) -> None:
    person = register(api, admin_headers)
    kept, uninstalled, expired = subscribed(api, service, person, devices=3)
    service.answer(uninstalled, 410)
    service.answer(expired, 404)
    result = await channel.send(attempt(person))
    assert result.outcome is Outcome.sent and "2 gone" in result.detail, result
    assert [s["endpoint"] for s in listed(api, person)] == [kept.endpoint]
    service.answer(kept, 410)
    result = await channel.send(attempt(person))
    assert result.outcome is Outcome.unreachable and listed(api, person) == []
    assert (await channel.send(attempt(person))).outcome is Outcome.unreachable


async def test_too_many_requests_is_retried_after_retry_after(api, admin_headers, service, channel) -> None:
    person = register(api, admin_headers)
    (browser,) = subscribed(api, service, person)
    service.answer(browser, 429, retry_after="1")
    result = await channel.send(attempt(person))
    assert result.outcome is Outcome.sent, result
    first, second = service.of(browser)
    assert (first.status, second.status) == (429, 201)
    assert second.arrived - first.arrived >= 0.9


async def test_a_failing_push_service_is_retried_until_the_alert_expires(
    api, admin_headers, service, channel
) -> None:
    person = register(api, admin_headers)
    (browser,) = subscribed(api, service, person)
    service.answer(browser, *[500] * 50)
    tried = attempt(person, life_s=3.0)
    result = await channel.send(tried)
    assert result.outcome is Outcome.provider_error and "500" in result.detail, result
    requests = service.of(browser)
    assert len(requests) >= 3 and all(r.status == 500 for r in requests)  # backed off: 0.2, 0.4, 0.8 s...
    assert max(r.arrived for r in requests) < tried.alert.expires_at.timestamp()
    assert len(listed(api, person)) == 1  # a server error is no reason to forget the device
    browser.answers.clear()


async def test_a_responder_without_subscriptions_is_unreachable(api, admin_headers, channel) -> None:
    result = await channel.send(attempt(register(api, admin_headers)))
    assert result.outcome is Outcome.unreachable and result.detail == "no push subscription"
