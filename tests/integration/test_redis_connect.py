"""`core.redis.connect_redis` tells a cluster from a single server by asking it, and can be told;
both kinds of client give up on a hung server within their timeouts."""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest
import redis as sync_redis
from redis.asyncio import Redis, RedisCluster

from core.redis import (
    CLUSTER_RETRIES,
    RECONNECT_ATTEMPTS,
    REDIS_DOWN,
    RedisClient,
    connect_cluster,
    connect_redis,
    connect_single,
    is_cluster,
)


def test_the_server_says_whether_it_is_a_cluster(store_env: dict[str, str], cluster_url: str) -> None:
    assert is_cluster(store_env["REDIS_URL"]) is False
    assert is_cluster(cluster_url) is True
    assert is_cluster("redis://127.0.0.1:1/0") is None  # nobody there: cannot tell


async def test_a_client_of_the_right_kind_from_any_node_of_the_cluster(
    store_env: dict[str, str], cluster_url: str
) -> None:
    single = connect_redis(store_env["REDIS_URL"])
    assert isinstance(single, Redis)
    await single.aclose()
    port = int(cluster_url.rsplit(":", 1)[1].split("/")[0])
    for node in range(3):  # any node of the cluster will do as the seed
        client = connect_redis(f"redis://127.0.0.1:{port + node}/0")
        assert isinstance(client, RedisCluster)
        try:
            keys = [f"{{{tag}}}probe" for tag in ("a", "b", "c", "d")]  # four tags: three slots' owners
            for key in keys:
                await client.set(key, node, ex=30)
            assert [await client.get(k) for k in keys] == [str(node)] * 4
        finally:
            await client.aclose()


@pytest.mark.parametrize("forced", [True, False])
async def test_the_mode_can_be_forced(store_env: dict[str, str], forced: bool) -> None:
    client = connect_redis(store_env["REDIS_URL"], cluster=forced)
    try:
        if forced:  # a single server told to be a cluster: refused at the first command, not misused
            assert isinstance(client, RedisCluster)
            with pytest.raises(Exception, match=r"[Cc]luster"):
                await client.ping()
        else:
            assert isinstance(client, Redis)
            assert await client.ping()
    finally:
        await client.aclose()


@pytest.mark.parametrize("kind", ["single", "cluster"])
async def test_a_read_from_a_hung_server_fails_within_its_timeouts(
    store_env: dict[str, str], cluster_url: str, kind: str
) -> None:
    """A server or cluster node that holds connections but answers nobody (`CLIENT PAUSE`: as a
    stopped process would, without the cluster failing it over) fails the read: each attempt
    within the timeout, the command within its retries, never an endless wait."""
    timeout_s = 0.3
    if kind == "single":
        client: RedisClient = connect_single(store_env["REDIS_URL"], timeout_s=timeout_s)
        retries = RECONNECT_ATTEMPTS
    else:
        client = connect_cluster(cluster_url, 8, read_from_replicas=False, timeout_s=timeout_s)
        retries = CLUSTER_RETRIES
    key = "{hung-" + secrets.token_hex(4) + "}probe"
    await client.set(key, "here", ex=60)
    node = client.get_node_from_key(key) if isinstance(client, RedisCluster) else None
    port = node.port if node is not None else int(store_env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    backoff_s = 0.5 * retries  # the retries' backoff is capped below this
    # each attempt: the read's timeout, and on a cluster the slot map asked again (the hung node
    # may be asked first)
    bound_s = (retries + 1) * timeout_s * (2 if node is not None else 1) + backoff_s
    with sync_redis.Redis(port=port, socket_timeout=2) as admin:
        admin.execute_command("CLIENT", "PAUSE", int((bound_s + 5) * 1000), "ALL")
        try:
            started = time.monotonic()
            with pytest.raises(REDIS_DOWN):
                await asyncio.wait_for(client.get(key), bound_s + 4)  # a hang would end here instead
            took = time.monotonic() - started
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
    assert timeout_s <= took <= bound_s, f"failed after {took:.2f} s"
    assert await client.get(key) == "here"  # answered again once the server is
    await client.aclose()
