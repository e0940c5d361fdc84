"""The access log keeps what an operator reads: routine successes (position batches, duty changes)
are left to `/metrics`; failures and every other request are still written."""

from __future__ import annotations

import logging

import pytest

from core.logging import RoutineRequests, configure_logging


def access_line(method: str, path: str, status: int) -> logging.LogRecord:
    """A record shaped as uvicorn's access logger makes it."""
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", method, path, "1.1", status), None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("method", "path", "status", "kept"),
    [
        ("POST", "/v1/locations", 200, False),
        ("PUT", "/v1/responders/04e14601-0b57-4280-a612-ffc50badc8e6/duty", 200, False),
        ("POST", "/v1/locations", 422, True),  # a refused batch is news
        ("POST", "/v1/locations", 429, True),
        ("PUT", "/v1/responders/04e14601-0b57-4280-a612-ffc50badc8e6/duty", 409, True),
        ("POST", "/v1/incidents", 201, True),
        ("GET", "/v1/locations", 200, True),
        ("PUT", "/v1/responders/x/duty/extra", 200, True),
        ("POST", "/v1/locations-export", 200, True),
    ],
)
def test_only_successful_routine_requests_are_left_out(
    method: str, path: str, status: int, kept: bool
) -> None:
    assert RoutineRequests().filter(access_line(method, path, status)) is kept


def test_other_records_of_the_access_logger_pass() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, "plain", None, None)
    assert RoutineRequests().filter(record)


@pytest.mark.parametrize("routine", [False, True])
def test_the_setting_decides_and_configuring_twice_adds_one_filter(routine: bool) -> None:
    access = logging.getLogger("uvicorn.access")
    saved = list(access.filters), list(logging.getLogger().handlers)
    try:
        configure_logging(False, routine_requests=routine)
        configure_logging(False, routine_requests=routine)
        filters = [f for f in access.filters if isinstance(f, RoutineRequests)]
        assert len(filters) == (0 if routine else 1)
    finally:
        access.filters[:], logging.getLogger().handlers[:] = saved
