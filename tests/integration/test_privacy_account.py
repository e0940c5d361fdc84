"""A responder's own data: the download holds everything kept about them and no secret; erasure
deletes the account while the incident record stays whole, with an anonymous stand-in.

Through the real app (the session's server), the stores inspected underneath. Debriefs are
written in SQL, as the aftercare piece's API is not on this branch; where the responder accepted
and the arrival events' fixes likewise (`tests.support.privacy.record_timeline_positions`).
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from core.auth import hash_token
from tests.support.db import fetch
from tests.support.people import bearer
from tests.support.privacy import (
    ARRIVAL_KINDS,
    Spot,
    accepted_alert,
    dispatcher,
    record_timeline_positions,
    redis_mentions,
    tables_mentioning,
)
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
SUBS = "/v1/responders/{}/push-subscriptions"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def subscribe_push(http: httpx.Client, person: dict) -> dict:
    """A browser's push subscription, as the app posts it (keys only the browser should keep)."""
    point = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    body = {
        "endpoint": f"https://fcm.googleapis.com/fcm/send/{secrets.token_urlsafe(16)}",
        "keys": {"p256dh": b64url(point), "auth": b64url(secrets.token_bytes(16))},
    }
    r = http.post(SUBS.format(person["id"]), json=body, headers=bearer(person["token"]))
    assert r.status_code == 201, r.text
    return body


async def add_debrief(url: str, person: dict, incident_id: str, alert_id: str, note: str) -> None:
    await fetch(
        url,
        "INSERT INTO debriefs (id, alert_id, incident_id, responder_id, went, injured, wants_support,"
        " note, answered_at, follow_up, follow_up_note)"
        " VALUES ($1, $2, $3, $4, 'hard', false, true, $5, now(), 'open', 'called back on Monday')",
        uuid.uuid4(),
        uuid.UUID(alert_id),
        uuid.UUID(incident_id),
        uuid.UUID(person["id"]),
        note,
    )


@pytest.fixture
async def story(http: httpx.Client, admin_headers: dict[str, str], live_server: ServerProcess) -> dict:
    """A responder with a phone number, a certificate, a team, an accepted alert whose timeline
    keeps their positions, a debrief with a note, a push subscription, on duty with a position."""
    desk = dispatcher(http, admin_headers)
    phone, note = f"138{secrets.randbelow(10**8):08d}", f"I keep seeing his face ({secrets.token_hex(4)})"
    name = f"Wang {secrets.token_hex(3)}"
    person, incident, alert_id = accepted_alert(
        http, admin_headers, desk, name=name, phone=phone, team="futian/privacy"
    )
    at = Spot.fresh()
    await record_timeline_positions(live_server.database_url, alert_id, at)
    await add_debrief(live_server.database_url, person, incident["id"], alert_id, note)
    push = subscribe_push(http, person)
    return {
        "person": person, "incident": incident, "alert_id": alert_id, "at": at, "desk": desk,
        "push": push, "phone": phone, "note": note, "name": name,
    }  # fmt: skip


OTHER = str(uuid.uuid4())


async def told_a_centre(url: str, story: dict) -> uuid.UUID:
    """An emergency centre's feedback about the incident, as `cad.outbox` keeps it (the stream's
    tallies and a body sent), naming the responder and someone else; the subscription's id."""
    person, incident_id = story["person"], uuid.UUID(story["incident"]["id"])
    me = {
        "responder_id": person["id"],
        "name": story["name"],
        "phone": story["phone"],
        "role": "cpr",
        "eta_s": 60.0,
    }
    other = {"responder_id": OTHER, "name": "Li Wei", "phone": "13800138000", "role": "cpr", "eta_s": 90.0}
    subscription = uuid.uuid4()
    await fetch(
        url,
        "INSERT INTO cad_subscriptions (id, agency, url, secret, created_at)"
        " VALUES ($1, 'test-centre', 'http://127.0.0.1:9/feedback', 'x', now())",
        subscription,
    )
    await fetch(
        url,
        "INSERT INTO cad_streams (subscription_id, incident_id, last_seq, tally)"
        " VALUES ($1, $2, 1, $3::jsonb)",
        subscription,
        incident_id,
        json.dumps({"accepted": 1, "responders": {person["id"]: me}}),
    )
    await fetch(
        url,
        "INSERT INTO cad_outbox (subscription_id, incident_id, seq, event, body, status, attempts,"
        " next_try_at, created_at, delivered_at)"
        " VALUES ($1, $2, 1, 'answered', $3::jsonb, 'delivered', 1, now(), now(), now())",
        subscription,
        incident_id,
        json.dumps({"accepted": 2, "responders": [me, other]}),
    )
    return subscription


def download(http: httpx.Client, person: dict, headers: dict[str, str]) -> httpx.Response:
    return http.get(f"/v1/responders/{person['id']}/data", headers=headers)


