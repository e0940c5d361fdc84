"""A local HTTP server for playing an outside service in tests (a provider, a gateway).

Runs in a thread of the test process, so a test inspects what it received directly; the handler
sees the raw request (method, path, headers as sent, exact body bytes), which is what a signature
must be checked against. Answers can be planned ahead (an error, a slow answer) for the next
requests; everything received is recorded.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from core import signing


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # the default 5 resets connections when a caller opens many at once


@dataclass
class Received:
    """One request as it arrived, and what the stand-in made of it."""

    method: str
    path: str
    headers: Message
    body: bytes
    status: int = 0
    verdict: str = ""  # "" = accepted, else why it was refused
    json: Any = None
    at: float = field(default_factory=time.time)  # when it arrived (unix seconds)


@dataclass
class Plan:
    """A planned answer for one coming request (after the request was checked)."""

    status: int = 200
    code: str | None = None  # provider-specific error or status code
    delay_s: float = 0.0  # wait before answering (a timeout on the caller's side)


@dataclass
class StandIn:
    """Subclasses implement `answer(received) -> (status, content_type, body)`."""

    host: str = "127.0.0.1"
    port: int = 0  # 0: any free port, kept after the first start (a stop and start is a restart)
    received: list[Received] = field(default_factory=list)
    plans: deque[Plan] = field(default_factory=deque)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        assert self.port, "not started"
        return f"http://{self.host}:{self.port}"

    def plan(self, *plans: Plan) -> None:
        with self._lock:
            self.plans.extend(plans)

    def next_plan(self) -> Plan:
        with self._lock:
            return self.plans.popleft() if self.plans else Plan()

    def answer(self, req: Received) -> tuple[int, str, bytes]:
        raise NotImplementedError

    def start(self) -> StandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                req = Received(self.command, self.path, self.headers, body)
                status, ctype, out = stand_in.answer(req)
                req.status = status
                with stand_in._lock:
                    stand_in.received.append(req)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up waiting (a planned slow answer): as a real server sees it

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        self._server = _Server((self.host, self.port), Handler)
        self.port = int(self._server.server_address[1])
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def pause(seconds: float) -> None:
        if seconds:
            time.sleep(seconds)


@dataclass
class SignedReceiver(StandIn):
    """A receiver of our signed webhooks (the SMS gateway, an emergency centre): refuses what is not
    signed with `secret` within `tolerance_s` (401) or carries no Idempotency-Key (400), as a
    careful integrator's endpoint would; subclasses check the rest in `answer`."""

    secret: str = field(default_factory=lambda: secrets.token_hex(16))
    tolerance_s: int = signing.TOLERANCE_S

    @staticmethod
    def _reply(status: int, body: dict[str, Any]) -> tuple[int, str, bytes]:
        return status, "application/json", json.dumps(body).encode()

    def planned_failure(self, req: Received) -> tuple[int, str, bytes] | None:
        """Play the test's plan for this request (a delay, then maybe a failure status); the failure
        to answer, or None when the request is to be taken."""
        plan = self.next_plan()
        self.pause(plan.delay_s)
        if plan.status < 300:
            return None
        req.verdict = f"planned HTTP {plan.status}"
        return self._reply(plan.status, {"error": "planned by the test"})

    def refusal(self, req: Received) -> tuple[int, str, bytes] | None:
        """The answer to a request whose signature or key is wrong (its `verdict` says why), else None."""
        try:
            signing.verify(
                self.secret, req.body, req.headers.get(signing.HEADER), tolerance_s=self.tolerance_s
            )
        except signing.SignatureError as exc:
            req.verdict = str(exc)
            return self._reply(401, {"error": req.verdict})
        if not req.headers.get(signing.IDEMPOTENCY_HEADER):
            req.verdict = "Idempotency-Key missing"
            return self._reply(400, {"error": req.verdict})
        return None
