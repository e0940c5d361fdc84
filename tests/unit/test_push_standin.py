"""The local push service must refuse what a browser vendor's would, or the push tests prove nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from multidict import CIMultiDict
from py_vapid import Vapid02
from pywebpush import WebPusher

from dispatch.channels.push_keys import public_key_of
from tests.support.push_service import PushService

PAYLOAD = '{"type": "alert", "alert_id": "a1"}'


@pytest.fixture(scope="module")
def service() -> PushService:
    return PushService()  # not started: `check` is the service's judgement, without the HTTP around it


def _vapid() -> Vapid02:
    key = Vapid02()
    key.generate_keys()
    return key


def _request(
    service: PushService, vapid: Vapid02, endpoint_of: Any, *, aud: str | None = None, exp: int | None = None
) -> tuple[CIMultiDict[str], bytes]:
    claims = {
        "aud": aud or service.origin,
        "exp": exp or int(time.time()) + 3600,
        "sub": "mailto:ops@example.org",
    }
    headers = {"Urgency": "high", **vapid.sign(claims)}
    sent = WebPusher(endpoint_of.subscription())._prepare_send_data(PAYLOAD, headers, ttl=60)
    return CIMultiDict(sent["headers"]), sent["data"]


def test_a_proper_push_is_taken_and_decrypted(service: PushService) -> None:
    vapid = _vapid()
    browser = service.subscribe(public_key_of(vapid))
    headers, body = _request(service, vapid, browser)
    status, reason, claims, payload = service.check(browser, headers, body)
    assert (status, reason) == (201, "")
    assert payload == {"type": "alert", "alert_id": "a1"}
    assert claims is not None and claims["aud"] == service.origin


def test_a_signature_that_does_not_verify_is_refused(service: PushService) -> None:
    vapid = _vapid()
    browser = service.subscribe(public_key_of(vapid))
    headers, body = _request(service, vapid, browser)
    auth = headers["Authorization"]
    jwt_start = auth.index("t=") + 2
    jwt_end = auth.index(",", jwt_start)
    token = auth[jwt_start:jwt_end]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    headers["Authorization"] = auth.replace(token, forged)
    status, reason, _, payload = service.check(browser, headers, body)
    assert status == 401 and "signature" in reason and payload is None


def test_a_token_signed_by_another_key_than_the_subscriptions_is_refused(service: PushService) -> None:
    browser = service.subscribe(public_key_of(_vapid()))
    intruder = _vapid()  # signs correctly with its own key and names it in k
    headers, body = _request(service, intruder, browser)
    status, reason, _, _ = service.check(browser, headers, body)
    assert status == 403 and "key" in reason


@pytest.mark.parametrize(
    ("aud", "exp_in", "why"),
    [
        ("https://fcm.googleapis.com", 3600, "aud"),
        (None, -60, "exp"),  # stale
        (None, 25 * 3600, "exp"),  # more than 24 h ahead
    ],
)
def test_wrong_audience_or_expiry_is_refused(
    service: PushService, aud: str | None, exp_in: int, why: str
) -> None:
    vapid = _vapid()
    browser = service.subscribe(public_key_of(vapid))
    headers, body = _request(service, vapid, browser, aud=aud, exp=int(time.time()) + exp_in)
    status, reason, _, _ = service.check(browser, headers, body)
    assert status == 403 and reason.startswith(why)


def test_a_body_it_cannot_decrypt_is_refused(service: PushService) -> None:
    vapid = _vapid()
    browser = service.subscribe(public_key_of(vapid))
    other = service.subscribe(public_key_of(vapid))
    headers, body = _request(service, vapid, other)  # encrypted for another browser's keys
    status, reason, _, payload = service.check(browser, headers, body)
    assert status == 400 and "decrypt" in reason and payload is None


def test_a_push_without_ttl_is_refused(service: PushService) -> None:
    vapid = _vapid()
    browser = service.subscribe(public_key_of(vapid))
    headers, body = _request(service, vapid, browser)
    headers.pop("TTL")
    assert service.check(browser, headers, body)[0] == 400
