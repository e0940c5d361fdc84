"""Which worker answered: `X-Dispatch-Worker: <pid>` on every response and socket handshake.

With several workers behind one port the kernel hands each new connection to one of them. An
operator matching a slow request to a worker's log, or a test checking that an alert opened on one
worker reaches a socket held by another, needs to know which process served a request or holds a
socket; the pid is what `ps`, the logs and uvicorn's own messages name.
"""

from __future__ import annotations

import os

from starlette.types import ASGIApp, Message, Receive, Scope, Send

WORKER_HEADER = "x-dispatch-worker"


class WorkerHeaderMiddleware:
    """Plain ASGI (no extra task per request): adds the header to `http.response.start` and to
    `websocket.accept`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.header = (WORKER_HEADER.encode(), str(os.getpid()).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_worker(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, send_with_worker)
