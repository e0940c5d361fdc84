"""Times the phone records itself (issue 22, item 1), through the real service: a responder accepts,
then their own fixes (websocket frames, HTTP posts, a gateway's batch) walk them out of the accept
circle, to the AED, to the patient. Each crossing is an incident event marked `auto`, in order,
once, with its time on the alert; inaccurate fixes do nothing; a tap is `manual` and never repeated.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.test_circle import Scene, alerts_of
from tests.integration.test_dispatch import offset
from tests.support.db import fetch
from tests.support.people import bearer, iso
from tests.support.phones import Phone
from tests.support.server import ServerProcess, on_single_and_cluster

pytestmark = pytest.mark.integration
MARKS = ("en_route", "aed_picked_up", "on_scene")
TABLE_S = 0.5
"""Time for the worker's table of engaged trips to take a fresh accept in (it refreshes at once)."""


def fix(s: Scene, north_m: float, east_m: float = 0.0, accuracy_m: float | None = 5.0) -> dict[str, Any]:
    lat, lng = offset(s.lat, s.lng, north_m, east_m)
    body: dict[str, Any] = {"lat": lat, "lng": lng, "ts": iso()}
    if accuracy_m is not None:
        body["accuracy_m"] = accuracy_m
    return body


async def accept(s: Scene, name: str, incident: dict[str, Any]) -> dict[str, Any]:
    """`name` accepts over their socket; the `incident` frame (role, AED) they get back."""
    phone = s.phones[name]
    alert = await alerts_of(phone, incident["id"], 5)
    await phone.send({"type": "ack", "alert_id": alert["alert_id"], "response": "accept"})
    frame = await phone.next(type_="incident")
    await asyncio.sleep(TABLE_S)
    return frame


async def walk(phone: Phone, s: Scene, north_m: float, east_m: float = 0.0, **kw: Any) -> None:
    await phone.send({"type": "location", **fix(s, north_m, east_m, **kw)})


async def next_mark(phone: Phone) -> dict[str, Any]:
    return await phone.next(timeout=5, type_="mark")


async def no_mark(phone: Phone, seconds: float = 0.8) -> bool:
    """No mark within `seconds` (other frames, e.g. the phone's own, are skipped)."""
    try:
        await phone.next(timeout=seconds, type_="mark")
    except TimeoutError:
        return True
    return False


def timeline(detail: dict[str, Any], responder_id: str) -> list[dict[str, Any]]:
    return [
        e for e in detail["events"] if e["kind"] in MARKS and e["data"].get("responder_id") == responder_id
    ]


def alert_of(detail: dict[str, Any], responder_id: str) -> dict[str, Any]:
    (alert,) = [a for a in detail["alerts"] if a["responder_id"] == responder_id]
    return alert


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_a_runner_s_own_fixes_mark_en_route_the_aed_and_the_scene_in_order(
    live_server: ServerProcess, admin_headers: dict[str, str], store_env: dict[str, str]
) -> None:
    """Accepting 100 m north, the AED 60 m east of them: leaving the circle towards the AED is
    en_route; passing the patient before the AED is nothing; inaccurate fixes at the AED and the
    patient are nothing; at the AED, then at the patient, the marks follow, each once."""
    s = Scene(live_server, admin_headers)
    runner = s.person("runner", 100)
    wall = s.aed("Metro exit B", 100, 60)
    await s.connect()
    phone = s.phones["runner"]
    try:
        async with s.console() as console:
            incident = s.open()
            frame = await accept(s, "runner", incident)
            assert frame["role"] == "fetch_aed" and frame["aed"]["id"] == wall["id"]
            (origin,) = await fetch(
                store_env["DATABASE_URL"],
                "SELECT accepted_lat, accepted_lng FROM alerts WHERE id = $1",
                uuid.UUID(frame["alert_id"]),
            )
            want = offset(s.lat, s.lng, 100, 0)  # where the live store saw them at the accept
            assert origin["accepted_lat"] == pytest.approx(want[0], abs=1e-6)
            assert origin["accepted_lng"] == pytest.approx(want[1], abs=1e-6)

            await walk(phone, s, 100, 10)  # 10 m: still inside the 20 m circle
            await walk(phone, s, 100, 30, accuracy_m=12)  # 30 − 12 = 18 m: not surely out
            assert await no_mark(phone)
            await walk(phone, s, 100, 30)  # 30 m towards the AED
            en_route = await next_mark(phone)
            assert (en_route["mark"], en_route["source"]) == ("en_route", "auto")
            heard = await console.wait_for(incident["id"], "en_route")
            assert heard["data"]["source"] == "auto" and heard["data"]["distance_m"] == pytest.approx(
                30, abs=1
            )

            await walk(phone, s, 3, 0)  # passing the patient on the way to the AED
            await walk(phone, s, 100, 58, accuracy_m=20)  # at the AED, but ± 20 m > 15 m
            await walk(phone, s, 100, 58, accuracy_m=80)  # worse than the 50 m any mark needs
            assert await no_mark(phone)
            await walk(phone, s, 100, 57)
            assert (await next_mark(phone))["mark"] == "aed_picked_up"
            await walk(phone, s, 10, 0, accuracy_m=40)  # 10 m from the patient, ± 40 m > 30 m
            assert await no_mark(phone)
            await walk(phone, s, 10, 0)
            assert (await next_mark(phone))["mark"] == "on_scene"
            for _ in range(3):  # standing there: nothing more
                await walk(phone, s, 5, 0)
            assert await no_mark(phone)

        detail = s.detail(incident)
        marks = timeline(detail, runner["id"])
        assert [e["kind"] for e in marks] == list(MARKS)
        assert all(e["data"]["source"] == "auto" for e in marks)
        for e in marks:
            assert set(e["data"]) >= {"ts", "distance_m", "accuracy_m", "lat", "lng", "alert_id", "role"}
            assert e["data"]["accuracy_m"] == 5.0
        alert = alert_of(detail, runner["id"])
        assert alert["status"] == "on_scene"
        times = [at(alert[f"{m}_at"]) for m in MARKS]
        assert times == sorted(times) and at(alert["answered_at"]) <= times[0]
        assert times == [at(e["data"]["ts"]) for e in marks]  # the fixes' own times
        async with Phone(live_server.ws_url, runner["token"]) as again:  # the phone reconnects
            replay = await again.next(type_="incident")
        assert [(m, at(t)) for m, t in replay["marks"].items()] == list(zip(MARKS, times, strict=True))
        assert abs(marks[2]["data"]["lat"] - offset(s.lat, s.lng, 10, 0)[0]) < 1e-6
    finally:
        await s.close()


