"""Socket authentication end to end: revoking a token closes its sockets on every worker, and no
token ever reaches a log file (two real servers on the same PostgreSQL and Redis)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets

from tests.support.db import revoke_unannounced
from tests.support.people import bearer, on_duty_at, register
from tests.support.phones import Console, Phone
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration
CLOSE_WITHIN_S = 5.0  # "within seconds" for the announcement path


def _server(app_env: dict[str, str], **env: str) -> ServerProcess:
    # info: uvicorn writes its access log and every socket handshake, the lines that leaked tokens
    return ServerProcess(env={**app_env, "PYTHONUNBUFFERED": "1", **env}, log_level="info")


@pytest.fixture(scope="module")
def pair(app_env: dict[str, str]) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two workers on the same stores. Their periodic re-check is 10 minutes away, so a socket that
    closes within seconds was closed by the announcement over Redis."""
    a = _server(app_env, DISPATCH_WS_TOKEN_RECHECK_S="600").start()
    b = _server(app_env, DISPATCH_WS_TOKEN_RECHECK_S="600").start()
    yield a, b
    a.stop()
    b.stop()


async def closed_code(ws: Any, timeout: float = CLOSE_WITHIN_S) -> tuple[int, str, list[dict]]:
    """Wait for the server to close the socket; the close code, reason and any frames before it."""
    frames: list[dict] = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None, "closed without a close frame"
            return closed.rcvd.code, closed.rcvd.reason, frames


async def alive(ws: Any) -> None:
    await asyncio.wait_for(await ws.ping(), 5)


async def test_revoking_and_rotating_close_sockets_on_every_worker(pair, admin_headers) -> None:
    a, b = pair
    http = httpx.Client(base_url=a.url, timeout=30)
    issued = http.post(
        "/v1/tokens", json={"role": "dispatcher", "label": "desk"}, headers=admin_headers
    ).json()
    other_desk = bearer(
        http.post("/v1/tokens", json={"role": "dispatcher", "label": "desk 2"}, headers=admin_headers).json()[
            "token"
        ]
    )
    lat, lng = random.uniform(-45, 45), random.uniform(-170, 170)
    person = on_duty_at(http, admin_headers, lat, lng)
    async with (
        Console(a.ws_url, issued["token"]) as desk_a,
        Console(b.ws_url, issued["token"]) as desk_b,
        Phone(a.ws_url, person["token"]) as phone_a,
        Phone(b.ws_url, person["token"]) as phone_b,
    ):
        for ws in (desk_a.ws, desk_b.ws, phone_a.ws, phone_b.ws):
            assert ws.subprotocol == "bearer"
            await alive(ws)

        r = http.delete(f"/v1/tokens/{issued['id']}", headers=admin_headers)
        assert r.status_code == 204
        for desk in (desk_a, desk_b):
            code, reason, _ = await closed_code(desk.ws)
            assert (code, reason) == (4401, "token revoked")

        # the lost phone: rotation from the other server; both old sockets close, the new token works
        with httpx.Client(base_url=b.url, timeout=30) as http_b:
            rotated = http_b.post(f"/v1/responders/{person['id']}/token", headers=admin_headers).json()[
                "token"
            ]
        for phone in (phone_a, phone_b):
            code, reason, frames = await closed_code(phone.ws)
            assert (code, reason) == (4401, "token revoked")
            assert not [f for f in frames if f["type"] in ("alert", "incident")]

        # nothing reaches the old phone any more: an incident beside it alerts only the new token
        async with Phone(a.ws_url, rotated) as new_phone:
            r = http.post(
                "/v1/incidents", json={"lat": lat, "lng": lng, "category": "choking"}, headers=other_desk
            )
            assert r.status_code == 201, r.text
            alert = await new_phone.next(timeout=10, type_="alert")
            assert alert["incident_id"] == r.json()["id"]
    for path, token in (("/v1/ws/dispatch", issued["token"]), ("/v1/ws/responder", person["token"])):
        async with websockets.connect(f"{b.ws_url}{path}", subprotocols=["bearer", token]) as ws:
            assert (await closed_code(ws))[:2] == (4401, "invalid, revoked or missing token")


async def test_a_missed_announcement_is_caught_by_the_periodic_recheck(
    app_env, store_env, admin_headers
) -> None:
    """A revocation nobody announced (written straight to PostgreSQL) still closes the socket."""
    server = _server(app_env, DISPATCH_WS_TOKEN_RECHECK_S="1").start()
    try:
        http = httpx.Client(base_url=server.url, timeout=30)
        person = register(http, admin_headers)
        async with Phone(server.ws_url, person["token"]) as phone:
            await alive(phone.ws)
            await revoke_unannounced(store_env["DATABASE_URL"], person["id"])
            code, reason, _ = await closed_code(phone.ws, timeout=10)
            assert (code, reason) == (4401, "token revoked")
    finally:
        server.stop()


async def test_no_token_is_ever_written_to_the_log(pair, admin_headers) -> None:
    a, _ = pair
    http = httpx.Client(base_url=a.url, timeout=30)
    person = register(http, admin_headers)
    desk = http.post("/v1/tokens", json={"role": "dispatcher", "label": "log"}, headers=admin_headers).json()
    secrets_used = [person["token"], desk["token"], admin_headers["Authorization"].split()[1]]
    # requests as old clients make them: the token in the query string, and in the header
    assert (
        http.get(f"/v1/web/session?token={desk['token']}", headers=bearer(desk["token"])).status_code == 200
    )
    assert http.get(f"/healthz?token={admin_headers['Authorization'].split()[1]}").status_code == 200
    assert http.get("/v1/web/session", headers=bearer("wrong-" + person["token"])).status_code == 401
    # sockets: the new way (subprotocol) and an old client's `?token=`
    async with Phone(a.ws_url, person["token"]) as phone:
        await alive(phone.ws)
    async with websockets.connect(f"{a.ws_url}/v1/ws/dispatch?token={desk['token']}") as old_client:
        await alive(old_client)
    async with websockets.connect(f"{a.ws_url}/v1/ws/responder?token={person['token']}x") as refused:
        assert (await closed_code(refused))[0] == 4401
    assert a.log_path is not None
    text = ""
    for _ in range(50):  # the access log line is written after the response
        text = a.log_path.read_text()
        if "/v1/ws/dispatch?token=***" in text:
            break
        await asyncio.sleep(0.1)
    assert "/v1/web/session?token=***" in text and "/v1/ws/dispatch?token=***" in text, text[-2000:]
    for secret in secrets_used:
        assert secret not in text


async def test_dispatch_token_revoke_on_the_command_line_closes_the_sockets(
    pair, app_env, admin_headers
) -> None:
    """The CLI runs outside the servers: it announces through Redis like the API does."""
    from tests.integration.test_cli import dispatch_cli

    a, b = pair
    http = httpx.Client(base_url=a.url, timeout=30)
    issued = http.post(
        "/v1/tokens", json={"role": "dispatcher", "label": "cli"}, headers=admin_headers
    ).json()
    async with Console(b.ws_url, issued["token"]) as desk:
        await alive(desk.ws)
        cli = await asyncio.to_thread(dispatch_cli, "token", "revoke", issued["id"], env=app_env)
        assert cli.returncode == 0, cli.stderr
        assert (await closed_code(desk.ws))[:2] == (4401, "token revoked")
