"""Positions of off-duty responders are never kept: through every path a position comes in or a
duty ends (an HTTP fix, a gateway's batch, a socket's fix, going off duty, deactivation), the
stores themselves are searched for it: every key of the server's Redis prefix (names and values,
the live pages' binary records included), every row of every PostgreSQL table, and the server's
log at INFO with every request written.

Each test first shows the search finds a position that is kept (on duty, in Redis), so a search
that finds nothing later means nothing is there, not a search that cannot see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests.support.db import stores_of_its_own
from tests.support.people import bearer, iso, register
from tests.support.phones import Phone
from tests.support.privacy import Spot, redis_mentions, tables_mentioning
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(app_env: dict[str, str], store_env: dict[str, str]) -> Iterator[ServerProcess]:
    """The app writing everything a deployment may log at INFO (the access log with the routine
    position posts and duty changes too), on stores of its own so its Redis prefix and database
    hold only this module's people."""
    with (
        stores_of_its_own(store_env["DATABASE_URL"], "offduty") as own,
        ServerProcess(
            env={**app_env, **own, "DISPATCH_LOG_LEVEL": "INFO", "DISPATCH_LOG_ROUTINE_REQUESTS": "1"},
            log_level="info",
        ).start() as running,
    ):
        yield running


@pytest.fixture
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30.0) as client:
        yield client


SPOTS: list[Spot] = []  # every position a test sent: none may reach the log


def fix(spot: Spot, **fields: object) -> dict[str, object]:
    return {"lat": spot.lat, "lng": spot.lng, "ts": iso(), "accuracy_m": 5.0, **fields}


def prefix(server: ServerProcess) -> str:
    return server.env["DISPATCH_REDIS_PREFIX"]


async def kept_anywhere(server: ServerProcess, person: dict, spot: Spot) -> dict[str, object]:
    """Where the stores keep the responder's position or anything naming them in the live store:
    Redis keys (a socket's presence count names the responder but holds no position: left out),
    and tables holding the position's text."""
    needles = [person["id"].encode(), *spot.needles()]
    in_redis = await redis_mentions(server.redis_url, prefix(server), needles)
    presence = f"{prefix(server)}:sockets:{person['id']}"
    in_redis = {k: v for k, v in in_redis.items() if not (k == presence and v == person["id"].encode())}
    in_tables = await tables_mentioning(server.database_url, [repr(spot.lat), repr(spot.lng)])
    return {**in_redis, **in_tables}


def duty(api: httpx.Client, person: dict, on: bool) -> None:
    r = api.put(f"/v1/responders/{person['id']}/duty", json={"on_duty": on}, headers=bearer(person["token"]))
    assert r.status_code == 200, r.text


async def on_duty_with_position(
    server: ServerProcess, api: httpx.Client, admin: dict[str, str]
) -> tuple[dict, Spot]:
    """A responder on duty whose position is in the live store, and the search finding it there
    (and only there: on duty, no table keeps a position either)."""
    person, spot = register(api, admin), Spot.fresh()
    SPOTS.append(spot)
    duty(api, person, True)
    r = api.post("/v1/locations", json=fix(spot), headers=bearer(person["token"]))
    assert r.json()["stored"] == 1, r.text
    kept = await kept_anywhere(server, person, spot)
    live = f"{prefix(server)}:live:"
    assert kept and all(k.startswith(live) for k in kept), kept
    return person, spot


async def off_duty(api: httpx.Client, admin: dict[str, str]) -> tuple[dict, Spot]:
    """A registered responder who was on duty with a position and went off duty again."""
    person, spot = register(api, admin), Spot.fresh()
    SPOTS.append(spot)
    duty(api, person, True)
    duty(api, person, False)
    return person, spot


async def test_going_off_duty_deletes_the_position_from_every_store(server, api, admin_headers) -> None:
    person, spot = await on_duty_with_position(server, api, admin_headers)
    duty(api, person, False)
    assert await kept_anywhere(server, person, spot) == {}
    me = api.get(f"/v1/responders/{person['id']}", headers=bearer(person["token"])).json()
    assert me["on_duty"] is False and me["position"] is None


async def test_deactivation_deletes_the_position_from_every_store(server, api, admin_headers) -> None:
    person, spot = await on_duty_with_position(server, api, admin_headers)
    r = api.post(f"/v1/responders/{person['id']}/deactivate", headers=admin_headers)
    assert r.status_code == 200 and r.json()["position"] is None, r.text
    assert await kept_anywhere(server, person, spot) == {}


async def test_an_http_fix_while_off_duty_is_not_kept(server, api, admin_headers) -> None:
    person, spot = await off_duty(api, admin_headers)
    r = api.post("/v1/locations", json=fix(spot), headers=bearer(person["token"]))
    assert r.status_code == 200 and r.json()["not_on_duty"] == 1 and r.json()["stored"] == 0, r.text
    r = api.post("/v1/locations", json=fix(spot, responder_id=person["id"]), headers=admin_headers)
    assert r.status_code == 200 and r.json()["not_on_duty"] == 1, r.text
    assert await kept_anywhere(server, person, spot) == {}


async def test_a_gateway_batch_keeps_only_the_on_duty_positions(server, api, admin_headers) -> None:
    on, on_spot = await on_duty_with_position(server, api, admin_headers)
    person, spot = await off_duty(api, admin_headers)
    gateway = api.post("/v1/tokens", json={"role": "gateway", "label": "privacy"}, headers=admin_headers)
    updates = [fix(spot, responder_id=person["id"]), fix(on_spot, responder_id=on["id"])]
    r = api.post("/v1/locations", json={"updates": updates}, headers=bearer(gateway.json()["token"]))
    assert r.status_code == 200 and r.json()["stored"] == 1 and r.json()["not_on_duty"] == 1, r.text
    assert await kept_anywhere(server, person, spot) == {}


async def test_a_socket_fix_while_off_duty_is_not_kept(server, api, admin_headers) -> None:
    person, spot = await off_duty(api, admin_headers)
    async with Phone(server.ws_url, person["token"]) as phone:
        await phone.send({"type": "location", **fix(spot)})
        assert await phone.silent(1.0)  # not an error: counted as not on duty
        assert await kept_anywhere(server, person, spot) == {}
    assert await kept_anywhere(server, person, spot) == {}


async def test_going_off_duty_with_a_socket_open_deletes_the_position(server, api, admin_headers) -> None:
    person, spot = await on_duty_with_position(server, api, admin_headers)
    async with Phone(server.ws_url, person["token"]) as phone:
        await phone.send({"type": "location", **fix(spot)})
        await asyncio.sleep(0.5)
        duty(api, person, False)
        await phone.send({"type": "location", **fix(spot)})  # the phone has not heard yet
        await asyncio.sleep(0.5)
        assert await kept_anywhere(server, person, spot) == {}


def test_no_position_reaches_the_log_at_info(server: ServerProcess, api: httpx.Client) -> None:
    """Run last in this module: every position the tests above sent, on duty or off, is absent
    from the server's log, which did record their requests."""
    assert SPOTS, "run with the tests above"
    assert server.log_path is not None
    log = server.log_path.read_bytes()
    assert b"POST /v1/locations" in log and b"/duty" in log  # the requests were logged
    for spot in SPOTS:
        for needle in spot.needles()[:2]:
            assert needle not in log, needle