@on_single_and_cluster  # a gateway's batch is stored by slot on a cluster: outcomes still in order
async def test_fixes_over_http_and_a_gateway_batch_mark_a_trip_walking_away_does_not(
    live_server: ServerProcess, admin_headers: dict[str, str], token_for
) -> None:
    """A CPR responder 150 m north, no AED: fixes posted by the phone over HTTP take them out of
    the circle (walking away first: nothing), a gateway's batch brings them to the patient; a
    batch's inaccurate fix and other people's fixes do nothing."""
    s = Scene(live_server, admin_headers)
    cpr = s.person("cpr", 150)
    bystander = s.person("bystander", -2000)  # on duty, not alerted (too far), in the same batch
    await s.connect()
    gateway = token_for("gateway")
    me = bearer(cpr["token"])
    try:
        incident = s.open()
        assert s.alerted(incident) == ["cpr"]
        assert (await accept(s, "cpr", incident))["role"] == "cpr"

        def post(body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
            r = s.http.post("/v1/locations", json=body, headers=headers)
            assert r.status_code == 200, r.text
            return r.json()

        assert post(fix(s, 250), me)["stored"] == 1  # 100 m further from the patient
        assert await no_mark(s.phones["cpr"])
        assert post(fix(s, 100), me)["stored"] == 1
        assert (await next_mark(s.phones["cpr"]))["mark"] == "en_route"

        def batch(*fixes: tuple[str, dict[str, Any]]) -> dict[str, Any]:
            return post({"updates": [{"responder_id": rid, **f} for rid, f in fixes]}, gateway)

        near = fix(s, 5, 0, accuracy_m=None)  # no accuracy: counts as ± 50 m, more than 30 m
        assert batch((bystander["id"], fix(s, 0)), (cpr["id"], near))["stored"] == 2
        assert await no_mark(s.phones["cpr"])
        assert batch((bystander["id"], fix(s, 1)), (cpr["id"], fix(s, 5)))["stored"] == 2
        arrived = await next_mark(s.phones["cpr"])
        assert (arrived["mark"], arrived["source"]) == ("on_scene", "auto")

        detail = s.detail(incident)
        assert [(e["kind"], e["data"]["source"]) for e in timeline(detail, cpr["id"])] == [
            ("en_route", "auto"),
            ("on_scene", "auto"),
        ]
        assert timeline(detail, bystander["id"]) == []
        alert = alert_of(detail, cpr["id"])
        assert alert["status"] == "on_scene" and alert["aed_picked_up_at"] is None
    finally:
        await s.close()


async def test_a_tap_is_manual_and_the_fixes_do_not_repeat_it(
    live_server: ServerProcess, admin_headers: dict[str, str]
) -> None:
    """A runner taps en_route and `aed_picked_up`: `manual` each, and their fixes through the same
    geofences add nothing until the patient (on_scene `auto`). A CPR responder may not tap
    `aed_picked_up`; a second tap is refused like any repeated status."""
    s = Scene(live_server, admin_headers)
    runner = s.person("runner", 100)
    s.aed("Bank lobby", 100, 60)
    await s.connect()
    phone = s.phones["runner"]
    try:
        incident = s.open()
        frame = await accept(s, "runner", incident)
        assert frame["role"] == "fetch_aed"
        alert_id = frame["alert_id"]
        await phone.send({"type": "status", "alert_id": alert_id, "status": "en_route"})
        tapped = await next_mark(phone)
        assert (tapped["mark"], tapped["source"]) == ("en_route", "manual")
        await walk(phone, s, 100, 30)  # would have been en_route
        assert await no_mark(phone)
        await phone.send({"type": "status", "alert_id": alert_id, "status": "aed_picked_up"})
        assert (await next_mark(phone))["source"] == "manual"
        await phone.send({"type": "status", "alert_id": alert_id, "status": "aed_picked_up"})
        refused = await phone.next(type_="error")
        assert refused["code"] == 409 and "already" in refused["message"]
        await walk(phone, s, 100, 59)  # at the AED: already picked up
        assert await no_mark(phone)
        await walk(phone, s, 2, 0)
        assert (await next_mark(phone))["mark"] == "on_scene"

        detail = s.detail(incident)
        assert [(e["kind"], e["data"]["source"]) for e in timeline(detail, runner["id"])] == [
            ("en_route", "manual"),
            ("aed_picked_up", "manual"),
            ("on_scene", "auto"),
        ]
        alert = alert_of(detail, runner["id"])
        assert alert["status"] == "on_scene"  # aed_picked_up kept the status en_route until then
    finally:
        await s.close()


async def test_a_cpr_responder_cannot_tap_aed_picked_up_and_a_first_fix_at_the_patient_is_both(
    live_server: ServerProcess, admin_headers: dict[str, str]
) -> None:
    """No AED: `aed_picked_up` is refused (409); a first fix already at the patient logs en_route
    then on_scene, in that order, with the same time."""
    s = Scene(live_server, admin_headers)
    cpr = s.person("cpr", 120)
    await s.connect()
    phone = s.phones["cpr"]
    try:
        incident = s.open()
        frame = await accept(s, "cpr", incident)
        await phone.send({"type": "status", "alert_id": frame["alert_id"], "status": "aed_picked_up"})
        refused = await phone.next(type_="error")
        assert refused["code"] == 409 and refused["field"] == "status"
        await walk(phone, s, 4, 0)
        assert [(await next_mark(phone))["mark"] for _ in range(2)] == ["en_route", "on_scene"]
        detail = s.detail(incident)
        marks = timeline(detail, cpr["id"])
        assert [e["kind"] for e in marks] == ["en_route", "on_scene"]
        assert marks[0]["seq"] < marks[1]["seq"]
        alert = alert_of(detail, cpr["id"])
        assert alert["en_route_at"] == alert["on_scene_at"]
    finally:
        await s.close()


async def test_with_two_workers_a_fix_on_either_marks_once(
    app_env: dict[str, str], admin_headers: dict[str, str]
) -> None:
    """Two API workers: the accept lands on one, the fixes on whichever the connection reaches;
    each mark is logged once and in order (each fix on a new connection: the kernel picks the
    worker; both are seen)."""
    with ServerProcess(env=app_env, workers=2).start() as server:  # the session's settings
        s = Scene(server, admin_headers)
        cpr = s.person("cpr", 150)
        await s.connect()
        try:
            incident = s.open()
            await accept(s, "cpr", incident)
            await asyncio.sleep(1.5)  # the other worker's table refreshes within a second
            me = bearer(cpr["token"])
            workers = set()
            for north in (100, 100, 80, 60, 5, 5, 4, 3, 3, 3, 3, 3, 3):
                with httpx.Client(base_url=server.url, timeout=10) as fresh:
                    r = fresh.post("/v1/locations", json=fix(s, north), headers=me)
                assert r.status_code == 200, r.text
                workers.add(r.headers["X-Dispatch-Worker"])
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
            kinds = [e["kind"] for e in timeline(s.detail(incident), cpr["id"])]
            assert kinds == ["en_route", "on_scene"]
            assert len(workers) == 2, workers
        finally:
            await s.close()
