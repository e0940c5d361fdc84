"""Receipts and answers without a socket: only the phone's receipt makes an alert `delivered`;
the HTTP receipt and answer take the responder's token or the alert's one-time code.

Real app over HTTP and websockets, real PostgreSQL and Redis. One-time codes are issued the way
the ladder issues them (`dispatch.channels.codes.issue`) in this process, against the same
database, since only an SMS or a voice call carries them to a phone.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from typing import Any

import httpx
import pytest

from core.db import Database
from dispatch.channels import codes
from dispatch.models import Alert
from tests.support.db import fetch
from tests.support.people import bearer, on_duty_at
from tests.support.phones import Console, Phone
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration


def remote_spot() -> tuple[float, float]:
    """Somewhere far from every other test's responders (the database is shared)."""
    return random.uniform(-45, 45), random.uniform(-170, 170)


def desk(http: httpx.Client, admin: dict[str, str]) -> dict[str, str]:
    r = http.post("/v1/tokens", json={"role": "dispatcher", "label": "receipts desk"}, headers=admin)
    assert r.status_code == 201, r.text
    return bearer(r.json()["token"])


def alert_one(http: httpx.Client, admin: dict[str, str], dispatcher: dict[str, str]) -> tuple[dict, dict]:
    """One responder on duty beside a new incident, and the incident alerting only them."""
    lat, lng = remote_spot()
    person = on_duty_at(http, admin, lat + 0.0005, lng)
    r = http.post(
        "/v1/incidents",
        json={"lat": lat, "lng": lng, "category": "cardiac_arrest", "address": "Gate 7"},
        headers=dispatcher,
    )
    assert r.status_code == 201, r.text
    incident = r.json()
    assert [a["responder_id"] for a in incident["alerts"]] == [person["id"]]
    return person, incident


async def issue_code(alert_id: str, channel: str = "sms") -> str:
    """A one-time code for the alert, issued and committed as the ladder does for an SMS."""
    db = Database(os.environ["DATABASE_URL"], pool_size=1)
    try:
        async with db.sessions() as session:
            alert = await session.get(Alert, uuid.UUID(alert_id))
            assert alert is not None
            plain = codes.issue(session, alert, channel)
            await session.commit()
        return plain
    finally:
        await db.dispose()


async def alert_row(alert_id: str) -> dict[str, Any]:
    rows = await fetch(
        os.environ["DATABASE_URL"],
        "SELECT status, delivered_via FROM alerts WHERE id = $1",
        uuid.UUID(alert_id),
    )
    return dict(rows[0])


async def test_a_half_open_socket_is_not_delivered_until_the_phone_confirms(
    live_server: ServerProcess, http: httpx.Client, admin_headers: dict[str, str]
) -> None:
    dispatcher = desk(http, admin_headers)
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, lat + 0.0005, lng)
    console_token = dispatcher["Authorization"].split()[1]
    async with (
        Phone(live_server.ws_url, person["token"], confirm=False) as phone,
        Console(live_server.ws_url, console_token) as console,
    ):
        r = http.post(
            "/v1/incidents", json={"lat": lat, "lng": lng, "category": "choking"}, headers=dispatcher
        )
        assert r.status_code == 201, r.text
        incident = r.json()
        alert = await phone.next(type_="alert")  # read, never confirmed: a phone in a lift
        attempt = await console.wait_for(incident["id"], "attempt")
        assert attempt["data"]["channel"] == "socket" and attempt["data"]["outcome"] == "sent"
        assert attempt["data"]["alert_id"] == alert["alert_id"]
        await asyncio.sleep(1.0)  # time for the old code's `delivered` to land, had it been written
        assert await alert_row(alert["alert_id"]) == {"status": "sent", "delivered_via": None}
        kinds = [
            e["kind"]
            for e in http.get(f"/v1/incidents/{incident['id']}", headers=dispatcher).json()["events"]
        ]
        assert "delivered" not in kinds

        await phone.send({"type": "received", "alert_id": alert["alert_id"]})
        delivered = await console.wait_for(incident["id"], "delivered")
        assert delivered["data"]["delivered_via"] == "socket"
        assert await alert_row(alert["alert_id"]) == {"status": "delivered", "delivered_via": "socket"}
        # a second receipt (another channel got through too) changes nothing and logs nothing
        await phone.send({"type": "received", "alert_id": alert["alert_id"]})
        assert await phone.silent(0.5)
        await phone.send({"type": "received", "alert_id": "not-a-uuid"})
        assert (await phone.next(type_="error"))["field"] == "alert_id"
    detail = http.get(f"/v1/incidents/{incident['id']}", headers=dispatcher).json()
    assert [e["kind"] for e in detail["events"]].count("delivered") == 1
    assert detail["alerts"][0]["delivered_via"] == "socket"
    metrics = http.get("/metrics").text  # what the operator watches
    assert 'alert_attempts_total{channel="socket",outcome="sent"}' in metrics
    assert 'alert_receipt_seconds_count{channel="socket"}' in metrics


