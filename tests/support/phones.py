"""A responder's phone over a real websocket: collects frames, sends answers.

Both sign in as the pages do: the token goes as subprotocols `["bearer", token]`, never in the URL.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets


class Phone:
    """`confirm` (default on): the phone answers every alert it reads with a `received` frame, as
    the app does once the alert is on screen (only that makes an alert `delivered`). Off, it plays
    a half-open phone: it reads alerts and never confirms."""

    def __init__(self, ws_url: str, token: str, crs: str = "wgs84", *, confirm: bool = True) -> None:
        self.url = f"{ws_url}/v1/ws/responder?crs={crs}"
        self.subprotocols = ["bearer", token]
        self.confirm = confirm
        self.ws: Any = None

    async def __aenter__(self) -> Phone:
        self.ws = await websockets.connect(self.url, subprotocols=self.subprotocols, max_size=2**22)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def next(self, timeout: float = 5.0, type_: str | None = None) -> dict[str, Any]:
        """The next frame (of `type_`, skipping others); raises TimeoutError when none comes."""
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.ws.recv())
                if self.confirm and frame["type"] == "alert":
                    await self.send({"type": "received", "alert_id": frame["alert_id"]})
                if type_ is None or frame["type"] == type_:
                    return frame

    async def silent(self, seconds: float = 0.5) -> bool:
        try:
            await self.next(seconds)
        except TimeoutError:
            return True
        return False


class Console:
    """A dispatcher console's event socket."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.url = f"{ws_url}/v1/ws/dispatch"
        self.subprotocols = ["bearer", token]
        self.events: list[dict[str, Any]] = []

    async def __aenter__(self) -> Console:
        self.ws = await websockets.connect(self.url, subprotocols=self.subprotocols, max_size=2**22)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.ws.close()

    async def wait_for(self, incident_id: str, kind: str, timeout: float = 5.0) -> dict[str, Any]:
        for e in self.events:
            if e["incident_id"] == incident_id and e["kind"] == kind:
                self.events.remove(e)
                return e
        async with asyncio.timeout(timeout):
            while True:
                e = json.loads(await self.ws.recv())
                if e["incident_id"] == incident_id and e["kind"] == kind:
                    return e
                self.events.append(e)
