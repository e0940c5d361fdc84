"""A socket's frames read in the background, so a test can wait for any of them while it does
other things (streams fixes, kills a store); and the matchers the fault tests wait with."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

WAIT_S = 30.0  # generous for a loaded 2-core machine


class Inbox:
    """Every frame a socket receives, read in the background, so a test can wait for any of them."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.frames = ws, []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.ws:
            self.frames.append(json.loads(raw))

    @property
    def open(self) -> bool:
        return not self.task.done()

    async def wait(self, match: Callable[[dict[str, Any]], bool], timeout: float = WAIT_S) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                found = next((f for f in self.frames if match(f)), None)
                if found is not None:
                    return found
                assert self.open, f"the socket closed; frames: {self.frames[-5:]}"
                await asyncio.sleep(0.05)


def alert_for(incident_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["type"] == "alert" and f["incident_id"] == incident_id


def event(incident_id: str, kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f.get("incident_id") == incident_id and f.get("kind") == kind