async def test_http_receipt_and_answer_with_the_responders_token(
    http: httpx.Client, admin_headers: dict[str, str]
) -> None:
    dispatcher = desk(http, admin_headers)
    person, incident = alert_one(http, admin_headers, dispatcher)
    other, _ = alert_one(http, admin_headers, dispatcher)
    alert_id = incident["alerts"][0]["alert_id"]
    me = bearer(person["token"])

    # only the alert's own responder: no token, another responder, a dispatcher
    assert http.post(f"/v1/alerts/{alert_id}/received").status_code == 401
    assert http.post(f"/v1/alerts/{alert_id}/received", headers=bearer(other["token"])).status_code == 403
    assert http.post(f"/v1/alerts/{alert_id}/received", headers=dispatcher).status_code == 403
    assert http.post(f"/v1/alerts/{uuid.uuid4()}/received", headers=me).status_code == 404
    r = http.post(f"/v1/alerts/{alert_id}/received", json={"channel": "pigeon"}, headers=me)
    assert r.status_code == 422 and "channel" in r.json()["detail"]
    assert await alert_row(alert_id) == {"status": "sent", "delivered_via": None}

    r = http.post(f"/v1/alerts/{alert_id}/received", json={"channel": "push"}, headers=me)
    assert r.status_code == 200, r.text
    assert r.json() == {"alert_id": alert_id, "status": "delivered", "delivered_via": "push"}
    again = http.post(f"/v1/alerts/{alert_id}/received", headers=me)  # no body: the app; no change
    assert again.json() == {"alert_id": alert_id, "status": "delivered", "delivered_via": "push"}

    read = http.get(f"/v1/alerts/{alert_id}", headers=me).json()
    assert read["alert"]["type"] == "alert" and read["incident"] is None
    assert "address" not in read["alert"] and "Gate 7" not in str(read)

    r = http.post(f"/v1/alerts/{alert_id}/answer", json={"response": "maybe"}, headers=me)
    assert r.status_code == 422 and "response" in r.json()["detail"]
    r = http.post(
        f"/v1/alerts/{alert_id}/answer", json={"response": "accept"}, headers=bearer(other["token"])
    )
    assert r.status_code == 403
    r = http.post(f"/v1/alerts/{alert_id}/answer", json={"response": "accept"}, headers=me)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["alert_id"] == alert_id and body["status"] == "accepted"
    assert body["incident"]["type"] == "incident" and body["incident"]["address"] == "Gate 7"
    assert (body["incident"]["lat"], body["incident"]["lng"]) == (
        pytest.approx(incident["lat"]),
        pytest.approx(incident["lng"]),
    )
    assert (
        http.post(f"/v1/alerts/{alert_id}/answer", json={"response": "decline"}, headers=me).status_code
        == 409
    )
    # a receipt after the answer is fine and changes nothing
    late = http.post(f"/v1/alerts/{alert_id}/received", json={"channel": "sms"}, headers=me)
    assert late.status_code == 200 and late.json()["status"] == "accepted"
    assert late.json()["delivered_via"] == "push"
    assert http.get(f"/v1/alerts/{alert_id}", headers=me).json()["incident"]["address"] == "Gate 7"


async def test_an_answer_without_a_receipt_records_how_the_alert_was_reached(
    http: httpx.Client, admin_headers: dict[str, str]
) -> None:
    dispatcher = desk(http, admin_headers)
    person, incident = alert_one(http, admin_headers, dispatcher)
    alert_id = incident["alerts"][0]["alert_id"]
    r = http.post(
        f"/v1/alerts/{alert_id}/answer", json={"response": "decline"}, headers=bearer(person["token"])
    )
    assert r.status_code == 200 and r.json() == {"alert_id": alert_id, "status": "declined", "incident": None}
    assert await alert_row(alert_id) == {"status": "declined", "delivered_via": "app"}
    detail = http.get(f"/v1/incidents/{incident['id']}", headers=dispatcher).json()
    declined = next(e for e in detail["events"] if e["kind"] == "declined")
    assert declined["data"]["delivered_via"] == "app"


