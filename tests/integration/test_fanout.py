"""The fan-out between workers over a real single Redis and a real 3-primary cluster: a frame
published by one worker reaches the sockets attached to any worker, and a worker whose subscription
was cut (a network cut, a failover) asks its sockets to catch up (`resync`)."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from redis.asyncio import RedisCluster

from core import shard_pubsub
from core.redis import Keys, RedisClient, connect_redis
from dispatch.fanout import Fanout
from tests.support.blackhole import Blackhole
from tests.support.cluster import ReplicatedCluster
from tests.support.stores import cut_subscriptions

pytestmark = pytest.mark.integration


class Socket:
    """Stands for a phone's or a console's socket: records what it is sent and each resync."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.resyncs = 0

    async def send(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)

    async def resync(self) -> None:
        self.resyncs += 1


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.02)


@pytest_asyncio.fixture
async def workers(redis_url_each: str) -> AsyncIterator[list[Fanout]]:
    """Three workers' fan-outs, each over a client of its own, relaying until the test ends."""
    keys = Keys("rcfanout" + secrets.token_hex(3))
    clients = [connect_redis(redis_url_each) for _ in range(3)]
    fanouts = [Fanout(client, keys) for client in clients]
    tasks = [asyncio.create_task(f.run()) for f in fanouts]
    try:
        async with asyncio.timeout(10):
            await asyncio.gather(*(f.ready.wait() for f in fanouts))
        yield fanouts
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for client in clients:
            await client.aclose()


async def test_a_frame_published_on_one_worker_reaches_sockets_on_the_others(workers: list[Fanout]) -> None:
    one, two, three = workers
    phone, other_phone, console, other_console = Socket(), Socket(), Socket(), Socket()
    two.attach_responder("r-1", phone)
    three.attach_responder("r-2", other_phone)
    two.dispatchers.add(console)
    three.dispatchers.add(other_console)
    await one.to_responder("r-1", {"type": "alert", "alert_id": "a-1"})
    await one.to_dispatchers({"type": "incident_event", "id": 1})
    await three.to_responder("r-2", {"type": "alert", "alert_id": "a-2"})
    await until(lambda: len(phone.frames) == 1 and len(other_phone.frames) == 1)
    await until(lambda: len(console.frames) == 1 and len(other_console.frames) == 1)
    assert phone.frames == [{"type": "alert", "alert_id": "a-1"}]  # only its own
    assert other_phone.frames == [{"type": "alert", "alert_id": "a-2"}]
    assert console.frames == other_console.frames == [{"type": "incident_event", "id": 1}]
    assert not one.outbox and phone.resyncs == 0


async def test_many_frames_arrive_once_each_and_in_order(workers: list[Fanout]) -> None:
    one, two, _ = workers
    phone = Socket()
    two.attach_responder("r-1", phone)
    for i in range(200):  # one after another, as one incident's frames are published
        await one.to_responder("r-1", {"type": "alert", "alert_id": str(i)})
    await until(lambda: len(phone.frames) >= 200)
    await asyncio.sleep(0.2)  # nothing more comes
    assert [f["alert_id"] for f in phone.frames] == [str(i) for i in range(200)]


async def test_a_worker_whose_subscription_was_cut_resyncs_its_sockets_and_relays_again(
    workers: list[Fanout],
) -> None:
    one, two, _ = workers
    phone, console = Socket(), Socket()
    two.attach_responder("r-1", phone)
    two.dispatchers.add(console)
    await cut_subscriptions(one.redis)
    await until(lambda: phone.resyncs >= 1 and console.resyncs >= 1)
    await until(lambda: two.ready.is_set())
    await one.to_responder("r-1", {"type": "alert", "alert_id": "after"})
    await until(lambda: phone.frames == [{"type": "alert", "alert_id": "after"}])


@pytest.fixture(scope="module")
def replicated_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReplicatedCluster]:
    cluster = ReplicatedCluster(tmp_path_factory.mktemp("cluster")).start()
    try:
        yield cluster
    finally:
        cluster.stop()


