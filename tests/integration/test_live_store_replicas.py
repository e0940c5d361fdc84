"""The live store reading from replicas (`DISPATCH_REDIS_READ_FROM_REPLICAS`), on a private cluster
of three primaries with a replica each (tests/support/cluster.py).

Reads (the pages' `MGET`, profile lookups) then take turns over each slot's primary and replica;
scripts, which write, always go to the primary. A replica applies the primary's writes
asynchronously, so a read from it may be behind by the replication lag: well under a millisecond
between two idle processes here, but unbounded while a replica is overloaded or cut off from its
primary (it serves what it has, `replica-serve-stale-data yes`). The store tolerates that: a nearby
query judges freshness by each record's own time, so a lagging replica returns a position that is
older by the lag (a responder who just crossed a region border may be seen at the old position, or
missed once if the old region's replica has applied the drop and the new one not yet the insert),
never one past the staleness limit; moves, duty changes and sweeps decide on what scripts read on
the primaries. The loss markers are read like any key: a lagging replica can delay noticing a
shard's loss by its lag, or repeat a rebuild (idempotent, under a lease). Once replication has
caught up (`WAIT`), the answers are the primaries'.

A client learns which replicas it may read from when it reads the slot map (at its first command,
and again after a connection error or a MOVED): `CLUSTER SLOTS` omits a replica until its first
sync is done, so a worker started before that reads from primaries only until its next refresh.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio
import redis as sync_redis

from core.redis import Keys, RedisClient, connect_redis
from responders.availability import CertificatePeriod
from responders.store import LiveLocationStore, Outcome, PositionFix
from tests.support.cluster import ReplicatedCluster
from tests.support.live import DAY, SZ, StoreSettings

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster() -> Iterator[ReplicatedCluster]:
    private = ReplicatedCluster(primaries=3, replicas=1).start()
    private.wait_replicas_listed()
    yield private
    private.stop()


@pytest_asyncio.fixture
async def clients(cluster: ReplicatedCluster) -> AsyncIterator[tuple[RedisClient, RedisClient]]:
    """A client reading from replicas, and one reading from primaries only."""
    replicas = connect_redis(cluster.url, cluster=True, read_from_replicas=True)
    primaries = connect_redis(cluster.url, cluster=True, read_from_replicas=False)
    yield replicas, primaries
    await replicas.aclose()
    await primaries.aclose()


def _calls(port: int, command: str) -> int:
    with sync_redis.Redis(port=port, socket_timeout=2, decode_responses=True) as node:
        return int(node.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def _caught_up(cluster: ReplicatedCluster, primaries: list[int]) -> None:
    """Every primary's writes so far are on its replica (`WAIT`: one replica, within 5 s)."""
    for port in primaries:
        with sync_redis.Redis(port=port, socket_timeout=10) as node:
            assert node.execute_command("WAIT", 1, 5000) >= 1, f"the replica of {port} did not catch up"


async def test_a_store_reading_from_replicas_answers_as_the_primaries_and_writes_to_them(
    cluster: ReplicatedCluster, clients: tuple[RedisClient, RedisClient]
) -> None:
    replica_client, primary_client = clients
    keys = Keys("rctest-replicas-" + secrets.token_hex(4))
    reading = LiveLocationStore(replica_client, keys, StoreSettings())
    plain = LiveLocationStore(primary_client, keys, StoreSettings())
    primaries = sorted({cluster.primary_of(slot) for slot in (0, 8000, 16000)})
    replicas = [r for p in primaries for r in cluster.replicas_of(p)]
    assert len(primaries) == 3 and len(replicas) == 3
    evals_on_replicas = sum(_calls(port, "evalsha") + _calls(port, "eval") for port in replicas)
    mgets_on_replicas = sum(_calls(port, "mget") for port in replicas)

    rng = random.Random(5)
    now = time.time()
    certs = [CertificatePeriod("cpr", int(now) - DAY, int(now) + DAY)]
    ids = [f"r{i:04d}" for i in range(2000)]
    await reading.set_profiles([(rid, "walk", certs) for rid in ids], now)
    fixes = [PositionFix(rid, rng.uniform(*SZ[:2]), rng.uniform(*SZ[2:]), now - 5) for rid in ids]
    assert await reading.ingest(fixes) == [Outcome.stored] * len(fixes)  # every write on a primary
    moved = [PositionFix(f.responder_id, f.lat + 0.01, f.lng - 0.01, now - 1) for f in fixes[:500]]
    assert await reading.ingest(moved) == [Outcome.stored] * len(moved)  # moves read nothing from replicas
    _caught_up(cluster, primaries)

    for _ in range(60):
        lat, lng, radius = rng.uniform(*SZ[:2]), rng.uniform(*SZ[2:]), rng.uniform(500, 5000)
        assert await reading.nearby(lat, lng, radius, at=now) == await plain.nearby(lat, lng, radius, at=now)
    assert sorted(await reading.positions(), key=lambda p: p.responder_id) == sorted(
        await plain.positions(), key=lambda p: p.responder_id
    )

    assert sum(_calls(port, "evalsha") + _calls(port, "eval") for port in replicas) == evals_on_replicas
    assert sum(_calls(port, "mget") for port in replicas) > mgets_on_replicas  # the reads did go there
    await reading.aclose()
    await plain.aclose()
    async for key in primary_client.scan_iter(match=keys("*"), count=1000):
        await primary_client.delete(key)
