"""Rate limits, cheap refusal of guessed tokens, security headers and what operators can hide, over
real HTTP against servers that share one Redis (each test on a Redis namespace of its own, since
every request of the suite comes from 127.0.0.1)."""

from __future__ import annotations

import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import websockets
from prometheus_client import REGISTRY

from core.ratelimit import RateLimits
from core.redis import Keys, connect_redis, is_cluster
from tests.support.blackhole import Blackhole
from tests.support.people import bearer
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration


@contextmanager
def servers(app_env: dict[str, str], count: int, **env: str) -> Iterator[list[ServerProcess]]:
    prefix = f"{app_env['DISPATCH_REDIS_PREFIX']}rl{secrets.token_hex(2)}"
    started = [ServerProcess(env={**app_env, "DISPATCH_REDIS_PREFIX": prefix, **env}) for _ in range(count)]
    try:
        yield [s.start() for s in started]
    finally:
        for s in started:
            s.stop()


def metric(http: httpx.Client, name: str, **labels: str) -> float:
    text = http.get("/metrics").text
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{name}{{{wanted}}} (\S+)$", text, re.M) if labels else None
    match = match or re.search(rf"^{name} (\S+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def test_a_token_over_its_limit_gets_429_counted_across_workers(
    app_env, admin_headers, redis_url_each
) -> None:
    with servers(app_env, 2, REDIS_URL=redis_url_each, DISPATCH_RATE_LIMIT_PER_TOKEN="10/minute") as (a, b):
        r = httpx.post(f"{a.url}/v1/tokens", json={"role": "planner", "label": "rl"}, headers=admin_headers)
        planner = bearer(r.json()["token"])
        answers = [
            httpx.get(f"{(a, b)[i % 2].url}/v1/web/session", headers=planner, timeout=30) for i in range(14)
        ]
    assert [r.status_code for r in answers] == [200] * 10 + [429] * 4
    for refused in answers[10:]:
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["errors"][0]["field"] == "rate" and "per token" in refused.json()["detail"]


