"""Acceptance learned per responder, through the real app: answers and expiries move the tallies
and the estimate, exactly (concurrent answers included); alerts the dispatcher ended do not
count; admins see it on the profile, nobody else does."""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from core.config import Settings
from core.db import Database
from responders.acceptance import Tally, band_at, estimate
from responders.acceptance_store import AcceptanceStore
from tests.integration.test_dispatch import dispatcher, offset, remote_spot
from tests.support.db import fetch
from tests.support.people import bearer, on_duty_at, register
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
PRIOR, STRENGTH = 0.35, 10.0  # the settings' defaults


def band_now() -> str:
    return band_at(datetime.now(ZoneInfo("Asia/Shanghai")))


def other_band() -> str:
    return "day" if band_now() == "night" else "night"


def new_team() -> str:
    return f"acc{secrets.token_hex(4)}/crew"


def open_incident(http: httpx.Client, desk: dict[str, str], lat: float, lng: float) -> dict:
    r = http.post("/v1/incidents", json={"lat": lat, "lng": lng, "category": "cardiac_arrest"}, headers=desk)
    assert r.status_code == 201, r.text
    return r.json()


def alert_of(incident: dict, person: dict) -> str:
    (alert,) = [a["alert_id"] for a in incident["alerts"] if a["responder_id"] == person["id"]]
    return alert


def answer(http: httpx.Client, person: dict, alert_id: str, response: str) -> None:
    r = http.post(
        f"/v1/alerts/{alert_id}/answer", json={"response": response}, headers=bearer(person["token"])
    )
    assert r.status_code == 200, r.text


def learned(http: httpx.Client, admin: dict[str, str], person: dict) -> dict:
    r = http.get(f"/v1/responders/{person['id']}", headers=admin)
    assert r.status_code == 200, r.text
    return r.json()["acceptance"]


async def tallies(database_url: str, level: str, key: str) -> dict[str, Tally]:
    rows = await fetch(
        database_url,
        "SELECT band, accepted, declined, unanswered FROM acceptance_tallies WHERE level = $1 AND key = $2",
        level,
        key,
    )
    return {r["band"]: Tally(r["accepted"], r["declined"], r["unanswered"]) for r in rows}


async def team_id(database_url: str, person: dict) -> str:
    (row,) = await fetch(
        database_url, "SELECT team_id::text AS id FROM responders WHERE id = $1::uuid", person["id"]
    )
    return row["id"]


async def test_declines_lower_the_estimate_and_pull_the_team_down_with_it(
    http, admin_headers, store_env
) -> None:
    desk = dispatcher(http, admin_headers)
    lat, lng = remote_spot()
    team = new_team()
    decliner = on_duty_at(http, admin_headers, *offset(lat, lng, 30, 0), team=team, category="park_security")
    teammate = register(http, admin_headers, team=team, category="park_security")
    stranger = register(http, admin_headers, team=new_team(), category="park_security")
    before = learned(http, admin_headers, decliner)
    fresh = learned(http, admin_headers, stranger)[band_now()]["estimate"]
    assert before[band_now()] == {"accepted": 0, "declined": 0, "unanswered": 0, "estimate": fresh}

    for _ in range(5):
        answer(http, decliner, alert_of(open_incident(http, desk, lat, lng), decliner), "decline")

    mine = learned(http, admin_headers, decliner)
    assert {k: v for k, v in mine[band_now()].items() if k != "estimate"} == {
        "accepted": 0,
        "declined": 5,
        "unanswered": 0,
    }
    assert mine[other_band()] == {**before[other_band()]}  # the other band untouched
    p_decliner = mine[band_now()]["estimate"]
    p_teammate = learned(http, admin_headers, teammate)[band_now()]["estimate"]
    p_stranger = learned(http, admin_headers, stranger)[band_now()]["estimate"]
    assert p_decliner < p_teammate < p_stranger  # his own declines most, his team's through shrinkage
    # five declines weigh as much as half the prior's ten: own 10/15 of the team's, itself 10/15 of
    # the category's, which these declines only lowered: at most 4/9 of where he started
    assert p_decliner <= before[band_now()]["estimate"] * 4 / 9 + 1e-4

    # exactly the Beta-Binomial shrinkage of what is stored: responder -> team -> category -> prior
    url = store_env["DATABASE_URL"]
    band = band_now()
    own = (await tallies(url, "responder", decliner["id"]))[band]
    team_tally = (await tallies(url, "team", await team_id(url, decliner)))[band]
    category = (await tallies(url, "category", "park_security"))[band]
    assert own == team_tally == Tally(0, 5, 0)
    want = estimate(own, team=team_tally, category=category, prior=PRIOR, strength=STRENGTH)
    assert p_decliner == pytest.approx(want, abs=1e-4)

    # what matching reads for a whole pool in one query is what the admin sees, one by one
    settings = Settings(database_url=url, redis_url=store_env["REDIS_URL"])
    db = Database(url, pool_size=1)
    stranger_to_the_registry = str(uuid.uuid4())
    try:
        async with db.sessions() as session:
            pool = [decliner["id"], teammate["id"], stranger["id"], stranger_to_the_registry]
            got = await AcceptanceStore.from_settings(settings).estimates(session, pool, datetime.now(UTC))
    finally:
        await db.dispose()
    assert got[decliner["id"]] == pytest.approx(p_decliner, abs=1e-4)
    assert got[teammate["id"]] == pytest.approx(p_teammate, abs=1e-4)
    assert got[stranger["id"]] == pytest.approx(p_stranger, abs=1e-4)
    assert got[stranger_to_the_registry] == PRIOR  # no team, no category: the prior itself