@contextlib.asynccontextmanager
async def sender_and_holder(
    sender_url: str, holder_url: str, prefix: str
) -> AsyncIterator[tuple[Fanout, Fanout, Socket, RedisClient]]:
    """Two workers' relays, each on its own client: one publishing, one holding the phone of
    responder r-1; both running and subscribed, one frame already delivered; closed afterwards.
    Yields the sender, the holder, the phone and the holder's client."""
    keys = Keys(prefix + secrets.token_hex(3))
    one, two = connect_redis(sender_url), connect_redis(holder_url)
    sender, holder = Fanout(one, keys), Fanout(two, keys)
    tasks = [asyncio.create_task(f.run()) for f in (sender, holder)]
    phone = Socket()
    holder.attach_responder("r-1", phone)
    try:
        async with asyncio.timeout(10):
            await holder.ready.wait()
        await sender.to_responder("r-1", {"type": "alert", "alert_id": "before"})
        await until(lambda: len(phone.frames) == 1)
        yield sender, holder, phone, two
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await one.aclose()
        await two.aclose()


async def test_after_a_failover_the_relay_follows_the_new_primary_and_resyncs(
    replicated_cluster: ReplicatedCluster,
) -> None:
    """The primary that owns the channel's slot dies: its replica takes over, publishing never
    raises (frames wait in the outbox), and the worker subscribed there resubscribes on the new
    primary and asks its sockets to catch up; frames flow again."""
    url = replicated_cluster.url
    async with sender_and_holder(url, url, "rcfailover") as (sender, holder, phone, two):
        assert isinstance(two, RedisCluster)
        owner = two.get_node_from_key(holder.channel)
        ReplicatedCluster.kill(int(owner.port))
        started = time.monotonic()
        await sender.to_responder("r-1", {"type": "alert", "alert_id": "during"})  # never raises
        await until(lambda: phone.resyncs >= 1, timeout_s=60)
        resynced_s = time.monotonic() - started
        assert two.get_node_from_key(holder.channel).port != owner.port  # the replica took over
        await until(lambda: not sender.outbox, timeout_s=30)
        await sender.to_responder("r-1", {"type": "alert", "alert_id": "after"})
        await until(lambda: phone.frames[-1:] == [{"type": "alert", "alert_id": "after"}], timeout_s=10)
        print(f"resubscribed and resynced {resynced_s:.1f} s after the primary died")


async def test_a_subscription_gone_silent_is_found_out_and_the_sockets_resync(
    store_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's connections to Redis go silent without closing (a NAT forgot them): the relay
    pings, hears nothing, subscribes again on a fresh connection and asks its sockets to catch up."""
    monkeypatch.setattr(shard_pubsub, "IDLE_PING_S", 0.5)
    monkeypatch.setattr(shard_pubsub, "SUBSCRIBE_TIMEOUT_S", 1.0)
    redis_port = int(store_env["REDIS_URL"].rsplit(":", 1)[1].split("/")[0])
    hole = await Blackhole(redis_port).start()
    try:
        relays = sender_and_holder(store_env["REDIS_URL"], hole.url, "rcsilent")
        async with relays as (sender, holder, phone, _):
            hole.swallow()
            started = time.monotonic()
            await sender.to_responder("r-1", {"type": "alert", "alert_id": "lost"})  # into the silence
            await until(lambda: phone.resyncs >= 1, timeout_s=15)
            found_s = time.monotonic() - started
            await until(lambda: holder.ready.is_set())
            await sender.to_responder("r-1", {"type": "alert", "alert_id": "after"})
            await until(lambda: phone.frames[-1:] == [{"type": "alert", "alert_id": "after"}])
            # the frame published into the silence comes back by resync, from the record
            assert {"type": "alert", "alert_id": "lost"} not in phone.frames
            print(f"silent subscription found out and resynced after {found_s:.1f} s (ping after 0.5 s)")
    finally:
        await hole.aclose()
