"""Tencent Cloud API 3.0 request signing, TC3-HMAC-SHA256 (pure).

Implemented from Tencent's published algorithm ("Signature v3"), checked in the tests against the
worked example of that page. Four steps:
1. CanonicalRequest = method, URI `/`, query, the signed headers as `name:value\\n` (both lower
   case, names sorted), their names joined by `;`, and the hex SHA-256 of the body;
2. StringToSign = `TC3-HMAC-SHA256`, the X-TC-Timestamp, the scope `<UTC date>/<service>/tc3_request`
   and the hex SHA-256 of the canonical request;
3. the key chain SecretDate = HMAC("TC3" + SecretKey, date), SecretService = HMAC(SecretDate,
   service), SecretSigning = HMAC(SecretService, "tc3_request"); the signature is the hex
   HMAC(SecretSigning, StringToSign);
4. Authorization = `TC3-HMAC-SHA256 Credential=<SecretId>/<scope>, SignedHeaders=<names>,
   Signature=<hex>`.
The date is the UTC date of the timestamp (a local date fails every night after midnight UTC+8).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime

ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
TERMINATOR = "tc3_request"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def _sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def utc_date(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")


def canonical_request(method: str, query: str, signed: Mapping[str, str], payload: bytes) -> str:
    headers = {k.strip().lower(): v.strip().lower() for k, v in signed.items()}
    names = sorted(headers)
    canonical_headers = "".join(f"{k}:{headers[k]}\n" for k in names)
    return "\n".join([method.upper(), "/", query, canonical_headers, ";".join(names), _sha256_hex(payload)])


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    scope = f"{utc_date(timestamp)}/{service}/{TERMINATOR}"
    return "\n".join([ALGORITHM, str(timestamp), scope, _sha256_hex(canonical.encode())])


def signature(secret_key: str, timestamp: int, service: str, to_sign: str) -> str:
    secret_date = _hmac(("TC3" + secret_key).encode(), utc_date(timestamp))
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, TERMINATOR)
    return hmac.new(secret_signing, to_sign.encode(), hashlib.sha256).hexdigest()


def authorization(
    secret_id: str,
    secret_key: str,
    *,
    service: str,
    timestamp: int,
    signed: Mapping[str, str],
    payload: bytes,
    method: str = "POST",
    query: str = "",
) -> str:
    """The Authorization header of a request whose `signed` headers and body are as given."""
    canonical = canonical_request(method, query, signed, payload)
    sig = signature(secret_key, timestamp, service, string_to_sign(timestamp, service, canonical))
    names = ";".join(sorted(k.strip().lower() for k in signed))
    scope = f"{utc_date(timestamp)}/{service}/{TERMINATOR}"
    return f"{ALGORITHM} Credential={secret_id}/{scope}, SignedHeaders={names}, Signature={sig}"


def request_headers(
    secret_id: str,
    secret_key: str,
    *,
    host: str,
    action: str,
    version: str,
    region: str,
    timestamp: int,
    payload: bytes,
) -> dict[str, str]:
    """Every header of a signed API 3.0 POST; the action is signed too, so a captured request
    cannot be replayed as another action."""
    service = host.split(".", 1)[0]
    signed = {"Content-Type": CONTENT_TYPE, "Host": host, "X-TC-Action": action}
    return {
        **signed,
        "Authorization": authorization(
            secret_id, secret_key, service=service, timestamp=timestamp, signed=signed, payload=payload
        ),
        "X-TC-Timestamp": str(timestamp),
        "X-TC-Version": version,
        "X-TC-Region": region,
    }