async def test_acceptances_raise_the_estimate_above_a_newcomers(http, admin_headers) -> None:
    desk = dispatcher(http, admin_headers)
    lat, lng = remote_spot()
    team = new_team()
    keen = on_duty_at(http, admin_headers, *offset(lat, lng, 0, 40), team=team)
    newcomer = register(http, admin_headers, team=team)
    for _ in range(3):
        incident = open_incident(http, desk, lat, lng)
        answer(http, keen, alert_of(incident, keen), "accept")
        assert http.post(f"/v1/incidents/{incident['id']}/close", json={}, headers=desk).status_code == 200
    mine = learned(http, admin_headers, keen)[band_now()]
    assert (mine["accepted"], mine["declined"], mine["unanswered"]) == (3, 0, 0)  # closing un-counts nothing
    assert mine["estimate"] > learned(http, admin_headers, newcomer)[band_now()]["estimate"]


async def test_concurrent_answers_are_all_counted_exactly_once(
    live_server, http, admin_headers, store_env
) -> None:
    """Three teammates answer each of four incidents at the same moment: every answer lands on the
    same team and category rows, and none is lost or doubled."""
    desk = dispatcher(http, admin_headers)
    lat, lng = remote_spot()
    team = new_team()
    crew = [on_duty_at(http, admin_headers, *offset(lat, lng, 20 * i, 0), team=team) for i in range(3)]
    url = store_env["DATABASE_URL"]
    category_before = (await tallies(url, "category", "sanitation_worker")).get(band_now(), Tally())
    responses = ["accept", "decline", "decline"]
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as client:
        for _ in range(4):
            incident = open_incident(http, desk, lat, lng)
            answers = await asyncio.gather(
                *(
                    client.post(
                        f"/v1/alerts/{alert_of(incident, p)}/answer",
                        json={"response": response},
                        headers=bearer(p["token"]),
                    )
                    for p, response in zip(crew, responses, strict=True)
                )
            )
            assert [r.status_code for r in answers] == [200, 200, 200], [r.text for r in answers]
    team_tally = (await tallies(url, "team", await team_id(url, crew[0])))[band_now()]
    assert team_tally == Tally(4, 8, 0)
    for person, response in zip(crew, responses, strict=True):
        own = (await tallies(url, "responder", person["id"]))[band_now()]
        assert own == (Tally(4, 0, 0) if response == "accept" else Tally(0, 4, 0))
    category = (await tallies(url, "category", "sanitation_worker"))[band_now()]
    # (alerts of earlier tests may expire meanwhile, adding to `unanswered`; nobody else answers)
    assert (category.accepted - category_before.accepted, category.declined - category_before.declined) == (
        4,
        8,
    )


@pytest.fixture(scope="module")
def quick_expiry(app_env: dict[str, str]) -> Iterator[ServerProcess]:
    """Alerts expire after 2 s, so expiry (and its absence after a close) can be watched."""
    server = ServerProcess(env={**app_env, "DISPATCH_ALERT_TTL_S": "2"}).start()
    yield server
    server.stop()


async def test_an_expiry_counts_as_unanswered_and_a_closed_incident_counts_nothing(
    quick_expiry, admin_headers
) -> None:
    http = httpx.Client(base_url=quick_expiry.url, timeout=30)
    desk = dispatcher(http, admin_headers)
    lat, lng = remote_spot()
    silent = on_duty_at(http, admin_headers, *offset(lat, lng, 10, 0))
    far_lat, far_lng = remote_spot()
    stood_down = on_duty_at(http, admin_headers, *offset(far_lat, far_lng, 10, 0))

    assert alert_of(open_incident(http, desk, lat, lng), silent)
    closed = open_incident(http, desk, far_lat, far_lng)
    assert alert_of(closed, stood_down)
    assert http.post(f"/v1/incidents/{closed['id']}/close", json={}, headers=desk).status_code == 200

    deadline = time.monotonic() + 15
    while learned(http, admin_headers, silent)[band_now()]["unanswered"] == 0:
        assert time.monotonic() < deadline, "the unanswered alert never expired into the tally"
        await asyncio.sleep(0.3)
    await asyncio.sleep(3)  # well past the closed incident's alert's expiry, and a few clock ticks
    mine = learned(http, admin_headers, silent)[band_now()]
    assert (mine["accepted"], mine["declined"], mine["unanswered"]) == (0, 0, 1)  # counted once
    theirs = learned(http, admin_headers, stood_down)[band_now()]
    assert (theirs["accepted"], theirs["declined"], theirs["unanswered"]) == (0, 0, 0)
    assert mine["estimate"] < theirs["estimate"]
    detail = http.get(f"/v1/incidents/{closed['id']}", headers=desk).json()
    assert [a["status"] for a in detail["alerts"]] == ["cancelled"]


def test_only_admins_see_acceptance_on_the_profile(http, admin_headers) -> None:
    person = register(http, admin_headers)
    desk = dispatcher(http, admin_headers)
    seen = http.get(f"/v1/responders/{person['id']}", headers=admin_headers).json()["acceptance"]
    assert set(seen) == {"day", "night"}
    assert set(seen["day"]) == {"accepted", "declined", "unanswered", "estimate"}
    for who in (bearer(person["token"]), desk):
        r = http.get(f"/v1/responders/{person['id']}", headers=who)
        assert r.status_code == 200 and r.json()["acceptance"] is None