async def test_a_one_time_code_opens_one_alert_answers_once_then_only_reads(
    http: httpx.Client, admin_headers: dict[str, str]
) -> None:
    dispatcher = desk(http, admin_headers)
    _, incident = alert_one(http, admin_headers, dispatcher)
    _, elsewhere = alert_one(http, admin_headers, dispatcher)
    alert_id, other_alert = incident["alerts"][0]["alert_id"], elsewhere["alerts"][0]["alert_id"]
    code = await issue_code(alert_id, "sms")
    by_code = {"X-Alert-Code": code}

    # wrong and foreign codes are refused, with no token needed to be told so
    for path in (f"/v1/alerts/{alert_id}", f"/v1/alerts/{alert_id}/received"):
        method = http.get if path.endswith(alert_id) else http.post
        assert method(path, headers={"X-Alert-Code": "not-a-code"}).status_code == 401
    refused = http.post(f"/v1/alerts/{other_alert}/answer", json={"response": "accept"}, headers=by_code)
    assert refused.status_code == 403 and "another alert" in refused.json()["detail"]
    assert (await alert_row(other_alert))["status"] == "sent"

    read = http.get(f"/v1/alerts/{alert_id}", headers=by_code)
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "sent" and read.json()["incident"] is None
    assert read.json()["alert"]["category"] == "cardiac_arrest" and "Gate 7" not in read.text

    r = http.post(f"/v1/alerts/{alert_id}/received", headers=by_code)  # the SMS link was opened
    assert r.status_code == 200 and r.json()["delivered_via"] == "sms"

    r = http.post(f"/v1/alerts/{alert_id}/answer", json={"response": "accept"}, headers=by_code)
    assert r.status_code == 200, r.text
    assert r.json()["incident"]["address"] == "Gate 7"
    twice = http.post(f"/v1/alerts/{alert_id}/answer", json={"response": "decline"}, headers=by_code)
    assert twice.status_code == 409
    assert (await alert_row(alert_id))["status"] == "accepted"
    # after its answer the code only reads: the exact place, for the responder on the way
    assert http.get(f"/v1/alerts/{alert_id}", headers=by_code).json()["incident"]["address"] == "Gate 7"

    # a second code of the same alert (the voice call's) cannot answer an answered alert either
    voice = {"X-Alert-Code": await issue_code(alert_id, "voice")}
    r = http.post(f"/v1/alerts/{alert_id}/answer", json={"response": "decline"}, headers=voice)
    assert r.status_code == 409 and (await alert_row(alert_id))["status"] == "accepted"

    # the code dies with the alert: closing the incident cancels it
    assert http.post(f"/v1/incidents/{incident['id']}/close", headers=dispatcher).status_code == 200
    dead = http.get(f"/v1/alerts/{alert_id}", headers=by_code)
    assert dead.status_code == 401 and "expired" in dead.json()["detail"]


async def test_a_code_expires_with_its_alert(http: httpx.Client, admin_headers: dict[str, str]) -> None:
    dispatcher = desk(http, admin_headers)
    _, incident = alert_one(http, admin_headers, dispatcher)
    alert_id = incident["alerts"][0]["alert_id"]
    by_code = {"X-Alert-Code": await issue_code(alert_id, "sms")}
    assert http.get(f"/v1/alerts/{alert_id}", headers=by_code).status_code == 200
    await fetch(
        os.environ["DATABASE_URL"],
        "UPDATE alerts SET expires_at = now() - interval '1 second' WHERE id = $1",
        uuid.UUID(alert_id),
    )
    for r in (
        http.get(f"/v1/alerts/{alert_id}", headers=by_code),
        http.post(f"/v1/alerts/{alert_id}/received", headers=by_code),
        http.post(f"/v1/alerts/{alert_id}/answer", json={"response": "accept"}, headers=by_code),
    ):
        assert r.status_code == 401 and "expired" in r.json()["detail"], r.text
    assert (await alert_row(alert_id))["status"] in ("sent", "expired")
