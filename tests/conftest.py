"""Fixtures shared by every test: the real stores (started by `make test`) and the running app."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from tests.support.db import stores_of_its_own
from tests.support.server import ServerProcess
from tests.support.sms_gateway import SmsGateway
from tests.support.tencent_cloud import TencentCloud

ADMIN_TOKEN = "test-admin-" + secrets.token_hex(8)
# Every test run gets its own Redis namespace so it never reads another run's keys or channels.
REDIS_PREFIX = "rctest" + secrets.token_hex(3)


def _store_env() -> dict[str, str]:
    missing = [k for k in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(k)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not set: run the suite with `make test`, which starts the stores")
    return {"DATABASE_URL": os.environ["DATABASE_URL"], "REDIS_URL": os.environ["REDIS_URL"]}


@pytest.fixture(scope="session")
def store_env() -> dict[str, str]:
    return _store_env()


@pytest.fixture(scope="session")
def cluster_url() -> str:
    """The seed URL of the real 3-primary Redis Cluster that `make test` starts beside the single
    Redis (scripts/redis-cluster.sh)."""
    url = os.environ.get("REDIS_CLUSTER_URL")
    if not url:
        pytest.fail("REDIS_CLUSTER_URL not set: run the suite with `make test`, which starts the cluster")
    return url


@pytest.fixture(scope="session", params=["single", "cluster"])
def redis_url_each(request: pytest.FixtureRequest, store_env: dict[str, str]) -> str:
    """The single Redis, then the cluster: a test taking this runs once against each, since the
    answers must be identical on both."""
    if request.param == "single":
        return store_env["REDIS_URL"]
    return str(request.getfixturevalue("cluster_url"))


@pytest.fixture(scope="session")
def app_env(store_env: dict[str, str]) -> dict[str, str]:
    """Environment of the app under test (demo city off, short timings where tests need them)."""
    return {
        **store_env,
        "DISPATCH_ADMIN_TOKEN": ADMIN_TOKEN,
        "DISPATCH_REDIS_PREFIX": REDIS_PREFIX,
        "DISPATCH_DEMO": "0",
        "DISPATCH_LOG_JSON": "1",
        # every test talks from 127.0.0.1: the per-address limits are tested on servers of their own
        "DISPATCH_RATE_LIMIT_PER_ADDRESS": "1000000/minute",
        "DISPATCH_RATE_LIMIT_PER_TOKEN": "1000000/minute",  # the admin token serves every test
        "DISPATCH_AUTH_FAILURES_PER_ADDRESS": "100000/minute",
        # A run's fresh Redis prefix holds no positions although Postgres has people on duty (from
        # earlier runs): not a loss to warm up from. tests/integration/test_faults.py tests that.
        "DISPATCH_LIVE_WARMUP_S": "0",
    }


@pytest.fixture(scope="session")
def single_server(app_env: dict[str, str]) -> Iterator[ServerProcess]:
    """The session's app on the single Redis."""
    with ServerProcess(env=app_env).start() as server:
        yield server


@pytest.fixture(scope="session")
def cluster_server(
    app_env: dict[str, str], store_env: dict[str, str], cluster_url: str
) -> Iterator[ServerProcess]:
    """The session's app on the cluster (found out by asking it: `DISPATCH_REDIS_CLUSTER` unset), with
    the single server's settings, on a database of its own.

    Not for the settings' sake: every server runs the dispatch clock over every open incident of its
    database with its own live store and fan-out. Sharing one, this server would now and then take a
    step of an incident opened on the single server, look for people among the cluster's positions
    (not theirs) and alert through the cluster's channels, which the single server's sockets never
    hear; and the single server would do the same to this one's incidents."""
    with (
        stores_of_its_own(store_env["DATABASE_URL"], "cluster") as own,
        ServerProcess(env={**app_env, **own, "REDIS_URL": cluster_url}).start() as server,
    ):
        yield server


@pytest.fixture(scope="session")
def live_server(request: pytest.FixtureRequest) -> ServerProcess:
    """The session's app: on the single Redis, or, for a test marked `on_single_and_cluster`
    (tests/support/server.py), once on each."""
    return request.getfixturevalue(f"{getattr(request, 'param', 'single')}_server")  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def http(live_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server.url, timeout=30.0) as client:
        yield client


@pytest.fixture
def token_for(http: httpx.Client, admin_headers: dict[str, str]):  # type: ignore[no-untyped-def]
    """Issue a real token for a role through the API (a cad token for the agency `test-centre`);
    returns auth headers."""

    def issue(role: str, label: str = "test") -> dict[str, str]:
        body = {"role": role, "label": label, **({"agency": "test-centre"} if role == "cad" else {})}
        r = http.post("/v1/tokens", json=body, headers=admin_headers)
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['token']}"}

    return issue


@pytest_asyncio.fixture
async def redis_client(store_env: dict[str, str]) -> AsyncIterator[Redis]:
    client = Redis.from_url(store_env["REDIS_URL"], decode_responses=True)
    yield client
    await client.aclose()


# Stand-ins for the SMS/voice providers (tests/support/tencent_cloud.py, sms_gateway.py), fresh per test.
@pytest.fixture
def cloud() -> Iterator[TencentCloud]:
    with TencentCloud() as stand_in:
        yield stand_in  # type: ignore[misc]


@pytest.fixture
def gateway() -> Iterator[SmsGateway]:
    with SmsGateway() as stand_in:
        yield stand_in  # type: ignore[misc]
