"""Pure parts of the Web Push channel: Topic, Retry-After, the outcome, which endpoints are allowed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from dispatch.channels.base import Outcome
from dispatch.channels.push import Delivery, origin_of, retry_after_s, summarise, topic_of
from dispatch.channels.push_schemas import endpoint_problem

TOPIC_CHARS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_the_topic_is_short_url_safe_and_one_per_alert() -> None:
    alert = str(uuid.uuid4())
    topic = topic_of(alert)
    assert len(topic) <= 32 and set(topic) <= TOPIC_CHARS
    assert topic_of(alert) == topic and topic_of(str(uuid.uuid4())) != topic
    assert len(topic_of("not-a-uuid" * 10)) <= 32


def test_the_audience_is_the_push_services_origin() -> None:
    assert origin_of("https://fcm.googleapis.com/fcm/send/abc:def") == "https://fcm.googleapis.com"
    assert origin_of("http://127.0.0.1:8123/push/x") == "http://127.0.0.1:8123"


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_s("7", 1.0) == 7.0
    in_ten = format_datetime(datetime.now(UTC) + timedelta(seconds=10), usegmt=True)
    assert 8.0 <= retry_after_s(in_ten, 1.0) <= 10.0
    assert retry_after_s(None, 1.5) == 1.5 and retry_after_s("soon", 1.5) == 1.5


def test_sent_when_any_service_took_it_unreachable_when_all_are_gone() -> None:
    ok, gone, failed = (
        Delivery(201, 1, "201 Created", "loc"),
        Delivery(410, 1, "410 Gone"),
        Delivery(500, 4, "500"),
    )
    assert summarise([failed, ok, gone]).outcome is Outcome.sent
    assert summarise([failed, ok, gone]).provider_id == "loc"
    assert summarise([gone, Delivery(404, 1)]).outcome is Outcome.unreachable
    error = summarise([failed, gone])
    assert error.outcome is Outcome.provider_error and "500" in error.detail and "1 gone" in error.detail


@pytest.mark.parametrize(
    ("endpoint", "loopback", "ok"),
    [
        ("https://fcm.googleapis.com/fcm/send/x", False, True),
        ("http://fcm.googleapis.com/fcm/send/x", True, False),
        ("http://127.0.0.1:9000/push/x", False, False),
        ("http://127.0.0.1:9000/push/x", True, True),
        ("http://localhost/push/x", True, True),
        ("http://[::1]:9000/push/x", True, True),
        ("http://10.0.0.1/push/x", True, False),
        ("ftp://fcm.googleapis.com/x", True, False),
        ("https:///nohost", False, False),
    ],
)
def test_endpoints_must_be_https_except_loopback_when_allowed(
    endpoint: str, loopback: bool, ok: bool
) -> None:
    assert (endpoint_problem(endpoint, loopback) is None) is ok
