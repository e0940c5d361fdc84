"""The live store's own read connections on a real 3-primary Redis Cluster: the cluster client's
answers, on one's own links, and still the right answer after a slot moved to another node, a
slot map naming the wrong node, a killed connection or a timeout (never a late reply read as the
next one's)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import Redis, RedisCluster
from redis.client import NEVER_DECODE
from redis.crc import key_slot

from core.cluster_reads import ClusterReads
from core.redis import connect_redis

KeysBySlot = dict[int, list[bytes]]


@pytest_asyncio.fixture(params=[False, True], ids=["primaries", "read-from-replicas"])
async def cluster(cluster_url: str, request: pytest.FixtureRequest) -> AsyncIterator[RedisCluster]:
    """The app's kind of cluster client (decoded replies), reading from replicas or not."""
    client = connect_redis(cluster_url, read_from_replicas=request.param)
    assert isinstance(client, RedisCluster)
    await client.initialize()
    yield client
    await client.aclose()


@pytest_asyncio.fixture
async def values(cluster_url: str) -> AsyncIterator[dict[bytes, bytes]]:
    """Five keys under each of 24 hash tags (slots on every node, several on one node), holding
    binary values that would not survive decoding."""
    prefix = "rctest-creads-" + secrets.token_hex(4)
    stored = {
        f"{prefix}:{{{prefix}-{t}}}:{k}".encode(): bytes([t, k, 0xFF, 0xFE]) * (k + 1)
        for t in range(24)
        for k in range(5)
    }
    binary = RedisCluster.from_url(cluster_url)
    for key, value in stored.items():
        await binary.set(key, value)
    yield stored
    for key in stored:
        await binary.delete(key)
    await binary.aclose()


def by_slot(keys: list[bytes]) -> KeysBySlot:
    groups: KeysBySlot = {}
    for key in keys:
        groups.setdefault(key_slot(key), []).append(key)
    return groups


async def through_the_client(cluster: RedisCluster, groups: KeysBySlot) -> list[list[bytes | None]]:
    """The fallback path: one `MGET` per slot through the cluster client."""
    return [await cluster.execute_command("MGET", *keys, **{NEVER_DECODE: []}) for keys in groups.values()]


