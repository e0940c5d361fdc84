"""Fuzzing the OpenAPI with schemathesis: no input, from any role, gets a 5xx or an undocumented answer.

Every operation of the published document is called with generated data (valid and invalid), as
admin and as each other role, against a real server on a database of its own (fuzzing registers
AEDs at latitude 0, replaces the city, opens incidents: none of it may leak into the other tests).
Checks: no server error, the status code and the body are the ones the document declares, and each
answer comes within a bound. Generation is derandomized, so a run is the same on every machine.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.db import fresh_database
from tests.support.server import ServerProcess

# Planning studies run as jobs in processes of their own (simulator/jobs.py): the fuzz server makes
# every study a job (no synchronous wait) and keeps grids small, so generated studies stay cheap
# while their answers (200, 202 + job, 404 without a city, 422 over the cell limit) are checked.
EXCLUDED: set[tuple[str, str]] = set()
STUDY_ENV = {
    "DISPATCH_STUDY_SYNC_WAIT_S": "0",
    "DISPATCH_STUDY_MAX_CELLS": "3000",
    "DISPATCH_STUDY_TIME_LIMIT_S": "60",
}
ROLES = ("admin", "dispatcher", "planner", "coordinator", "gateway", "cad", "responder")
# Examples per operation and role: the roles an operation lets through (its `x-roles`) get the
# budget; the others are refused with 403 (or 422 for a bad body, which is checked first) and a
# few examples show that those answers are documented too.
ALLOWED = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}
REFUSED = {GenerationMode.POSITIVE: 3, GenerationMode.NEGATIVE: 3}
MAX_RESPONSE_S = 5.0  # generous: two shared cores; a normal answer takes milliseconds
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@dataclass(frozen=True)
class Finding:
    operation: str
    role: str
    what: str
    curl: str

    def __str__(self) -> str:
        return f"{self.operation} as {self.role}: {self.what}\n    {self.curl}"


@pytest.fixture(scope="module")
def fuzz_server(store_env: dict[str, str], app_env: dict[str, str]) -> Iterator[ServerProcess]:
    """A server on a fresh, migrated database of its own and a Redis namespace of its own."""
    with fresh_database(store_env["DATABASE_URL"], "fuzz") as url:
        prefix = "rcfuzz" + secrets.token_hex(3)
        server = ServerProcess(
            env={**app_env, **STUDY_ENV, "DATABASE_URL": url, "DISPATCH_REDIS_PREFIX": prefix}
        )
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _tokens(base_url: str, admin: dict[str, str]) -> dict[str, dict[str, str]]:
    """Bearer headers for every role, issued through the API like any client's."""
    headers = {"admin": admin}
    with httpx.Client(base_url=base_url, headers=admin, timeout=30) as http:
        for role in ROLES:
            if role in ("admin", "responder"):
                continue
            agency = {"agency": "fuzz.centre.example"} if role == "cad" else {}
            r = http.post("/v1/tokens", json={"role": role, "label": f"fuzz {role}", **agency})
            assert r.status_code == 201, r.text
            headers[role] = {"Authorization": f"Bearer {r.json()['token']}"}
        body = {"external_id": "FUZZ-1", "name": "Fuzz Responder", "category": "volunteer"}
        r = http.post("/v1/responders", json=body)
        assert r.status_code == 201, r.text
        headers["responder"] = {"Authorization": f"Bearer {r.json()['token']}"}
    return headers


def _fuzz(operation, mode: GenerationMode, examples: int, role: str, headers: dict[str, str], base_url: str,
          session: requests.Session, found: list[Finding]) -> None:  # fmt: skip
    """Run the bounded examples of one operation in one mode as one role; record, never shrink."""

    @settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        try:
            response = case.call_and_validate(
                base_url=base_url, session=session, headers=headers, checks=CHECKS, timeout=60
            )
        except Failure as exc:
            found.append(
                Finding(operation.label, role, f"{exc.title}: {exc.message}", case.as_curl_command())
            )
            return
        except BaseExceptionGroup as group:
            for exc in group.exceptions:
                title = getattr(exc, "title", type(exc).__name__)
                message = getattr(exc, "message", str(exc))
                found.append(Finding(operation.label, role, f"{title}: {message}", case.as_curl_command()))
            return
        if response.elapsed > MAX_RESPONSE_S:
            what = f"answered in {response.elapsed:.1f} s (limit {MAX_RESPONSE_S} s)"
            found.append(Finding(operation.label, role, what, case.as_curl_command()))

    try:
        run()
    except Unsatisfiable:  # no parameters to break: nothing negative to send
        assert mode is GenerationMode.NEGATIVE, f"{operation.label}: no valid example"


@pytest.mark.timeout(900)
def test_every_operation_as_every_role_gets_no_5xx_and_a_documented_answer(
    fuzz_server: ServerProcess, admin_headers: dict[str, str]
) -> None:
    base_url = fuzz_server.url
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    roles = _tokens(base_url, admin_headers)
    operations = [result.ok() for result in schema.get_all_operations()]
    fuzzed = [op for op in operations if (op.method.upper(), op.path) not in EXCLUDED]
    assert len(fuzzed) == len(operations) - len(EXCLUDED), "an excluded operation is gone: update EXCLUDED"
    only = os.environ.get("FUZZ_ONLY")  # e.g. FUZZ_ONLY=/v1/city while fixing one finding
    found: list[Finding] = []
    started = time.monotonic()
    with requests.Session() as session:
        for operation in fuzzed:
            if only and only not in operation.path:
                continue
            allowed = operation.definition.raw.get("x-roles", ROLES)
            for role, headers in roles.items():
                for mode, examples in (ALLOWED if role in allowed else REFUSED).items():
                    _fuzz(operation, mode, examples, role, headers, base_url, session, found)
    took = time.monotonic() - started
    unique = {(f.operation, f.role, f.what.splitlines()[0]): f for f in found}
    report = "\n".join(str(f) for f in unique.values())
    assert not unique, f"{len(found)} failures ({len(unique)} distinct) in {took:.0f} s:\n{report}"