def test_a_flood_of_wrong_tokens_costs_few_lookups(app_env) -> None:
    with (
        servers(app_env, 1, DISPATCH_AUTH_FAILURES_PER_ADDRESS="5/minute") as (server,),
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        before = metric(http, "auth_token_lookups_total", result="unknown")
        codes = [
            http.get("/v1/web/session", headers=bearer(secrets.token_urlsafe(32))).status_code
            for _ in range(300)
        ]
        lookups = metric(http, "auth_token_lookups_total", result="unknown") - before
        cheap = metric(http, "auth_rejected_without_lookup_total", reason="address_limited")
    assert set(codes) == {401, 429} and codes[:5] == [401] * 5 and codes[-1] == 429
    assert lookups <= 6, f"{lookups} database lookups for 300 wrong tokens"
    assert cheap >= 290


async def test_a_socket_handshake_over_the_address_limit_is_refused(app_env) -> None:
    with servers(app_env, 1, DISPATCH_RATE_LIMIT_PER_ADDRESS="5/minute") as (server,):
        http = httpx.AsyncClient(base_url=server.url, timeout=30)
        codes = [(await http.get("/v1/web/config")).status_code for _ in range(7)]
        assert codes == [200] * 5 + [429] * 2
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(f"{server.ws_url}/v1/ws/dispatch", subprotocols=["bearer", "x"]):
                pass
        assert refused.value.response.status_code == 403
        assert (await http.get("/healthz")).status_code == 200  # probes are never limited
        await http.aclose()


def test_security_headers_on_every_response(http, admin_headers) -> None:
    answers = [
        http.get("/healthz"),
        http.get("/"),
        http.get("/static/console.js"),
        http.get("/v1/web/config"),
        http.get("/v1/web/session"),  # 401
        http.get("/v1/nothing-here"),  # 404
        http.post("/v1/tokens", json={"role": "nope"}, headers=admin_headers),  # 422
    ]
    for r in answers:
        assert r.headers["x-content-type-options"] == "nosniff", r.url
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "no-referrer"
        policy = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy
    assert http.get("/docs").headers["x-frame-options"] == "DENY"


def test_docs_and_metrics_can_be_hidden(app_env) -> None:
    token = secrets.token_urlsafe(16)
    with (
        servers(app_env, 1, DISPATCH_DOCS_ENABLED="0", DISPATCH_METRICS_TOKEN=token) as (server,),
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        assert [http.get(p).status_code for p in ("/docs", "/redoc", "/openapi.json")] == [404] * 3
        assert http.get("/metrics").status_code == 401
        assert http.get("/metrics", headers=bearer("wrong")).status_code == 401
        assert "http_requests_total" in http.get("/metrics", headers=bearer(token)).text


def test_a_valid_token_is_not_locked_out_by_its_address(app_env, admin_headers) -> None:
    """Phones reach us through carrier-grade NAT, thousands behind one address: a stale phone
    retrying a revoked token, or a busy neighbour, must not lock a valid dispatcher out."""
    limits = {
        "DISPATCH_AUTH_FAILURES_PER_ADDRESS": "5/minute",
        "DISPATCH_RATE_LIMIT_PER_ADDRESS": "60/minute",
    }
    with (
        servers(app_env, 1, **limits) as (server,),
        httpx.Client(base_url=server.url, timeout=30) as http,
    ):
        r = http.post("/v1/tokens", json={"role": "dispatcher", "label": "nat"}, headers=admin_headers)
        dispatcher = bearer(r.json()["token"])
        assert http.get("/v1/web/session", headers=dispatcher).status_code == 200
        wrong = [
            http.get("/v1/web/session", headers=bearer(secrets.token_urlsafe(32))).status_code
            for _ in range(40)
        ]
        assert wrong[:5] == [401] * 5 and wrong[-1] == 429  # the address is blocked for guessing
        anonymous = [http.get("/v1/web/config").status_code for _ in range(30)]
        assert anonymous[-1] == 429  # and over its request limit
        still = [http.get("/v1/web/session", headers=dispatcher).status_code for _ in range(10)]
        incident = http.post(
            "/v1/incidents",
            json={"lat": 22.5431, "lng": 114.0579, "category": "cardiac_arrest"},
            headers=dispatcher,
        )
    assert still == [200] * 10
    assert incident.status_code == 201, incident.text


async def test_workers_share_the_counts_on_one_server_and_on_a_cluster(redis_url_each: str) -> None:
    """Two workers' limits over the same Redis (on a cluster, counters of many addresses spread
    over the shards): a token's and each address's requests are counted together."""
    keys = Keys("rclimits" + secrets.token_hex(3))
    clients = [connect_redis(redis_url_each) for _ in range(2)]
    workers = [
        RateLimits(
            c,
            keys,
            redis_url=redis_url_each,
            per_address="4/minute",
            per_token="3/minute",
            auth_failures="2/minute",
        )
        for c in clients
    ]
    try:
        # A worker's first check meets a cold client (a cluster client learns the slots and loads
        # the script) and, on a loaded machine, may pass CHECK_TIMEOUT_S and fail open: not counted.
        for limits in workers:
            await limits.storage.check()
            await limits.check("10.0.0.1", "warm-up")
        skipped = REGISTRY.get_sample_value("rate_limit_store_errors_total") or 0.0
        token = secrets.token_hex(32)
        by_token = [await workers[i % 2].check(f"10.1.0.{i}", token) for i in range(5)]
        failed_open = (REGISTRY.get_sample_value("rate_limit_store_errors_total") or 0.0) - skipped
        assert [r is None for r in by_token] == [True, True, True, False, False], f"{failed_open} failed open"
        assert by_token[3] is not None and "per token" in by_token[3].limit
        addresses = [f"10.2.{i}.1" for i in range(20)]
        for address in addresses:
            answers = [await workers[i % 2].check(address, None) for i in range(5)]
            assert [r is None for r in answers] == [True] * 4 + [False], address
        failures = [await workers[i % 2].failed_lookup("10.3.0.1") for i in range(3)]
        assert [r is None for r in failures] == [True, True, False]
    finally:
        for limits, client in zip(workers, clients, strict=True):
            await limits.aclose()
            await client.aclose()


async def test_a_limiter_whose_store_is_not_up_yet_lets_requests_through_then_counts(
    redis_url_each: str,
) -> None:
    """Cold start: the workers came up before Redis answers. A single server's limiter and a
    cluster's (a client of its own, that has not learnt the slots) behave alike: each check fails
    open (dispatch must work without Redis), and once Redis answers requests are counted."""
    keys = Keys("rclimits" + secrets.token_hex(3))
    target = int(redis_url_each.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as probe:  # a port nobody listens on, until the relay to Redis starts there
        probe.bind(("127.0.0.1", 0))
        redis = Blackhole(target_port=target, port=probe.getsockname()[1])
    client = connect_redis(redis.url, cluster=bool(is_cluster(redis_url_each)))
    limits = RateLimits(
        client,
        keys,
        redis_url=redis.url,
        per_address="2/minute",
        per_token="5/minute",
        auth_failures="2/minute",
    )
    try:
        errors = REGISTRY.get_sample_value("rate_limit_store_errors_total") or 0.0
        assert [await limits.check("10.4.0.1", None) for _ in range(4)] == [None] * 4
        assert await limits.failed_lookup("10.4.0.1") is None
        assert (REGISTRY.get_sample_value("rate_limit_store_errors_total") or 0.0) - errors == 5

        await redis.start()
        await limits.storage.check()  # the first check of a cold client may pass CHECK_TIMEOUT_S
        answers = [await limits.check("10.4.0.2", None) for _ in range(3)]
        assert [r is None for r in answers] == [True, True, False]
        assert answers[2] is not None and "per address" in answers[2].limit
    finally:
        await limits.aclose()
        await client.aclose()
        await redis.aclose()
