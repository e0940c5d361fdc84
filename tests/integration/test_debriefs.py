"""Debriefs and follow-ups through the real service (issue 22, item 3): a responder accepts an
alert, the incident closes (their phone gets the `cancel`), the app finds the debrief pending, the
answers that ask for support put the responder on the coordinators' list, who mark it done."""

from __future__ import annotations

import secrets
from datetime import datetime

import httpx
import pytest

from tests.integration.test_dispatch import offset, remote_spot
from tests.support.people import bearer, on_duty_at
from tests.support.phones import Phone
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration


def open_beside(http: httpx.Client, desk: dict[str, str], lat: float, lng: float) -> dict:
    r = http.post(
        "/v1/incidents",
        json={"lat": offset(lat, lng, 80, 0)[0], "lng": lng, "category": "cardiac_arrest"},
        headers=desk,
    )
    assert r.status_code == 201, r.text
    return r.json()


def alert_of(incident: dict, person: dict) -> str:
    return next(a["alert_id"] for a in incident["alerts"] if a["responder_id"] == person["id"])


def answer(http: httpx.Client, person: dict, alert_id: str, response: str) -> None:
    r = http.post(
        f"/v1/alerts/{alert_id}/answer", json={"response": response}, headers=bearer(person["token"])
    )
    assert r.status_code == 200, r.text


def debrief(http: httpx.Client, person: dict, alert_id: str, **answers: object) -> httpx.Response:
    body = {"went": "hard", "injured": False, "wants_support": False, **answers}
    return http.post(f"/v1/alerts/{alert_id}/debrief", json=body, headers=bearer(person["token"]))


def pending(http: httpx.Client, person: dict, headers: dict[str, str] | None = None) -> httpx.Response:
    return http.get(
        f"/v1/responders/{person['id']}/debriefs/pending", headers=headers or bearer(person["token"])
    )


