"""Bearer tokens over real HTTP: the role matrix, 401 vs 403 messages, revocation."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.support.db import fetch

ROLES = ["admin", "dispatcher", "planner", "gateway"]


@pytest.fixture
def tokens(token_for) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    return {role: token_for(role, f"matrix-{role}") for role in ROLES}


@pytest.mark.parametrize("role", ROLES)
def test_admin_only_route_admits_only_admin(http: httpx.Client, tokens, role: str) -> None:  # type: ignore[no-untyped-def]
    r = http.post("/v1/tokens", json={"role": "planner", "label": "x"}, headers=tokens[role])
    if role == "admin":
        assert r.status_code == 201
        assert len(r.json()["token"]) >= 40
    else:
        assert r.status_code == 403
        assert f"role '{role}'" in r.json()["detail"] and "admin" in r.json()["detail"]


def test_missing_and_bad_tokens_are_401_with_distinct_messages(http: httpx.Client) -> None:
    missing = http.post("/v1/tokens", json={"role": "planner", "label": "x"})
    bad = http.post(
        "/v1/tokens", json={"role": "planner", "label": "x"}, headers={"Authorization": "Bearer nope"}
    )
    basic = http.post(
        "/v1/tokens", json={"role": "planner", "label": "x"}, headers={"Authorization": "Basic abc"}
    )
    assert missing.status_code == bad.status_code == basic.status_code == 401
    assert "missing" in missing.json()["detail"]
    assert "invalid or revoked" in bad.json()["detail"]
    assert missing.json()["detail"] != bad.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"


def test_revoked_token_fails(http: httpx.Client, admin_headers: dict[str, str]) -> None:
    issued = http.post(
        "/v1/tokens", json={"role": "admin", "label": "to-revoke"}, headers=admin_headers
    ).json()
    headers = {"Authorization": f"Bearer {issued['token']}"}
    assert (
        http.post("/v1/tokens", json={"role": "planner", "label": "ok"}, headers=headers).status_code == 201
    )
    assert http.delete(f"/v1/tokens/{issued['id']}", headers=admin_headers).status_code == 204
    after = http.post("/v1/tokens", json={"role": "planner", "label": "no"}, headers=headers)
    assert after.status_code == 401
    assert http.delete(f"/v1/tokens/{issued['id']}", headers=admin_headers).status_code == 404


def test_token_request_validation_names_the_field(http: httpx.Client, admin_headers: dict[str, str]) -> None:
    r = http.post("/v1/tokens", json={"role": "emperor", "label": ""}, headers=admin_headers)
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["errors"]}
    assert fields == {"role", "label"}


def test_a_cad_token_speaks_for_one_agency(http: httpx.Client, admin_headers: dict[str, str]) -> None:
    """An emergency centre's token names its agency; no other role has one; it may not act as admin."""
    missing = http.post("/v1/tokens", json={"role": "cad", "label": "120"}, headers=admin_headers)
    assert missing.status_code == 422 and "agency: required for a cad token" in missing.text
    stray = http.post(
        "/v1/tokens", json={"role": "planner", "label": "x", "agency": "sz-120"}, headers=admin_headers
    )
    assert stray.status_code == 422 and "agency: only a cad token has an agency" in stray.text
    bad = http.post(
        "/v1/tokens", json={"role": "cad", "label": "x", "agency": "sz 120/"}, headers=admin_headers
    )
    assert bad.status_code == 422 and {e["field"] for e in bad.json()["errors"]} == {"agency"}
    issued = http.post(
        "/v1/tokens", json={"role": "cad", "label": "Shenzhen 120", "agency": "sz-120"}, headers=admin_headers
    )
    assert issued.status_code == 201, issued.text
    assert (issued.json()["role"], issued.json()["agency"]) == ("cad", "sz-120")
    centre = {"Authorization": f"Bearer {issued.json()['token']}"}
    assert http.post("/v1/tokens", json={"role": "planner", "label": "x"}, headers=centre).status_code == 403


def test_tokens_are_stored_only_as_hashes(
    http: httpx.Client, admin_headers: dict[str, str], store_env: dict[str, str]
) -> None:
    body = {"role": "planner", "label": "hash-check"}
    plain = http.post("/v1/tokens", json=body, headers=admin_headers).json()
    rows = asyncio.run(fetch(store_env["DATABASE_URL"], "SELECT token_hash FROM api_tokens WHERE id = $1",
                             uuid.UUID(plain["id"])))  # fmt: skip
    assert len(rows) == 1
    assert rows[0]["token_hash"] != plain["token"] and len(rows[0]["token_hash"]) == 64