def count_fallbacks(cluster: RedisCluster, monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """The commands the reads send through the cluster client (the real one, counted)."""
    sent: list[tuple[Any, ...]] = []
    real: Callable[..., Awaitable[Any]] = cluster.execute_command

    async def counted(*args: Any, **options: Any) -> Any:
        sent.append(args)
        return await real(*args, **options)

    monkeypatch.setattr(cluster, "execute_command", counted)
    return sent


async def test_reads_equal_the_cluster_clients_and_are_never_decoded(
    cluster: RedisCluster, values: dict[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [*values, b"rctest-creads-missing"]
    groups = by_slot(keys)
    nodes = {cluster.nodes_manager.slots_cache[slot][0].name for slot in groups}
    assert len(nodes) == 3 and len(groups) > len(nodes)  # every node, and several slots on one
    expected = await through_the_client(cluster, groups)
    reads = ClusterReads(cluster)
    sent = count_fallbacks(cluster, monkeypatch)
    try:
        assert await reads.mget(groups) == expected
        assert await reads.mget(groups) == expected  # the links kept, still in step
    finally:
        await reads.aclose()
    assert expected == [[values.get(k) for k in group] for group in groups.values()]
    assert sent == []  # all on the read's own links


async def test_concurrent_reads_each_get_their_own_answer(
    cluster: RedisCluster, values: dict[bytes, bytes]
) -> None:
    """Reads overlapping one in flight go through the cluster client; each gets its own keys."""
    reads = ClusterReads(cluster)
    keys = list(values)
    asks = [by_slot(keys[i : i + 17]) for i in range(0, 100, 3)]
    try:
        answers = await asyncio.gather(*(reads.mget(ask) for ask in asks))
        assert answers == [[[values[k] for k in group] for group in ask.values()] for ask in asks]
    finally:
        await reads.aclose()


async def test_a_slot_map_naming_the_wrong_node_is_corrected_by_the_cluster_client(
    cluster: RedisCluster, values: dict[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The map names, for one slot, a node serving another slot of the same read: that node gets
    both MGETs together and answers MOVED to the first. The read goes through the cluster client,
    which follows the redirect and mends the map; the second reply, left unread on the link, is
    never taken for a later read's; the next reads are on the right nodes' own links again."""
    owners = {key: cluster.nodes_manager.slots_cache[key_slot(key)][0] for key in values}
    misplaced = next(iter(values))
    elsewhere = next(k for k in values if owners[k].name != owners[misplaced].name)
    later = next(k for k in values if owners[k].name == owners[elsewhere].name and k != elsewhere)
    slot, other_slot = key_slot(misplaced), key_slot(elsewhere)
    reads = ClusterReads(cluster)
    sent = count_fallbacks(cluster, monkeypatch)
    try:
        cluster.nodes_manager.slots_cache[slot] = [owners[elsewhere]]
        both = {slot: [misplaced], other_slot: [elsewhere]}
        assert await reads.mget(both) == [[values[misplaced]], [values[elsewhere]]]
        assert len(sent) == 2  # that node's share, both slots, through the cluster client
        assert cluster.nodes_manager.slots_cache[slot][0].name == owners[misplaced].name
        assert await reads.mget({key_slot(later): [later]}) == [[values[later]]]
        assert await reads.mget({slot: [misplaced]}) == [[values[misplaced]]]
        assert len(sent) == 2
    finally:
        await reads.aclose()


async def _move_slot(slot: int, source: Redis, target: Redis, primaries: list[Redis]) -> None:
    """Reshard one slot with its keys, as `redis-cli --cluster reshard` does."""
    source_id, target_id = (
        await source.execute_command("CLUSTER MYID"),
        await target.execute_command("CLUSTER MYID"),
    )
    await target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
    await source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
    while keys := await source.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
        port = target.connection_pool.connection_kwargs["port"]
        await source.execute_command("MIGRATE", "127.0.0.1", port, "", 0, 5000, "KEYS", *keys)
    for node in [target, source, *primaries]:
        await node.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)


async def test_a_read_after_a_slot_moved_finds_the_keys_on_their_new_node(
    cluster: RedisCluster, values: dict[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real resharding behind the client's back: its map still names the old node, which
    answers MOVED; the answer is still every record, and the map learns the new node."""
    keys = [k for k in values if key_slot(k) == key_slot(next(iter(values)))]
    slot = key_slot(keys[0])
    owner = cluster.nodes_manager.slots_cache[slot][0]
    other = next(n for n in cluster.get_primaries() if n.name != owner.name)
    nodes = {n.name: Redis(host=n.host, port=n.port) for n in cluster.get_primaries()}
    source, target = nodes[owner.name], nodes[other.name]
    reads = ClusterReads(cluster)
    sent = count_fallbacks(cluster, monkeypatch)
    moved = False
    try:
        assert await reads.mget({slot: keys}) == [[values[k] for k in keys]]
        await _move_slot(slot, source, target, list(nodes.values()))
        moved = True
        assert await reads.mget({slot: keys}) == [[values[k] for k in keys]]
        assert len(sent) == 1
        assert cluster.nodes_manager.slots_cache[slot][0].name == other.name
        assert await reads.mget({slot: keys}) == [[values[k] for k in keys]]  # on the new node's link
        assert len(sent) == 1
    finally:
        await reads.aclose()
        if moved:  # as it was: the other tests' keys expect it there
            await _move_slot(slot, target, source, list(nodes.values()))
        for node in nodes.values():
            await node.aclose()


async def test_a_killed_connection_is_read_again_and_then_reconnects(
    cluster: RedisCluster, values: dict[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis dropped every client of a node between two reads: the read still answers (through
    the cluster client), and the next one is on a fresh link of its own."""
    key = next(iter(values))
    slot = key_slot(key)
    owner = cluster.nodes_manager.slots_cache[slot][0]
    reads = ClusterReads(cluster)
    sent = count_fallbacks(cluster, monkeypatch)
    node = Redis(host=owner.host, port=owner.port)
    try:
        assert await reads.mget({slot: [key]}) == [[values[key]]]
        assert await node.execute_command("CLIENT KILL", "TYPE", "normal", "SKIPME", "yes") >= 1
        assert await reads.mget({slot: [key]}) == [[values[key]]]
        fallbacks = len(sent)
        assert await reads.mget({slot: [key]}) == [[values[key]]]
        assert await reads.mget({slot: [key]}) == [[values[key]]]
        assert len(sent) == fallbacks  # reconnected: its own link again
    finally:
        await reads.aclose()
        await node.aclose()


async def test_a_timed_out_read_leaves_no_late_reply_behind(
    cluster: RedisCluster, values: dict[bytes, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that answers late: the read gives up on its own link, is answered through the
    cluster client, and the late reply on the dropped link is never taken for the next read's."""
    key_slot_0 = key_slot(next(iter(values)))
    first, second = [k for k in values if key_slot(k) == key_slot_0][:2]
    owner = cluster.nodes_manager.slots_cache[key_slot_0][0]
    reads = ClusterReads(cluster, timeout_s=0.2)
    sent = count_fallbacks(cluster, monkeypatch)
    node = Redis(host=owner.host, port=owner.port)
    try:
        assert await reads.mget({key_slot_0: [first]}) == [[values[first]]]  # connected
        await node.execute_command("CLIENT", "PAUSE", 600, "ALL")  # the node answers nobody
        assert await reads.mget({key_slot_0: [first]}) == [[values[first]]]
        assert len(sent) == 1
        await asyncio.sleep(0.6)  # the paused MGET is answered by now, on a link since dropped
        assert await reads.mget({key_slot_0: [second]}) == [[values[second]]]
        assert len(sent) == 1
    finally:
        await node.execute_command("CLIENT", "UNPAUSE")
        await reads.aclose()
        await node.aclose()


async def test_a_single_server_is_refused_as_it_has_a_read_connection_of_its_own(
    store_env: dict[str, str],
) -> None:
    single = connect_redis(store_env["REDIS_URL"])
    try:
        with pytest.raises(TypeError, match="ReadConnection"):
            ClusterReads(single)  # type: ignore[arg-type]
    finally:
        await single.aclose()