async def test_the_download_holds_everything_about_them_and_no_secret(
    http: httpx.Client, admin_headers: dict[str, str], story: dict, live_server: ServerProcess
) -> None:
    person, me = story["person"], bearer(story["person"]["token"])
    r = download(http, person, me)
    assert r.status_code == 200, r.text
    assert r.headers["content-disposition"] == f'attachment; filename="responder-{person["id"]}-data.json"'
    doc = r.json()
    assert doc["profile"]["id"] == person["id"] and doc["profile"]["phone"] == story["phone"]
    assert doc["profile"]["external_id"] == person["external_id"] and doc["profile"]["on_duty"] is True
    assert doc["team"]["path"].endswith("futian/privacy")
    assert [c["number"] for c in doc["certificates"]] == [c["number"] for c in person["certificates"]]
    assert doc["live_position"] is not None  # on duty: the live position is held, so it is theirs to see
    assert len(doc["duty_sessions"]) == 1 and doc["duty_sessions"][0]["ended_at"] is None
    (alert,) = doc["alerts"]
    assert alert["id"] == story["alert_id"] and alert["incident_id"] == story["incident"]["id"]
    assert alert["status"] == "accepted" and alert["answered_at"] is not None
    assert (alert["accepted_lat"], alert["accepted_lng"]) == (story["at"].lat, story["at"].lng)
    kinds = [e["kind"] for e in alert["events"]]
    assert kinds[0] == "alert_sent" and kinds[-3:] == list(ARRIVAL_KINDS), kinds
    assert {"accepted", "role_assigned"} <= set(kinds), kinds
    assert all(e["data"].get("responder_id") == person["id"] for e in alert["events"])
    (debrief,) = doc["debriefs"]
    assert debrief["note"] == story["note"] and debrief["follow_up"] == "open"
    assert [p["endpoint"] for p in doc["push_subscriptions"]] == [story["push"]["endpoint"]]
    assert [t["label"] for t in doc["tokens"]] == [f"responder:{person['external_id']}"]
    assert {a["band"] for a in doc["answers"]} <= {"day", "night"}
    assert sum(a["accepted"] for a in doc["answers"]) == 1
    secrets_held = [
        person["token"],
        hash_token(person["token"]),
        story["push"]["keys"]["p256dh"],
        story["push"]["keys"]["auth"],
    ]
    assert not [s for s in secrets_held if s in r.text]
    # the patient's place is the patient's, not theirs
    assert repr(story["incident"]["lat"]) not in r.text

    assert download(http, person, admin_headers).status_code == 200  # an admin may fetch it for them
    other, _, _ = accepted_alert(http, admin_headers, story["desk"])
    assert download(http, person, bearer(other["token"])).status_code == 403
    assert download(http, person, story["desk"]).status_code == 403  # dispatchers: no
    assert http.get(f"/v1/responders/{uuid.uuid4()}/data", headers=admin_headers).status_code == 404


def erase(http: httpx.Client, person: dict, headers: dict[str, str], body: object) -> httpx.Response:
    return http.post(f"/v1/responders/{person['id']}/erase", json=body, headers=headers)


