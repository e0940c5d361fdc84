"""Feedback to an emergency centre (issue 19, outbound): subscriptions, the story of an incident
arriving signed and in order, retries with backoff through a centre that fails (500, timeout,
refused connection), the give-up visible to admins and re-sent, and two processes delivering
without duplicates or reordering. Real app over HTTP, real PostgreSQL; the centre is a stand-in
that verifies the signature and checks order and duplicates (tests/support/cad_centre.py).

An incident "from the centre" is opened through POST /v1/incidents and then given the centre's
agency and tracking id in SQL (the EIDO endpoint is another part of the issue): everything that
happens to it after that is reported; its opening, written before, is not.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.integration.test_circle import Scene
from tests.integration.test_dispatch import offset
from tests.support import eido
from tests.support.cad_centre import CadCentre
from tests.support.db import fetch, fresh_database
from tests.support.people import bearer, on_duty_at, pinned_acceptance
from tests.support.phones import Phone
from tests.support.server import ServerProcess
from tests.support.standin import Plan

pytestmark = pytest.mark.integration
TIMEOUT_S = 1.0  # the server's timeout for one feedback POST
MAX_ATTEMPTS = 8  # the server's tries of one feedback event before it is `failed`


def feedback_env(app_env: dict[str, str]) -> dict[str, str]:
    """Fast retries (0.2 s doubling to 0.8 s, 8 tries), a 1 s POST timeout, a 50 ms poll; local
    receivers allowed (the stand-in listens on 127.0.0.1)."""
    return {
        **app_env,
        **pinned_acceptance(0.9),
        "DISPATCH_ESCALATION_INTERVAL_S": "60",
        "DISPATCH_CAD_ALLOW_PRIVATE_URLS": "1",
        "DISPATCH_CAD_TIMEOUT_S": str(TIMEOUT_S),
        "DISPATCH_CAD_BACKOFF_S": "0.2",
        "DISPATCH_CAD_BACKOFF_MAX_S": "0.8",
        "DISPATCH_CAD_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "DISPATCH_CAD_POLL_S": "0.05",
    }


@pytest.fixture(scope="module")
def feedback_db(store_env: dict[str, str]) -> Iterator[str]:
    """A database of its own: every server's delivery loop sends every pending row it finds, so on
    the shared database the session's other servers would send (and retry) this module's too."""
    with fresh_database(store_env["DATABASE_URL"], "cadfeedback") as url:
        yield url


@pytest.fixture(scope="module")
def feedback_server(app_env: dict[str, str], feedback_db: str) -> Iterator[ServerProcess]:
    server = ServerProcess(env={**feedback_env(app_env), "DATABASE_URL": feedback_db}).start()
    yield server
    server.stop()


@pytest.fixture
def centre() -> Iterator[CadCentre]:
    with CadCentre() as stand_in:
        yield stand_in  # type: ignore[misc]


def new_agency() -> str:
    return f"sz120-{secrets.token_hex(4)}"


def centre_token(http: httpx.Client, admin: dict[str, str], agency: str) -> dict[str, str]:
    r = http.post("/v1/tokens", json={"role": "cad", "label": "CAD", "agency": agency}, headers=admin)
    assert r.status_code == 201, r.text
    return bearer(r.json()["token"])


def subscribe(http: httpx.Client, cad: dict[str, str], centre: CadCentre, path: str = "/feedback") -> str:
    r = http.post(
        "/v1/cad/subscriptions", json={"url": centre.url + path, "secret": centre.secret}, headers=cad
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def from_centre(database_url: str, incident_id: str, agency: str) -> str:
    """Make an incident opened here one the centre posted (see the module's note)."""
    tracking = f"urn:emergency:uid:incidentid:{uuid.uuid4().hex}:{agency}"
    await fetch(
        database_url,
        "UPDATE incidents SET agency = $1, tracking_id = $2 WHERE id = $3::uuid",
        agency,
        tracking,
        incident_id,
    )
    return tracking


async def until(check: Callable[[], Any], timeout_s: float = 10.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {timeout_s} s: {what}")


def answer(s: Scene, name: str, alert_id: str, response: str) -> None:
    r = s.http.post(
        f"/v1/alerts/{alert_id}/answer", json={"response": response}, headers=bearer(s.people[name]["token"])
    )
    assert r.status_code == 200, r.text


def named(s: Scene, key: str, north_m: float, east_m: float, name: str, phone: str) -> None:
    """A person of the scene with the name and phone the call-taker is told."""
    at = offset(s.lat, s.lng, north_m, east_m)
    s.people[key] = on_duty_at(s.http, s.admin, *at, name=name, phone=phone)


def alert_ids(s: Scene, incident: dict[str, Any]) -> dict[str, str]:
    by_id = {p["id"]: name for name, p in s.people.items()}
    detail = s.detail(incident)
    return {by_id[a["responder_id"]]: a["alert_id"] for a in detail["alerts"]}


# --- subscriptions --------------------------------------------------------------------------------


def test_a_centre_manages_its_own_subscriptions_only(http, admin_headers, token_for, centre) -> None:
    mine, theirs = new_agency(), new_agency()
    cad, other = centre_token(http, admin_headers, mine), centre_token(http, admin_headers, theirs)
    body = {"url": "https://cad.example.org/rescue/feedback", "secret": "s" * 32}
    # the live_server refuses local receivers (no DISPATCH_CAD_ALLOW_PRIVATE_URLS)
    r = http.post("/v1/cad/subscriptions", json=body, headers=cad)
    assert r.status_code == 201, r.text
    first = r.json()
    assert first["agency"] == mine and first["url"] == body["url"] and "secret" not in first
    second = http.post("/v1/cad/subscriptions", json={**body, "url": body["url"] + "2"}, headers=cad).json()
    http.post("/v1/cad/subscriptions", json=body, headers=other)

    listed = http.get("/v1/cad/subscriptions", headers=cad).json()
    assert [s["id"] for s in listed] == [first["id"], second["id"]]
    assert all("secret" not in s for s in listed)
    # another centre can neither see nor delete them
    assert first["id"] not in {s["id"] for s in http.get("/v1/cad/subscriptions", headers=other).json()}
    assert http.delete(f"/v1/cad/subscriptions/{first['id']}", headers=other).status_code == 404
    assert http.delete(f"/v1/cad/subscriptions/{first['id']}", headers=cad).status_code == 204
    assert [s["id"] for s in http.get("/v1/cad/subscriptions", headers=cad).json()] == [second["id"]]
    assert http.delete(f"/v1/cad/subscriptions/{first['id']}", headers=cad).status_code == 404

    for role in ("dispatcher", "admin"):
        headers = admin_headers if role == "admin" else token_for(role)
        assert http.post("/v1/cad/subscriptions", json=body, headers=headers).status_code == 403
        assert http.get("/v1/cad/subscriptions", headers=headers).status_code == 403
    assert http.get("/v1/cad/deliveries", headers=cad).status_code == 403  # admins only


@pytest.mark.parametrize(
    ("url", "secret", "rule"),
    [
        ("ftp://cad.example.org/x", "s" * 32, "url: must be an http:// or https:// URL"),
        ("https:///no-host", "s" * 32, "url: must name a host"),
        ("https://user:pw@cad.example.org/", "s" * 32, "url: must not carry a user or password"),
        ("http://127.0.0.1:9/feedback", "s" * 32, "url: must not be a private, loopback"),
        ("http://10.1.2.3/feedback", "s" * 32, "url: must not be a private, loopback"),
        ("http://localhost:8080/", "s" * 32, "url: must not name this machine"),
        ("https://cad.example.org/", "short", "secret"),
    ],
)
def test_bad_subscriptions_name_the_field(http, admin_headers, url, secret, rule) -> None:
    cad = centre_token(http, admin_headers, new_agency())
    r = http.post("/v1/cad/subscriptions", json={"url": url, "secret": secret}, headers=cad)
    assert r.status_code == 422, r.text
    assert rule in r.text


# --- the story ------------------------------------------------------------------------------------


async def test_the_story_of_an_incident_arrives_signed_and_in_order(
    feedback_server, admin_headers, feedback_db, centre
) -> None:
    """Three alerted (an AED beside two of them); the one near declines and a fourth is alerted in
    their place; the AED runner's phone confirms, they accept (fetching the AED), the second
    accepts and the fourth is stood down; the runner goes en route and on scene; the desk closes."""
    s = Scene(feedback_server, admin_headers)
    agency = new_agency()
    cad = centre_token(s.http, admin_headers, agency)
    subscribe(s.http, cad, centre)
    named(s, "runner", 100, 0, "Li Wei", "+8613800138000")
    named(s, "second", 100, 10, "Wang Fang", "+8613900139000")
    s.person("near", -30)
    s.person("further", -200)
    wall = s.aed("Library lobby", 101)
    try:
        incident = s.open()
        assert sorted(s.alerted(incident)) == ["near", "runner", "second"]
        tracking = await from_centre(feedback_db, incident["id"], agency)
        alerts = alert_ids(s, incident)
        answer(s, "near", alerts["near"], "decline")
        alerts = alert_ids(s, incident)
        assert "further" in alerts  # the replacement
        r = s.http.post(
            f"/v1/alerts/{alerts['runner']}/received", headers=bearer(s.people["runner"]["token"])
        )
        assert r.status_code == 200, r.text
        answer(s, "runner", alerts["runner"], "accept")
        answer(s, "second", alerts["second"], "accept")
        async with Phone(feedback_server.ws_url, s.people["runner"]["token"]) as phone:
            for status in ("en_route", "on_scene"):
                await phone.send({"type": "status", "alert_id": alerts["runner"], "status": status})
            await asyncio.sleep(0.3)
        r = s.http.post(f"/v1/incidents/{incident['id']}/close", json={"reason": "ROSC"}, headers=s.desk)
        assert r.status_code == 200, r.text

        story = await until(
            lambda: len(centre.of(incident["id"])) >= 10 and centre.of(incident["id"]), what="story"
        )
        kinds = [e["event"] for e in story]
        assert kinds == [
            "answered",
            "alerted",
            "reached",
            "answered",
            "aed_fetched",
            "answered",
            "stood_down",
            "en_route",
            "on_scene",
            "closed",
        ], kinds
        assert [e["seq"] for e in story] == list(range(1, 11))
        assert all(e["tracking_id"] == tracking and e["incident_id"] == incident["id"] for e in story)
        declined, alerted, reached, first, fetched, both, stood, en_route, on_scene, closed = story
        assert (declined["accepted"], declined["declined"], declined["responders"]) == (0, 1, [])
        assert alerted["alerted"] == 1  # the replacement (the opening's three came before the centre's id)
        assert reached["reached"] == 1
        (runner,) = first["responders"]
        assert runner["name"] == "Li Wei" and runner["phone"] == "+8613800138000"
        assert runner["role"] == "fetch_aed" and runner["eta_s"] > 0
        assert fetched["aed"] == {"aed_id": wall["id"], "name": "Library lobby"}
        assert fetched["responder"]["name"] == "Li Wei" and fetched["eta_s"] == runner["eta_s"]
        assert (both["accepted"], both["declined"]) == (2, 1)
        assert {p["name"]: p["role"] for p in both["responders"]} == {
            "Li Wei": "fetch_aed",
            "Wang Fang": "cpr",
        }
        assert stood["stood_down"] == 1
        assert en_route["responder"]["name"] == on_scene["responder"]["name"] == "Li Wei"
        assert en_route["at"] < on_scene["at"]
        assert closed["reason"] == "ROSC"
        # every request was signed and carried a key, and nothing came twice or out of order
        assert all(req.verdict == "" for req in centre.received), [req.verdict for req in centre.received]
        assert centre.duplicates == 0 and centre.out_of_order == []
        keys = [req.headers["Idempotency-Key"] for req in centre.received]
        assert len(set(keys)) == len(keys) == 10
    finally:
        await s.close()


async def test_incidents_opened_here_and_other_centres_are_not_reported(
    feedback_server, admin_headers, feedback_db, centre
) -> None:
    s = Scene(feedback_server, admin_headers)
    cad = centre_token(s.http, admin_headers, new_agency())
    subscribe(s.http, cad, centre)
    s.person("one", 50)
    try:
        local = s.open()
        other = s.open()
        await from_centre(feedback_db, other["id"], new_agency())  # a centre without us
        for incident in (local, other):
            r = s.http.post(f"/v1/incidents/{incident['id']}/close", json={"reason": "test"}, headers=s.desk)
            assert r.status_code == 200, r.text
        await asyncio.sleep(0.5)
        assert centre.received == []
    finally:
        await s.close()


# --- a centre that fails --------------------------------------------------------------------------


async def closed_incident_story(s: Scene, database_url: str, agency: str) -> str:
    """An incident from `agency` that gets an `answered` (a decline), a `reached` (a receipt) and
    `closed`: three events."""
    incident = s.open()
    await from_centre(database_url, incident["id"], agency)
    alerts = alert_ids(s, incident)
    decliner, reader = sorted(alerts)[:2]
    answer(s, decliner, alerts[decliner], "decline")
    r = s.http.post(f"/v1/alerts/{alerts[reader]}/received", headers=bearer(s.people[reader]["token"]))
    assert r.status_code == 200, r.text
    r = s.http.post(f"/v1/incidents/{incident['id']}/close", json={"reason": "test"}, headers=s.desk)
    assert r.status_code == 200, r.text
    return str(incident["id"])


async def test_a_failing_centre_gets_everything_in_order_with_backoff(
    feedback_server, admin_headers, feedback_db, centre
) -> None:
    """The connection refused for a second, then a 500, then an answer slower than our timeout (the
    centre took it: the retry is a duplicate it recognises by the key): all three events arrive,
    once each and in order, the later ones waiting for the first."""
    s = Scene(feedback_server, admin_headers)
    agency = new_agency()
    subscribe(s.http, centre_token(s.http, admin_headers, agency), centre)
    s.person("near", -30)
    s.person("near2", -35)
    s.person("near3", -40)
    s.person("spare", -300)
    try:
        centre.stop()  # refused from now on
        incident_id = await closed_incident_story(s, feedback_db, agency)
        await asyncio.sleep(1.0)
        centre.plan(Plan(status=500), Plan(delay_s=TIMEOUT_S + 0.5))
        centre.start()
        story = await until(lambda: len(centre.of(incident_id)) >= 3 and centre.of(incident_id), what="all")
        assert [e["event"] for e in story] == ["answered", "reached", "closed"]
        assert [e["seq"] for e in story] == [1, 2, 3]
        assert centre.out_of_order == []
        assert centre.duplicates == 1  # the slow answer's retry, recognised by its key
        first = [req for req in centre.received if req.json and req.json["seq"] == 1]
        assert [req.status for req in first] == [500, 200, 200]
        assert {req.headers["Idempotency-Key"] for req in first} == {first[0].headers["Idempotency-Key"]}
        # backoff, not hammering: after the 500 it waited, after the timeout it waited again
        assert first[1].at - first[0].at >= 0.7, first[1].at - first[0].at
        r = s.http.get("/v1/cad/deliveries", params={"status": "delivered"}, headers=admin_headers)
        (row,) = [d for d in r.json() if d["incident_id"] == incident_id and d["seq"] == 1]
        assert row["attempts"] >= 5  # at least two refused, the 500, the timeout, the one taken
    finally:
        await s.close()


async def test_give_up_after_the_cap_shows_failed_to_admins_and_resend_delivers(
    feedback_server, admin_headers, feedback_db, centre
) -> None:
    s = Scene(feedback_server, admin_headers)
    agency = new_agency()
    subscription = subscribe(s.http, centre_token(s.http, admin_headers, agency), centre)
    s.person("near", -30)
    s.person("near2", -35)
    s.person("near3", -40)
    s.person("spare", -300)
    centre.plan(*[Plan(status=500)] * MAX_ATTEMPTS)  # every try of the first event
    try:
        incident_id = await closed_incident_story(s, feedback_db, agency)

        def failed() -> list[dict[str, Any]]:
            r = s.http.get("/v1/cad/deliveries", params={"status": "failed"}, headers=admin_headers)
            assert r.status_code == 200, r.text
            return [d for d in r.json() if d["incident_id"] == incident_id]

        (gone,) = await until(failed, what="failed delivery")
        assert gone["seq"] == 1 and gone["event"] == "answered" and gone["attempts"] == MAX_ATTEMPTS
        assert gone["agency"] == agency and gone["subscription_id"] == subscription
        assert "HTTP 500" in gone["last_error"]
        assert len(centre.received) == MAX_ATTEMPTS and centre.events == []
        await asyncio.sleep(0.5)
        assert len(centre.received) == MAX_ATTEMPTS  # the later events wait behind it: nothing out of order
        pending = s.http.get("/v1/cad/deliveries", params={"status": "pending"}, headers=admin_headers).json()
        assert sorted(d["seq"] for d in pending if d["incident_id"] == incident_id) == [2, 3]

        dispatcher = s.desk
        assert s.http.get("/v1/cad/deliveries", headers=dispatcher).status_code == 403
        assert s.http.post(f"/v1/cad/deliveries/{gone['id']}/resend", headers=dispatcher).status_code == 403
        r = s.http.post(f"/v1/cad/deliveries/{gone['id']}/resend", headers=admin_headers)
        assert r.status_code == 202, r.text
        story = await until(
            lambda: len(centre.of(incident_id)) >= 3 and centre.of(incident_id), what="resent"
        )
        assert [e["seq"] for e in story] == [1, 2, 3] and centre.out_of_order == []
        again = s.http.post(f"/v1/cad/deliveries/{gone['id']}/resend", headers=admin_headers)
        assert again.status_code == 409  # delivered now: nothing to re-send
        assert s.http.post("/v1/cad/deliveries/999999999999/resend", headers=admin_headers).status_code == 404
        assert failed() == []
    finally:
        await s.close()


# --- several workers ------------------------------------------------------------------------------


def worker_metrics(server: ServerProcess) -> tuple[float, float]:
    """(start time, feedback delivered) of whichever worker answers `/metrics`."""
    text = httpx.get(f"{server.url}/metrics", timeout=5).text
    started = delivered = 0.0
    for line in text.splitlines():
        if line.startswith("process_start_time_seconds "):
            started = float(line.split()[1])
        elif line.startswith('cad_feedback_deliveries_total{outcome="delivered"}'):
            delivered = float(line.split()[1])
    return started, delivered


@pytest.fixture
def workers_db(store_env: dict[str, str]) -> Iterator[str]:
    with fresh_database(store_env["DATABASE_URL"], "cadworkers") as url:
        yield url


async def test_two_processes_deliver_without_duplicates_or_reordering(
    app_env, admin_headers, workers_db
) -> None:
    """40 incidents × 10 events each already in the outbox; two uvicorn workers deliver them."""
    env = {**feedback_env(app_env), "DISPATCH_CAD_BATCH": "7"}  # small rounds: the workers interleave
    with CadCentre() as centre:
        env["DATABASE_URL"] = url = workers_db  # only these two workers deliver (see `feedback_db`)
        server = ServerProcess(env=env, workers=2).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as http:
                cad = centre_token(http, admin_headers, new_agency())
                subscription = subscribe(http, cad, centre)
            incidents = [str(uuid.uuid4()) for _ in range(40)]
            await fetch(
                url,
                """INSERT INTO cad_outbox (subscription_id, incident_id, seq, event, body, status, attempts,
                                           next_try_at, created_at)
                   SELECT $1::uuid, i::uuid, s, 'en_route',
                          jsonb_build_object('event', 'en_route', 'incident_id', i, 'tracking_id', null,
                                             'seq', s, 'at', now()),
                          'pending', 0, now(), now()
                   FROM unnest($2::text[]) AS i, generate_series(1, 10) AS s""",
                subscription,
                incidents,
            )
            await until(lambda: len(centre.events) >= 400, timeout_s=30, what="400 events")
            await asyncio.sleep(0.3)
            assert len(centre.events) == 400 and centre.out_of_order == [] and centre.duplicates == 0
            assert len(centre.received) == 400  # not one request sent twice
            for incident_id in incidents:
                assert [e["seq"] for e in centre.of(incident_id)] == list(range(1, 11))
            # both processes delivered: each worker's own metrics (told apart by start time and count)
            seen: set[tuple[float, float]] = set()

            def both_workers() -> bool:
                seen.add(worker_metrics(server))
                return len(seen) >= 2

            await until(both_workers, what="both workers' metrics")
            counts = [count for _, count in seen]
            assert len(seen) == 2 and sum(counts) == 400 and min(counts) > 0, seen
        finally:
            server.stop()


# --- the websocket --------------------------------------------------------------------------------


async def frames(url: str, token: str, count: int, timeout_s: float = 10.0) -> list[dict[str, Any]]:
    async with websockets.connect(url, subprotocols=["bearer", token]) as ws:
        async with asyncio.timeout(timeout_s):
            return [json.loads(await ws.recv()) for _ in range(count)]


async def test_the_feed_as_a_websocket_live_and_replayed_from_a_cursor(
    feedback_server, admin_headers, feedback_db, centre
) -> None:
    s = Scene(feedback_server, admin_headers)
    agency = new_agency()
    cad = centre_token(s.http, admin_headers, agency)
    token = cad["Authorization"].split()[1]
    subscription = subscribe(s.http, cad, centre)
    s.person("near", -30)
    s.person("near2", -35)
    s.person("near3", -40)
    url = f"{feedback_server.ws_url}/v1/ws/cad?subscription={subscription}"
    try:
        listening = asyncio.create_task(frames(url, token, 3))
        await asyncio.sleep(0.5)  # connected: only what comes now is sent
        incident_id = await closed_incident_story(s, feedback_db, agency)
        live = await listening
        assert [(f["event"], f["seq"], f["incident_id"]) for f in live] == [
            ("answered", 1, incident_id),
            ("reached", 2, incident_id),
            ("closed", 3, incident_id),
        ]
        posted = await until(
            lambda: len(centre.of(incident_id)) >= 3 and centre.of(incident_id), what="POSTs"
        )
        assert [{k: v for k, v in f.items() if k != "cursor"} for f in live] == posted  # the same events

        replay = await frames(f"{url}&after={live[0]['cursor']}", token, 2)
        assert [f["seq"] for f in replay] == [2, 3]

        other = centre_token(s.http, admin_headers, new_agency())["Authorization"].split()[1]
        desk = s.desk["Authorization"].split()[1]
        for who, code in ((other, 4404), (desk, 4403)):
            async with websockets.connect(url, subprotocols=["bearer", who]) as ws:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(ws.recv(), 5)
                assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    finally:
        await s.close()


# --- the whole loop: EIDO in, feedback out --------------------------------------------------------


async def test_a_case_posted_as_eido_is_reported_back_to_its_centre_from_the_first_alert(
    feedback_server, admin_headers, centre
) -> None:
    """The integrator's loop end to end: the centre posts an EIDO, two responders near the patient
    are alerted, and the centre hears `alerted` (seq 1, its own tracking id) with no SQL in between;
    its closure then comes back as `closed` after the responders are stood down."""
    s = Scene(feedback_server, admin_headers)
    try:
        agency = new_agency()
        cad = centre_token(s.http, admin_headers, agency)
        subscribe(s.http, cad, centre)
        s.person("near", 40)
        s.person("also", -60)
        tracking = eido.new_tracking_id()
        posted = s.http.post(
            "/v1/cad/eido", json=eido.case("point", tracking, to=(s.lat, s.lng)), headers=cad
        )
        assert posted.status_code == 201, posted.text
        incident_id = posted.json()["incident_id"]
        assert posted.json()["alerts"] == 2
        story = await until(lambda: centre.of(incident_id) or None, what="the centre hears the opening")
        first = story[0]
        assert (first["event"], first["seq"], first["tracking_id"]) == ("alerted", 1, tracking)
        assert first["alerted"] == 2

        closing = eido.case("point", tracking, at_s=60, to=(s.lat, s.lng), status="Closed")
        assert s.http.post("/v1/cad/eido", json=closing, headers=cad).status_code == 200

        def heard_closed() -> list[str] | None:
            kinds = [e["event"] for e in centre.of(incident_id)]
            return kinds if "closed" in kinds else None

        kinds = await until(heard_closed, what="the centre hears the closure")
        assert kinds[0] == "alerted" and kinds[-1] == "closed"
        assert [e["seq"] for e in centre.of(incident_id)] == list(range(1, len(kinds) + 1))
        assert all(req.verdict == "" for req in centre.received) and centre.duplicates == 0
    finally:
        await s.close()
