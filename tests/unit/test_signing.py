"""Request signatures: X-Rescue-Signature (core/signing.py) and Tencent's TC3-HMAC-SHA256
(dispatch/channels/tc3.py), each against a vector computed outside the code under test, and the
stand-ins' verifiers against the same vectors."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from core import signing
from dispatch.channels import tc3
from tests.support import tencent_cloud
from tests.support.tencent_cloud import Refused, check_signature

# Tencent's worked example ("Signature v3", API 3.0 docs): DescribeInstances at 1551113065.
DOC_ID, DOC_KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
DOC_TS = 1551113065
DOC_BODY = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
DOC_SIGNED = {"Content-Type": "application/json; charset=utf-8", "Host": "cvm.tencentcloudapi.com"}
DOC_AUTH = (
    "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
    "SignedHeaders=content-type;host, "
    "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
)


def test_tc3_reproduces_tencents_worked_example_step_by_step() -> None:
    canonical = tc3.canonical_request("POST", "", DOC_SIGNED, DOC_BODY)
    assert canonical.endswith("35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    to_sign = tc3.string_to_sign(DOC_TS, "cvm", canonical)
    assert to_sign == (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    auth = tc3.authorization(
        DOC_ID, DOC_KEY, service="cvm", timestamp=DOC_TS, signed=DOC_SIGNED, payload=DOC_BODY
    )
    assert auth == DOC_AUTH


def test_tc3_date_is_the_utc_date() -> None:
    """1551113065 is 2019-02-26 00:44 in Beijing and 2019-02-25 in UTC: the scope takes UTC."""
    assert tc3.utc_date(DOC_TS) == "2019-02-25"


def test_tc3_request_headers_sign_the_action_and_the_service_of_the_host() -> None:
    h = tc3.request_headers(
        "id", "key", host="sms.tencentcloudapi.com", action="SendSms", version="2021-01-11",
        region="ap-guangzhou", timestamp=DOC_TS, payload=b"{}",
    )  # fmt: skip
    assert "/2019-02-25/sms/tc3_request, SignedHeaders=content-type;host;x-tc-action," in h["Authorization"]
    assert h["X-TC-Timestamp"] == str(DOC_TS) and h["X-TC-Version"] == "2021-01-11"
    assert check_signature("POST", "/", h, b"{}", {"id": "key"}, now=DOC_TS + 10) == "sms.tencentcloudapi.com"


def _doc_request() -> dict[str, str]:
    return {
        **DOC_SIGNED, "Authorization": DOC_AUTH, "X-TC-Action": "DescribeInstances",
        "X-TC-Timestamp": str(DOC_TS), "X-TC-Version": "2017-03-12", "X-TC-Region": "ap-guangzhou",
    }  # fmt: skip


def test_stand_in_accepts_tencents_worked_example(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stand-in's own verifier, fed the documented request (cvm added as a known host)."""
    cvm = ("cvm", "2017-03-12", {"DescribeInstances"})
    monkeypatch.setitem(tencent_cloud.SERVICES, "cvm.tencentcloudapi.com", cvm)
    keys = {DOC_ID: DOC_KEY}
    assert (
        check_signature("POST", "/", _doc_request(), DOC_BODY, keys, now=DOC_TS) == "cvm.tencentcloudapi.com"
    )
    cases = [
        (DOC_BODY.replace(b"1", b"2"), {}, keys, DOC_TS, "AuthFailure.SignatureFailure"),
        (DOC_BODY, {}, {DOC_ID: DOC_KEY + "x"}, DOC_TS, "AuthFailure.SignatureFailure"),
        (DOC_BODY, {}, {"other": DOC_KEY}, DOC_TS, "AuthFailure.SecretIdNotFound"),
        (DOC_BODY, {}, keys, DOC_TS + 301, "AuthFailure.SignatureExpire"),
        (DOC_BODY, {"Content-Type": "application/json"}, keys, DOC_TS, "AuthFailure.SignatureFailure"),
        (DOC_BODY, {"Host": "sms.tencentcloudapi.com"}, keys, DOC_TS, "AuthFailure.InvalidAuthorization"),
        (DOC_BODY, {"Host": "evil.example.com"}, keys, DOC_TS, "InvalidParameter"),
        (DOC_BODY, {"Authorization": DOC_AUTH.replace("=content-type;host", "=host")}, keys, DOC_TS,
         "AuthFailure.InvalidAuthorization"),
        (DOC_BODY, {"X-TC-Timestamp": str(DOC_TS + 86_400)}, keys, DOC_TS + 86_400,
         "AuthFailure.InvalidAuthorization"),  # the scope's date is no longer the timestamp's
    ]  # fmt: skip
    for body, changed, known, now, code in cases:
        with pytest.raises(Refused) as refused:
            check_signature("POST", "/", {**_doc_request(), **changed}, body, known, now=now)
        assert refused.value.code == code, (changed, now)


def test_rescue_signature_matches_an_independent_hmac() -> None:
    body = '{"to":"+8613800138000","text":"急救","alert_id":"a","kind":"sms"}'.encode()
    want = hmac.new(b"whsec_test", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signing.sign("whsec_test", body, t=1_700_000_000) == f"t=1700000000,v1={want}"
    assert signing.verify("whsec_test", body, f"t=1700000000,v1={want}", now=1_700_000_100) == 1_700_000_000


@pytest.mark.parametrize(
    ("secret", "body", "header", "now", "why"),
    [
        ("other", b"{}", None, 0, "does not match"),
        ("s", b"{ }", None, 0, "does not match"),
        ("s", b"{}", None, 301, "off"),
        ("s", b"{}", None, -301, "off"),
        ("s", b"{}", "", 0, "missing"),
        ("s", b"{}", "v1=abc", 0, "malformed"),
        ("s", b"{}", "t=x,v1=abc", 0, "malformed"),
    ],
)
def test_rescue_signature_refusals(secret: str, body: bytes, header: str | None, now: int, why: str) -> None:
    t = 1_700_000_000
    sent = signing.sign("s", b"{}", t=t) if header is None else header
    with pytest.raises(signing.SignatureError, match=why):
        signing.verify(secret, body, sent, now=t + now)


def test_rescue_signature_accepts_any_of_several_v1_during_a_secret_rotation() -> None:
    new = signing.sign("new", b"{}", t=5).split("v1=")[1]
    old = signing.sign("old", b"{}", t=5).split("v1=")[1]
    assert signing.verify("new", b"{}", f"t=5,v1={old},v1={new}", now=5) == 5