async def test_debrief_after_the_incident_ends_and_follow_up_to_done(
    http: httpx.Client, live_server: ServerProcess, admin_headers: dict[str, str], token_for
) -> None:
    desk, coordinator = token_for("dispatcher"), token_for("coordinator", "Ms Chen, programme office")
    lat, lng = remote_spot()
    team = f"shenzhen/futian/shatou/t{secrets.token_hex(3)}"
    person = on_duty_at(http, admin_headers, lat, lng, name="Wang Fang", phone="13800138000", team=team)
    incident = open_beside(http, desk, lat, lng)
    alert_id = alert_of(incident, person)
    answer(http, person, alert_id, "accept")

    # still going: nothing to debrief yet
    assert pending(http, person).json() == []
    r = debrief(http, person, alert_id)
    assert r.status_code == 409 and "still going" in r.json()["detail"]

    async with Phone(live_server.ws_url, person["token"]) as phone:
        await phone.next(type_="incident")  # the accepted incident, replayed on connect
        r = http.post(f"/v1/incidents/{incident['id']}/close", json={"reason": "EMS took over"}, headers=desk)
        assert r.status_code == 200, r.text
        cancel = await phone.next(type_="cancel")
    assert cancel["alert_id"] == alert_id  # the app's cue to ask

    [due] = pending(http, person).json()
    assert due["alert_id"] == alert_id and due["incident_id"] == incident["id"]
    assert due["category"] == "cardiac_arrest" and due["reached_patient"] is False
    assert pending(http, person, admin_headers).json() == [due]  # an admin may look too

    # someone else may neither see nor answer it; a declined alert has nothing to debrief
    other = on_duty_at(http, admin_headers, *offset(lat, lng, 0, 3000))
    assert pending(http, person, bearer(other["token"])).status_code == 403
    assert debrief(http, other, alert_id).status_code == 403
    declined_incident = open_beside(http, desk, *offset(lat, lng, 0, 3000))
    declined = alert_of(declined_incident, other)
    answer(http, other, declined, "decline")
    http.post(f"/v1/incidents/{declined_incident['id']}/close", json={}, headers=desk)
    r = debrief(http, other, declined)
    assert r.status_code == 409 and "never accepted" in r.json()["detail"]
    assert pending(http, other).json() == []

    r = debrief(http, person, alert_id, went="hard", wants_support=True, note="  the family was there  ")
    assert r.status_code == 201, r.text
    given = r.json()
    assert given["follow_up"] == "open" and given["note"] == "the family was there"
    assert debrief(http, person, alert_id).status_code == 409  # once
    assert pending(http, person).json() == []

    # the coordinators' list: whom to call, about what, what they said
    assert http.get("/v1/debriefs/follow-ups", headers=bearer(person["token"])).status_code == 403
    listed = http.get("/v1/debriefs/follow-ups", params={"state": "open"}, headers=coordinator).json()
    [mine] = [f for f in listed if f["debrief_id"] == given["id"]]
    assert mine["responder_name"] == "Wang Fang" and mine["responder_phone"] == "13800138000"
    assert mine["team"] == team and mine["category"] == "cardiac_arrest"
    assert datetime.fromisoformat(mine["incident_opened_at"]) == datetime.fromisoformat(
        incident["created_at"]
    )
    assert (mine["went"], mine["injured"], mine["wants_support"]) == ("hard", False, True)

    follow_up = f"/v1/debriefs/{given['id']}/follow-up"
    assert http.post(follow_up, json={"note": "   "}, headers=coordinator).status_code == 422
    r = http.post(
        follow_up, json={"note": "called her; a talk with the psychologist on Friday"}, headers=coordinator
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "done" and done["done_by"] == "coordinator:Ms Chen, programme office"
    assert done["done_note"] == "called her; a talk with the psychologist on Friday"
    assert http.post(follow_up, json={"note": "again"}, headers=coordinator).status_code == 409
    open_now = http.get("/v1/debriefs/follow-ups", headers=coordinator).json()
    assert given["id"] not in {f["debrief_id"] for f in open_now}
    done_list = http.get("/v1/debriefs/follow-ups", params={"state": "done"}, headers=coordinator).json()
    assert done_list[0]["debrief_id"] == given["id"]  # the most recently done first
    r = http.post(
        f"/v1/debriefs/{'0' * 8}-0000-4000-8000-{'0' * 12}/follow-up", json={"note": "x"}, headers=coordinator
    )
    assert r.status_code == 404
    assert (
        http.get("/v1/debriefs/follow-ups", params={"state": "maybe"}, headers=coordinator).status_code == 422
    )


def test_a_debrief_that_asks_nothing_opens_no_follow_up(
    http: httpx.Client, admin_headers: dict[str, str], token_for
) -> None:
    desk, coordinator = token_for("dispatcher"), token_for("coordinator")
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, lat, lng)
    incident = open_beside(http, desk, lat, lng)
    alert_id = alert_of(incident, person)
    answer(http, person, alert_id, "accept")
    http.post(f"/v1/incidents/{incident['id']}/close", json={}, headers=desk)
    r = debrief(http, person, alert_id, went="well")
    assert r.status_code == 201 and r.json()["follow_up"] == "none"
    listed = http.get("/v1/debriefs/follow-ups", headers=coordinator).json()
    assert r.json()["id"] not in {f["debrief_id"] for f in listed}
    r = debrief(http, person, alert_id, went="fine")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "went"


def test_an_injury_alone_opens_a_follow_up(
    http: httpx.Client, admin_headers: dict[str, str], token_for
) -> None:
    desk = token_for("dispatcher")
    lat, lng = remote_spot()
    person = on_duty_at(http, admin_headers, lat, lng)
    incident = open_beside(http, desk, lat, lng)
    alert_id = alert_of(incident, person)
    answer(http, person, alert_id, "accept")
    http.post(f"/v1/incidents/{incident['id']}/close", json={}, headers=desk)
    r = debrief(http, person, alert_id, went="ok", injured=True)
    assert r.status_code == 201 and r.json()["follow_up"] == "open"
