"""A socket's frames read in the background, so a test can wait for any of them while it does
other things (streams fixes, kills a store); and the matchers and waits the fault tests share."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx

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


async def until_alerting(http: httpx.AsyncClient, headers: dict[str, str], lat: float, lng: float) -> dict:
    """Open incidents until one alerts someone at once (the dispatcher's view of "dispatch works")."""
    async with asyncio.timeout(WAIT_S):
        while True:
            r = await http.post(
                "/v1/incidents", json={"lat": lat, "lng": lng, "category": "cardiac_arrest"}, headers=headers
            )
            if r.status_code == 201 and r.json()["alerts"]:
                return r.json()
            assert r.status_code in (201, 503), r.text
            await asyncio.sleep(0.5)