async def test_erasure_deletes_the_account_and_keeps_an_anonymous_stand_in(
    http: httpx.Client, admin_headers: dict[str, str], story: dict, live_server: ServerProcess
) -> None:
    person, me, url = story["person"], bearer(story["person"]["token"]), live_server.database_url
    rid = uuid.UUID(person["id"])
    for body, field in (
        ({}, "confirm"),
        ({"confirm": "yes"}, "confirm"),
        ({"confirm": "erase", "x": 1}, "x"),
    ):
        r = erase(http, person, me, body)
        assert r.status_code == 422 and field in r.json()["detail"], r.text
    assert http.get(f"/v1/responders/{person['id']}", headers=me).status_code == 200  # nothing happened

    centre = await told_a_centre(url, story)

    r = erase(http, person, me, {"confirm": "erase"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["centre_copies"] == 2
    assert report["already_erased"] is False
    assert {
        k: report[k] for k in ("certificates", "tokens_revoked", "push_subscriptions", "debrief_notes")
    } == {
        "certificates": 1,
        "tokens_revoked": 1,
        "push_subscriptions": 1,
        "debrief_notes": 1,
    }
    assert report["alert_positions"] == 1 and report["event_positions"] == len(ARRIVAL_KINDS)
    assert report["acceptance_tallies"] == 1 and report["duty_session_closed"] and report["live_position"]

    # the phone's token is refused at once; the account answers 410 Gone to whoever asks
    assert http.get(f"/v1/responders/{person['id']}", headers=me).status_code == 401
    gone = http.get(f"/v1/responders/{person['id']}", headers=admin_headers)
    assert gone.status_code == 410 and "erased" in gone.json()["detail"], gone.text
    assert download(http, person, admin_headers).status_code == 410
    # and it cannot be brought back: no duty, no new token, no edit
    put = http.put(f"/v1/responders/{person['id']}/duty", json={"on_duty": True}, headers=admin_headers)
    assert put.status_code == 410
    assert http.post(f"/v1/responders/{person['id']}/token", headers=admin_headers).status_code == 410
    patch = http.patch(f"/v1/responders/{person['id']}", json={"name": "Li Wei"}, headers=admin_headers)
    assert patch.status_code == 410

    # the stand-in: the row stays, with nothing that names the person
    (row,) = await fetch(url, "SELECT * FROM responders WHERE id = $1", rid)
    assert row["name"] == "erased" and row["phone"] is None and row["external_id"].startswith("erased-")
    assert row["deleted_at"] is not None and not row["active"] and not row["on_duty"]
    gone_rows = await tables_mentioning(
        url, [person["external_id"], story["name"], story["phone"], story["note"]]
    )
    assert gone_rows == {}
    for table in ("certificates", "push_subscriptions"):
        assert await fetch(url, f"SELECT 1 FROM {table} WHERE responder_id = $1", rid) == []
    assert (
        await fetch(url, "SELECT 1 FROM acceptance_tallies WHERE level = 'responder' AND key = $1", str(rid))
        == []
    )
    (session,) = await fetch(url, "SELECT ended_at FROM duty_sessions WHERE responder_id = $1", rid)
    assert session["ended_at"] is not None
    (debrief,) = await fetch(url, "SELECT * FROM debriefs WHERE responder_id = $1", rid)
    assert debrief["note"] is None and debrief["follow_up_note"] is None
    assert (debrief["went"], debrief["wants_support"], debrief["follow_up"]) == ("hard", True, "open")
    (stream,) = await fetch(url, "SELECT tally FROM cad_streams WHERE subscription_id = $1", centre)
    line = json.loads(stream["tally"])["responders"][person["id"]]
    assert line == {"responder_id": person["id"], "name": None, "phone": None, "role": "cpr", "eta_s": 60.0}
    (sent,) = await fetch(url, "SELECT body FROM cad_outbox WHERE subscription_id = $1", centre)
    assert json.loads(sent["body"])["responders"] == [
        {"responder_id": person["id"], "name": None, "phone": None, "role": "cpr", "eta_s": 60.0},
        {"responder_id": OTHER, "name": "Li Wei", "phone": "13800138000", "role": "cpr", "eta_s": 90.0},
    ]
    # positions: gone from the timeline, and from the live store
    assert await tables_mentioning(url, [repr(story["at"].lat), repr(story["at"].lng)]) == {}
    live = await redis_mentions(
        live_server.redis_url, live_server.env["DISPATCH_REDIS_PREFIX"], [person["id"].encode()]
    )
    assert live == {}

    # the incident record is whole: the alert by the stand-in, its times, the events in order
    incident = http.get(f"/v1/incidents/{story['incident']['id']}", headers=story["desk"]).json()
    (alert,) = incident["alerts"]
    assert alert["responder_id"] == person["id"] and alert["status"] == "accepted"
    kinds = [e["kind"] for e in incident["events"]]
    assert kinds[0] == "opened" and "accepted" in kinds and kinds[-3:] == list(ARRIVAL_KINDS)
    (opened,) = [e for e in incident["events"] if e["kind"] == "opened"]
    assert (opened["data"]["lat"], opened["data"]["lng"]) == (
        story["incident"]["lat"],
        story["incident"]["lng"],
    )
    for event in incident["events"][-3:]:
        assert "lat" not in event["data"] and event["data"]["source"] == "auto"
        assert event["data"]["responder_id"] == person["id"] and event["data"]["accuracy_m"] == 8.0

    # a second request is harmless: the admin's says it was done already; the phone's is refused
    again = erase(http, person, admin_headers, {"confirm": "erase"})
    assert again.status_code == 200 and again.json()["already_erased"] is True
    assert again.json()["erased_at"] == report["erased_at"]
    assert erase(http, person, me, {"confirm": "erase"}).status_code == 401
    assert erase(http, {"id": str(uuid.uuid4())}, admin_headers, {"confirm": "erase"}).status_code == 404


async def test_only_the_person_or_an_admin_may_erase(http: httpx.Client, admin_headers, story: dict) -> None:
    person = story["person"]
    other, _, _ = accepted_alert(http, admin_headers, story["desk"])
    assert erase(http, person, bearer(other["token"]), {"confirm": "erase"}).status_code == 403
    assert erase(http, person, story["desk"], {"confirm": "erase"}).status_code == 403
    assert http.get(f"/v1/responders/{person['id']}", headers=bearer(person["token"])).status_code == 200
    doc = json.loads(download(http, person, admin_headers).text)
    assert doc["profile"]["name"] != "erased"
