"""A fast local CAD receiver for `bench_cad_feedback`: the tests' centre (tests/support/cad_centre.py) does
the checking (signature and its age, Idempotency-Key, order, duplicates), served by uvicorn instead
of a thread per connection, so the receiver is not what the benchmark measures.

Run as `python -m benchmarks.cad_receiver PORT SECRET`; `GET /stats` answers its tallies.
"""

from __future__ import annotations

import json
import sys
from email.message import Message
from typing import Any

import uvicorn

from tests.support.cad_centre import CadCentre
from tests.support.standin import Received

Scope = dict[str, Any]


def receiver(secret: str) -> Any:
    centre = CadCentre(secret=secret)  # its checks only: never started as a server
    requests = 0

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        nonlocal requests
        if scope["type"] != "http":
            return
        if scope["path"] == "/stats":
            stats = {
                "requests": requests,
                "taken": len(centre.events),
                "duplicates": centre.duplicates,
                "out_of_order": len(centre.out_of_order),
            }
            await _answer(send, 200, json.dumps(stats).encode())
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = Message()
        for key, value in scope["headers"]:
            headers[key.decode("latin-1")] = value.decode("latin-1")
        requests += 1
        status, _, out = centre.answer(Received(scope["method"], scope["path"], headers, body))
        await _answer(send, status, out)

    return app


async def _answer(send: Any, status: int, body: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    port, secret = int(sys.argv[1]), sys.argv[2]
    uvicorn.run(receiver(secret), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
