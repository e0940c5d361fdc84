"""Reports from untrusted roles do not take an AED out of dispatch by themselves, reports are
limited, and every change of an AED's availability is audited (real HTTP, real PostGIS)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.test_aed_registry import nearby_ids, new_aed, remote_spot
from tests.support.server import ServerProcess

pytestmark = pytest.mark.integration


def report(http: httpx.Client, aed: dict, kind: str, headers: dict[str, str]) -> httpx.Response:
    return http.post(f"/v1/aeds/{aed['id']}/reports", json={"kind": kind}, headers=headers)


def audit(http: httpx.Client, aed: dict, headers: dict[str, str]) -> list[tuple[str, str]]:
    r = http.get(f"/v1/aeds/{aed['id']}/availability", headers=headers)
    assert r.status_code == 200, r.text
    return [(c["before"], c["after"]) for c in r.json()]


def test_fifty_missing_reports_from_one_gateway_leave_the_aed_available(
    http, admin_headers, token_for
) -> None:
    lat, lng = remote_spot()
    near = new_aed(http, admin_headers, lat + 0.0005, lng)
    far = new_aed(http, admin_headers, lat + 0.0050, lng)
    gateway = token_for("gateway", "integration")
    answers = [report(http, near, "missing", gateway) for _ in range(50)]
    assert answers[0].status_code == 201
    assert answers[0].json()["in_effect"] is False and answers[0].json()["confirmed_at"] is None
    assert {r.status_code for r in answers[1:]} == {409}
    assert answers[1].json()["errors"][0]["field"] == "kind"
    assert nearby_ids(http, gateway, lat, lng, max_distance_m=2000) == [near["id"], far["id"]]
    assert audit(http, near, admin_headers) == [("absent", "available")]


def test_a_second_independent_reporter_or_an_admin_removes_it_and_the_audit_lists_it(
    http, admin_headers, token_for
) -> None:
    lat, lng = remote_spot()
    near = new_aed(http, admin_headers, lat + 0.0005, lng)
    far = new_aed(http, admin_headers, lat + 0.0050, lng)
    first, second = token_for("gateway", "gw 1"), token_for("planner", "field team")

    pending = report(http, near, "missing", first).json()
    assert nearby_ids(http, first, lat, lng, max_distance_m=2000) == [near["id"], far["id"]]
    confirming = report(http, near, "broken", second)
    assert confirming.status_code == 201 and confirming.json()["in_effect"] is True
    assert nearby_ids(http, first, lat, lng, max_distance_m=2000) == [far["id"]]
    reports = {r["id"]: r for r in http.get(f"/v1/aeds/{near['id']}/reports", headers=first).json()}
    assert reports[pending["id"]]["in_effect"] is True  # confirmed by the second reporter

    changes = http.get(f"/v1/aeds/{near['id']}/availability", headers=admin_headers).json()
    assert [(c["before"], c["after"]) for c in changes] == [
        ("absent", "available"),
        ("available", "reported_missing"),
    ]
    assert changes[1]["actor"] == "planner:field team" and "2 independent reporters" in changes[1]["reason"]
    assert changes[1]["report_id"] == confirming.json()["id"]

    for report_id in (pending["id"], confirming.json()["id"]):
        resolve = f"/v1/aeds/{near['id']}/reports/{report_id}/resolve"
        assert http.post(resolve, json={"resolution": "found it"}, headers=admin_headers).status_code == 200
    assert nearby_ids(http, first, lat, lng, max_distance_m=2000) == [near["id"], far["id"]]
    assert audit(http, near, admin_headers)[-1] == ("reported_broken", "available")

    # an admin's own report acts at once; a status change is audited as well
    assert report(http, far, "missing", admin_headers).json()["in_effect"] is True
    assert nearby_ids(http, first, lat, lng, max_distance_m=2000) == [near["id"]]
    http.patch(f"/v1/aeds/{near['id']}", json={"status": "out_of_service"}, headers=admin_headers)
    assert audit(http, far, admin_headers)[-1] == ("available", "reported_missing")
    assert audit(http, near, admin_headers)[-1] == ("available", "out_of_service")
    assert http.get(f"/v1/aeds/{near['id']}/availability", headers=first).status_code == 403


@pytest.fixture(scope="module")
def strict_server(app_env: dict[str, str]) -> Iterator[ServerProcess]:
    env = {
        **app_env,
        "DISPATCH_AED_REPORTS_PER_REPORTER_PER_HOUR": "3",
        "DISPATCH_AED_REPORTS_PER_AED_PER_HOUR": "4",
    }
    server = ServerProcess(env=env).start()
    yield server
    server.stop()


def test_reports_are_limited_per_reporter_and_per_aed(strict_server, admin_headers) -> None:
    http = httpx.Client(base_url=strict_server.url, timeout=30)

    def token(role: str) -> dict[str, str]:
        r = http.post("/v1/tokens", json={"role": role, "label": "limits"}, headers=admin_headers)
        return {"Authorization": f"Bearer {r.json()['token']}"}

    lat, lng = remote_spot()
    aeds = [new_aed(http, admin_headers, lat + 0.001 * i, lng) for i in range(5)]
    busy = token("gateway")
    assert [report(http, a, "locked", busy).status_code for a in aeds[:3]] == [201] * 3
    over = report(http, aeds[3], "locked", busy)
    assert over.status_code == 429 and 1 <= int(over.headers["retry-after"]) <= 3600
    assert "per reporter" in over.json()["detail"]

    codes = [report(http, aeds[4], "locked", token("planner")).status_code for _ in range(5)]
    assert codes == [201] * 4 + [429]
    assert report(http, aeds[4], "missing", admin_headers).status_code == 201  # admins are not limited
