"""The coalescer: concurrent single items share batched calls, each caller gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from core.coalesce import Coalescer


class Recorder:
    """A batch call that doubles numbers, remembers each batch, and fails on a poisoned item."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(0.01)  # a round trip: others queue meanwhile
        if -1 in items:
            raise ConnectionError("store down")
        return [2 * i for i in items]


async def test_concurrent_items_share_calls_and_each_gets_its_own_result() -> None:
    call = Recorder()
    coalescer: Coalescer[int, int] = Coalescer(call, max_batch=1000)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(300)))
    assert results == [2 * i for i in range(300)]
    assert len(call.batches) == 1 and sorted(call.batches[0]) == list(range(300))


async def test_a_lone_item_goes_out_at_once_and_later_arrivals_ride_the_next_call() -> None:
    call = Recorder()
    coalescer: Coalescer[int, int] = Coalescer(call, max_batch=1000)
    first = asyncio.create_task(coalescer.submit(1))
    await asyncio.sleep(0.001)  # the first call is in flight
    rest = [asyncio.create_task(coalescer.submit(i)) for i in range(2, 50)]
    assert await first == 2
    assert [await t for t in rest] == [2 * i for i in range(2, 50)]
    assert call.batches == [[1], list(range(2, 50))]


async def test_batches_never_exceed_the_limit() -> None:
    call = Recorder()
    coalescer: Coalescer[int, int] = Coalescer(call, max_batch=64)
    results = await asyncio.gather(*(coalescer.submit(i) for i in range(200)))
    assert results == [2 * i for i in range(200)]
    assert [len(b) for b in call.batches] == [64, 64, 64, 8]


async def test_a_failed_call_fails_its_own_callers_only() -> None:
    call = Recorder()
    coalescer: Coalescer[int, int] = Coalescer(call, max_batch=3)
    outcomes = await asyncio.gather(*(coalescer.submit(i) for i in (1, -1, 2, 3, 4)), return_exceptions=True)
    assert [type(o) for o in outcomes[:3]] == [ConnectionError] * 3
    assert outcomes[3:] == [6, 8]
    with pytest.raises(ConnectionError):  # and it keeps working after
        await coalescer.submit(-1)
    assert await coalescer.submit(5) == 10
