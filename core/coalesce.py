"""Single writes from many callers share batched calls instead of one round trip each.

Every websocket `location` frame (and every single `POST /v1/locations`) carries one fix. Sent one
by one, each costs a Redis round trip and a script call, and with a hundred phones streaming the
event loop spends its time waiting on those. A coalescer queues items while a call is in flight
and sends everything queued in the next call: under load one call carries many items, and when
the city is quiet an item still goes out at once (no timer, nothing added to its latency).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Coalescer(Generic[Item, Result]):
    """Feeds concurrent single items to a batch function; each caller gets its own result.

    `call` must return one result per item, in order. At most one call is in flight at a time.
    """

    def __init__(self, call: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]], max_batch: int) -> None:
        self._call = call
        self._max_batch = max_batch
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """The item's result; raises what `call` raised for the batch it travelled in."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                results = await self._call([item for item, _ in batch])
            except Exception as exc:  # every caller of this batch learns that the call failed
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # its caller may have gone (socket closed)
                    future.set_result(result)
