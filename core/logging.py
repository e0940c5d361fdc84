"""Structured logging: JSON lines when `DISPATCH_LOG_JSON=1`, readable text otherwise.

No token is ever written: pages and phones authenticate sockets through `Sec-WebSocket-Protocol`,
but old clients still put `?token=` in the URL, and uvicorn logs every request line and socket
handshake with its query string. `TokenScrubber` masks `token=...` and `Bearer ...` in every
record of our loggers and of uvicorn's.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


# `token=` in a query string (also `access_token=` and URL-encoded forms), and `Bearer <token>`.
_SECRET = re.compile(r"(?i)((?:access_)?token(?:=|%3D)|bearer\s+)[^\s&\"',;]+")
MASK = "***"
UVICORN_LOGGERS = ("uvicorn.access", "uvicorn.error")


def scrub(text: str) -> str:
    """The text with every token value replaced by `***`."""
    return _SECRET.sub(lambda m: m.group(1) + MASK, text)


class TokenScrubber(logging.Filter):
    """Masks tokens in a record's message and arguments before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        # Argument by argument, keeping their shape: uvicorn's access formatter unpacks `args`.
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: scrub(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with any `extra=` fields kept as keys."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


class RoutineRequests(logging.Filter):
    """Drops uvicorn's access line of a successful routine request: a position batch or a duty
    change. A city's gateways and the demo's mover send thousands a minute; `/metrics` counts
    them, and their failures (any status but 2xx) are still written."""

    ROUTINE = re.compile(r"^(POST /v1/locations|PUT /v1/responders/[^/?]+/duty)(\?.*)?$")

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not (isinstance(args, tuple) and len(args) == 5):  # (client, method, path, version, status)
            return True
        _, method, path, _, status = args
        return not (200 <= int(status) < 300 and bool(self.ROUTINE.match(f"{method} {path}")))


def configure_logging(json_lines: bool, level: str = "INFO", *, routine_requests: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s")
    )
    handler.addFilter(TokenScrubber())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in UVICORN_LOGGERS:  # they may have handlers of their own (uvicorn's default config)
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenScrubber) for f in logger.filters):
            logger.addFilter(TokenScrubber())
    access = logging.getLogger("uvicorn.access")
    access.filters[:] = [f for f in access.filters if not isinstance(f, RoutineRequests)]
    if not routine_requests:
        access.addFilter(RoutineRequests())
