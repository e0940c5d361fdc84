"""Which store an error says is out of reach: a 503 naming it, or a bug left to be a 500."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import IntegrityError, OperationalError

from core.outage import POSTGRES, REDIS, log_failed_round, unavailable_store


@pytest.mark.parametrize(
    ("error", "store"),
    [
        (RedisConnectionError("Error 111 connecting"), REDIS),
        (RedisTimeoutError("Timeout reading"), REDIS),
        (ResponseError("WRONGTYPE"), None),  # a bug, not an outage
        (OperationalError("SELECT 1", {}, Exception("the database system is starting up")), POSTGRES),
        (IntegrityError("INSERT", {}, Exception("duplicate key; connection fine")), None),
        (ConnectionRefusedError(111, "Connect call failed"), POSTGRES),
        (ValueError("connection"), None),
    ],
)
def test_outages_are_told_apart_from_bugs(error: Exception, store: str | None) -> None:
    assert unavailable_store(error) == store


def test_a_failed_round_logs_an_outage_as_one_line_and_a_bug_with_its_traceback(caplog) -> None:
    log = logging.getLogger("test.loop")
    with caplog.at_level(logging.WARNING, logger="test.loop"):
        log_failed_round(log, "the ladder", RedisConnectionError("Connection refused"))
        log_failed_round(log, "the ladder", KeyError("alert_id"))
    outage, bug = caplog.records
    assert outage.levelno == logging.WARNING and outage.exc_info is None
    assert outage.getMessage() == "the ladder waits for the live store (Redis)"
    assert bug.levelno == logging.ERROR and bug.exc_info is not None
