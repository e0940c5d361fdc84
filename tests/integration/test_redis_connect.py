"""`core.redis.connect_redis` tells a cluster from a single server by asking it, and can be told."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis, RedisCluster

from core.redis import connect_redis, is_cluster


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
