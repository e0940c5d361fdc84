"""Responder registry and location ingest over real HTTP against real PostGIS and Redis."""

from __future__ import annotations

import random
import secrets
from datetime import date, timedelta

import httpx
import pytest

from core.config import Settings
from core.db import Database
from core.redis import Keys, connect_redis
from geo.crs import to_wgs84, wgs84_to_gcj02
from responders.service import resync_live_profiles
from responders.store import LiveLocationStore
from tests.support.db import fetch
from tests.support.people import bearer, certificate, iso, on_duty_at, register
from tests.support.server import on_single_and_cluster

pytestmark = pytest.mark.integration


def spot() -> tuple[float, float]:
    """A random place in Shenzhen (tests share the database, not the Redis namespace)."""
    return random.uniform(22.50, 22.75), random.uniform(113.85, 114.40)


def test_register_returns_a_token_once_and_explains_dispatchability(http, admin_headers) -> None:
    person = register(http, admin_headers, team="futian/shatou/xiasha", mode="ebike")
    assert person["token"] and person["dispatchable"] is False
    assert person["not_dispatchable_because"] == ["off_duty"]
    assert person["team"] == "shenzhen/futian/shatou/xiasha"
    assert person["certificates"][0]["valid_now"] is True
    again = http.get(f"/v1/responders/{person['id']}", headers=admin_headers).json()
    assert "token" not in again and again["mode"] == "ebike"
    dup = http.post(
        "/v1/responders", json={**_body(), "external_id": person["external_id"]}, headers=admin_headers
    )
    assert dup.status_code == 409 and dup.json()["detail"].startswith("external_id:")


def _body() -> dict:
    return {"external_id": "T-" + secrets.token_hex(6), "name": "Wang Fang", "category": "park_security"}


@pytest.mark.parametrize("how", ["one by one", "imported"])
async def test_teams_form_a_four_level_hierarchy(how, http, admin_headers, store_env) -> None:
    street = "s" + secrets.token_hex(3)
    if how == "one by one":
        register(http, admin_headers, team=f"nanshan/{street}/c1")
        register(http, admin_headers, team=f"shenzhen/nanshan/{street}/c2")
    else:  # the import makes the missing levels for the whole file at once
        lines = [
            f"{street}-{k},Wang Fang,,park_security,{team},walk"
            for k, team in enumerate(
                [f"nanshan/{street}/c1", f"shenzhen/nanshan/{street}/c2", f"nanshan/{street}/c1"]
            )
        ]
        content = "external_id,name,phone,category,team,mode\n" + "\n".join(lines) + "\n"
        headers = {**admin_headers, "content-type": "text/csv"}
        r = http.post("/v1/responders/import", content=content, headers=headers)
        assert r.status_code == 200 and r.json()["created"] == 3, r.text
    rows = await fetch(
        store_env["DATABASE_URL"],
        "SELECT t.path, t.level, p.path AS parent FROM teams t LEFT JOIN teams p ON p.id = t.parent_id "
        "WHERE t.path LIKE $1 OR t.path IN ('shenzhen', 'shenzhen/nanshan') ORDER BY t.path",
        f"shenzhen/nanshan/{street}%",
    )
    got = {(r["path"], r["level"], r["parent"]) for r in rows}
    assert got == {
        ("shenzhen", 0, None),
        ("shenzhen/nanshan", 1, "shenzhen"),
        (f"shenzhen/nanshan/{street}", 2, "shenzhen/nanshan"),
        (f"shenzhen/nanshan/{street}/c1", 3, f"shenzhen/nanshan/{street}"),
        (f"shenzhen/nanshan/{street}/c2", 3, f"shenzhen/nanshan/{street}"),
    }


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "astronaut"}, "category"),
        ({"mode": "jetpack"}, "mode"),
        ({"certificates": [{**certificate(), "kind": "diving"}]}, "certificates.0.kind"),
        (
            {"certificates": [certificate(valid_from=date(2025, 1, 2), valid_until=date(2025, 1, 1))]},
            "certificates.0",
        ),
        ({"external_id": ""}, "external_id"),
        ({"team": "a/b/c/d/e"}, "team"),
    ],
)
def test_bad_registrations_name_the_field(http, admin_headers, change, field) -> None:
    r = http.post("/v1/responders", json={**_body(), **change}, headers=admin_headers)
    assert r.status_code == 422, r.text
    assert any(e["field"] == field for e in r.json()["errors"]), r.json()


@on_single_and_cluster
def test_duty_location_and_dispatchability_story(http, admin_headers, token_for) -> None:
    lat, lng = spot()
    person = register(http, admin_headers)
    me, rid = bearer(person["token"]), person["id"]
    # off duty: a position is not kept
    r = http.post("/v1/locations", json={"lat": lat, "lng": lng, "ts": iso()}, headers=me)
    assert r.status_code == 200 and r.json()["not_on_duty"] == 1
    assert http.put(f"/v1/responders/{rid}/duty", json={"on_duty": True}, headers=me).json()[
        "not_dispatchable_because"
    ] == ["position_stale"]
    # in GCJ-02, as a phone's map SDK reports it
    g_lat, g_lng = wgs84_to_gcj02(lat, lng)
    body = {"lat": g_lat, "lng": g_lng, "ts": iso(-5), "accuracy_m": 8, "crs": "gcj02", "mode": "run"}
    assert http.post("/v1/locations", json=body, headers=me).json()["stored"] == 1
    seen = http.get(f"/v1/responders/{rid}", headers=token_for("dispatcher")).json()
    assert seen["dispatchable"] is True and seen["not_dispatchable_because"] == []
    assert seen["position"]["lat"] == pytest.approx(lat, abs=1e-6)
    assert seen["position"]["lng"] == pytest.approx(lng, abs=1e-6)
    assert seen["position"]["mode"] == "run"
    # older than the stored one: dropped and counted, the stored position stays
    older = {"lat": lat + 0.01, "lng": lng, "ts": iso(-30)}
    assert http.post("/v1/locations", json=older, headers=me).json()["stale"] == 1
    assert http.get(f"/v1/responders/{rid}", headers=me).json()["position"]["lat"] == pytest.approx(
        lat, abs=1e-6
    )
    # from the future beyond the clock skew: rejected, naming the field
    r = http.post("/v1/locations", json={"lat": lat, "lng": lng, "ts": iso(120)}, headers=me)
    assert r.status_code == 422 and r.json()["detail"].startswith("ts:")
    live = http.get("/v1/responders/live", headers=token_for("dispatcher")).json()
    mine = [f for f in live["features"] if f["properties"]["id"] == rid]
    assert len(mine) == 1 and mine[0]["properties"]["category"] == "sanitation_worker"
    assert mine[0]["geometry"]["coordinates"] == pytest.approx([lng, lat], abs=1e-6)
    # off duty: the position is deleted at once
    off = http.put(f"/v1/responders/{rid}/duty", json={"on_duty": False}, headers=me).json()
    assert off["position"] is None and off["not_dispatchable_because"] == ["off_duty"]
    live = http.get("/v1/responders/live", headers=admin_headers).json()
    assert not [f for f in live["features"] if f["properties"]["id"] == rid]
    metrics = http.get("/metrics").text
    for outcome in ("stored", "stale", "not_on_duty", "future_rejected"):
        assert f'location_updates_total{{outcome="{outcome}"}}' in metrics


@on_single_and_cluster
def test_a_lapsed_certificate_takes_the_responder_out_at_once(http, admin_headers) -> None:
    lat, lng = spot()
    person = on_duty_at(http, admin_headers, lat, lng)
    assert http.get(f"/v1/responders/{person['id']}", headers=admin_headers).json()["dispatchable"] is True
    lapsed = certificate(
        valid_until=date.today() - timedelta(days=1), valid_from=date.today() - timedelta(days=700)
    )
    r = http.patch(f"/v1/responders/{person['id']}", json={"certificates": [lapsed]}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert r.json()["not_dispatchable_because"] == ["no_valid_certificate", "position_stale"]
    live = http.get("/v1/responders/live", headers=admin_headers).json()
    assert not [f for f in live["features"] if f["properties"]["id"] == person["id"]]


def test_responders_act_only_on_themselves(http, admin_headers, token_for) -> None:
    alice, bob = register(http, admin_headers), register(http, admin_headers)
    as_alice = bearer(alice["token"])
    assert http.get(f"/v1/responders/{bob['id']}", headers=as_alice).status_code == 403
    assert (
        http.put(f"/v1/responders/{bob['id']}/duty", json={"on_duty": True}, headers=as_alice).status_code
        == 403
    )
    http.put(f"/v1/responders/{bob['id']}/duty", json={"on_duty": True}, headers=admin_headers)
    body = {"lat": 22.54, "lng": 114.05, "ts": iso(), "responder_id": bob["id"]}
    r = http.post("/v1/locations", json=body, headers=as_alice)
    assert r.status_code == 403 and "responder_id" in r.json()["detail"]
    batch = {"updates": [body]}
    assert http.post("/v1/locations", json=batch, headers=as_alice).status_code == 403
    assert http.post("/v1/locations", json=body, headers=token_for("dispatcher")).status_code == 403
    assert http.get(f"/v1/responders/{bob['id']}", headers=as_alice.copy()).status_code == 403
    assert (
        http.patch(f"/v1/responders/{alice['id']}", json={"name": "x"}, headers=as_alice).status_code == 403
    )


@on_single_and_cluster
def test_gateway_batches(http, admin_headers, token_for) -> None:
    gateway = token_for("gateway")
    people = [register(http, admin_headers) for _ in range(3)]
    for p in people:
        http.put(f"/v1/responders/{p['id']}/duty", json={"on_duty": True}, headers=admin_headers)
    lat, lng = spot()
    updates = [
        {"responder_id": p["id"], "lat": lat, "lng": lng + i * 1e-3, "ts": iso()}
        for i, p in enumerate(people)
    ]
    updates.append({"responder_id": people[0]["id"], "lat": lat, "lng": lng, "ts": iso(600)})
    r = http.post("/v1/locations", json={"updates": updates}, headers=gateway)
    assert r.status_code == 200, r.text
    assert r.json()["stored"] == 3
    assert r.json()["rejected"] == [
        {"index": 3, "field": "updates.3.ts", "rule": "must not be more than 60 s in the future (clock skew)"}
    ]
    too_many = {"updates": [updates[0]] * 5001}
    r = http.post("/v1/locations", json=too_many, headers=gateway)
    assert r.status_code == 413 and r.json()["detail"].startswith("updates:")
    bad = {"updates": [updates[0], {**updates[1], "lat": 91}]}
    r = http.post("/v1/locations", json=bad, headers=gateway)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "updates.1.lat"
    # nothing stored was lost to the rejected batches
    seen = http.get(f"/v1/responders/{people[1]['id']}", headers=admin_headers).json()
    assert seen["position"]["lng"] == pytest.approx(lng + 1e-3, abs=1e-6)


@on_single_and_cluster
def test_a_gateway_batch_stores_what_single_updates_store(http, admin_headers, token_for) -> None:
    """The batch path packs whole columns with numpy; it must keep exactly what the one-update path
    keeps: datums converted, accuracy and travel mode, an id however the gateway spells the UUID."""
    lat, lng = spot()
    g_lat, g_lng = wgs84_to_gcj02(lat, lng)
    reports = [
        {"lat": lat, "lng": lng, "ts": iso(-3)},
        {"lat": g_lat, "lng": g_lng + 2e-3, "ts": iso(-2), "crs": "gcj02", "accuracy_m": 7.6, "mode": "run"},
        {"lat": 22.55, "lng": 114.06, "ts": iso(-1), "crs": "bd09", "mode": "ebike"},
        {"lat": lat + 1e-3, "lng": lng, "ts": iso(-1), "accuracy_m": 0},
    ]
    pairs = [(register(http, admin_headers), register(http, admin_headers)) for _ in reports]
    for pair in pairs:
        for p in pair:
            http.put(f"/v1/responders/{p['id']}/duty", json={"on_duty": True}, headers=admin_headers)
    batch = [
        {**report, "responder_id": by_batch["id"].upper().replace("-", "")}
        for report, (by_batch, _) in zip(reports, pairs, strict=True)
    ]
    too_old = {**reports[0], "responder_id": pairs[0][0]["id"], "ts": iso(-600)}
    r = http.post("/v1/locations", json={"updates": [*batch, too_old]}, headers=token_for("gateway"))
    assert r.status_code == 200, r.text
    assert (r.json()["stored"], r.json()["stale"]) == (len(reports), 1)
    for report, (_, alone) in zip(reports, pairs, strict=True):
        r = http.post("/v1/locations", json=report, headers=bearer(alone["token"]))
        assert r.json()["stored"] == 1, r.text
    for by_batch, alone in pairs:
        got = [http.get(f"/v1/responders/{p['id']}", headers=admin_headers).json() for p in (by_batch, alone)]
        assert got[0]["dispatchable"] is True
        same = ("lat", "lng", "ts", "accuracy_m", "mode")
        assert {k: got[0]["position"][k] for k in same} == {k: got[1]["position"][k] for k in same}
    kept = http.get(f"/v1/responders/{pairs[1][0]['id']}", headers=admin_headers).json()["position"]
    w_lat, w_lng = to_wgs84(g_lat, g_lng + 2e-3, "gcj02")
    assert (kept["lat"], kept["lng"]) == (pytest.approx(w_lat, abs=1e-6), pytest.approx(w_lng, abs=1e-6))
    assert (kept["accuracy_m"], kept["mode"]) == (8.0, "run")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lat": 91, "lng": 114.0}, "lat"),
        ({"lat": 22.5, "lng": -181}, "lng"),
        ({"lat": "north", "lng": 114.0}, "lat"),
        ({"lat": 22.5, "lng": 114.0, "crs": "mercator"}, "crs"),
        ({"lat": 22.5, "lng": 114.0, "mode": "teleport"}, "mode"),
        ({"lat": 22.5, "lng": 114.0, "accuracy_m": -3}, "accuracy_m"),
    ],
)
def test_bad_locations_name_the_field(http, admin_headers, body, field) -> None:
    person = register(http, admin_headers)
    r = http.post("/v1/locations", json={"ts": iso(), **body}, headers=bearer(person["token"]))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["field"] == field


def test_nan_latitude_is_refused(http, admin_headers) -> None:
    person = register(http, admin_headers)
    raw = '{"lat": NaN, "lng": 114.0, "ts": "' + iso() + '"}'
    r = http.post(
        "/v1/locations", content=raw, headers={**bearer(person["token"]), "content-type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lat"
    assert "finite" in r.json()["errors"][0]["rule"]


def test_rotate_and_deactivate_revoke_tokens(http, admin_headers) -> None:
    person = register(http, admin_headers)
    old = bearer(person["token"])
    r = http.post(f"/v1/responders/{person['id']}/token", headers=old)
    assert r.status_code == 201
    new = bearer(r.json()["token"])
    assert http.get(f"/v1/responders/{person['id']}", headers=old).status_code == 401
    assert http.get(f"/v1/responders/{person['id']}", headers=new).status_code == 200
    gone = http.post(f"/v1/responders/{person['id']}/deactivate", headers=admin_headers).json()
    assert gone["active"] is False and gone["not_dispatchable_because"] == ["inactive", "off_duty"]
    assert http.get(f"/v1/responders/{person['id']}", headers=new).status_code == 401
    r = http.put(f"/v1/responders/{person['id']}/duty", json={"on_duty": True}, headers=admin_headers)
    assert r.status_code == 409 and r.json()["detail"].startswith("on_duty:")


def _csv(run: str) -> str:
    return (
        "external_id,name,phone,category,team,mode,"
        "cert_kind,cert_number,cert_issuer,cert_valid_from,cert_valid_until\n"
        f"{run}-1,Zhang San,+86 1,sanitation_worker,futian/shatou/xiasha,walk,"
        "cpr,N1,Red Cross,2025-01-01,2027-12-31\n"
        f"{run}-1,,,,,,aed,N2,Red Cross,2025-01-01,2027-12-31\n"
        f"{run}-2,Li Si,,astronaut,futian,walk,cpr,N3,Red Cross,2025-01-01,2027-12-31\n"
        f"{run}-3,Wang Wu,,park_security,luohu,ebike,cpr,N4,Red Cross,2025-13-01,2027-12-31\n"
        f"{run}-4,Zhao Liu,,city_inspector,luohu,bicycle,first_aid,N5,,2025-01-01,2027-12-31,extra\n"
        f"{run}-5,Sun Qi,,auxiliary_staff,longhua/dalang,walk,,,,,\n"
        f"{run}-6,Zhou Ba,,volunteer,,car,first_aid,N6,,2025-01-01,2027-12-31\n"
    )


async def test_csv_import_reports_bad_rows_keeps_good_ones_and_is_idempotent(
    http, admin_headers, store_env
) -> None:
    run = "IMP" + secrets.token_hex(4)
    headers = {**admin_headers, "content-type": "text/csv"}
    r = http.post("/v1/responders/import", content=_csv(run), headers=headers)
    assert r.status_code == 200, r.text
    report = r.json()
    assert (report["rows"], report["created"], report["updated"], report["unchanged"]) == (7, 3, 0, 0)
    assert [(e["line"], e["field"]) for e in report["errors"]] == [
        (4, "category"),
        (5, "cert_valid_from"),
        (6, "row"),
    ]
    query = (
        "SELECT r.external_id, r.updated_at, count(c.id) AS certs FROM responders r "
        "LEFT JOIN certificates c ON c.responder_id = r.id WHERE r.external_id LIKE $1 "
        "GROUP BY r.id ORDER BY r.external_id"
    )
    before = [tuple(row) for row in await fetch(store_env["DATABASE_URL"], query, f"{run}-%")]
    assert [(eid, certs) for eid, _, certs in before] == [(f"{run}-1", 2), (f"{run}-5", 0), (f"{run}-6", 1)]
    again = http.post("/v1/responders/import", content=_csv(run), headers=headers).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)
    assert [tuple(row) for row in await fetch(store_env["DATABASE_URL"], query, f"{run}-%")] == before


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("name,category\nx,volunteer\n", "file: header must name the columns external_id"),
        ("external_id,name,category,shoe_size\n", "file: unknown columns shoe_size"),
    ],
)
def test_unusable_csv_files_are_refused(http, admin_headers, content, detail) -> None:
    r = http.post("/v1/responders/import", content=content, headers=admin_headers)
    assert r.status_code == 422 and r.json()["detail"].startswith(detail)


def test_a_responder_can_be_updated(http: httpx.Client, admin_headers) -> None:
    person = register(http, admin_headers)
    r = http.patch(
        f"/v1/responders/{person['id']}",
        json={"name": "Li Wei Jr", "team": "dapeng/kuichong", "mode": "bicycle"},
        headers=admin_headers,
    )
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["team"], r.json()["mode"]) == (
        "Li Wei Jr",
        "shenzhen/dapeng/kuichong",
        "bicycle",
    )
    assert (
        http.patch(
            f"/v1/responders/{person['id']}", json={"mode": "jetpack"}, headers=admin_headers
        ).status_code
        == 422
    )
    r = http.patch(f"/v1/responders/{person['id']}", json={"name": None}, headers=admin_headers)
    assert r.status_code == 409 and r.json()["detail"] == "name: may not be null"


@on_single_and_cluster
async def test_a_resync_never_undoes_a_change_made_while_it_ran(live_server, http, admin_headers) -> None:
    """Redis lost its data and the profiles are rebuilt from Postgres; a responder who clocks off, or
    whose travel mode changes, between the rebuild's read and its write must not be put back as
    they were (an off-duty phone would be tracked and alertable, an old mode misjudges the ETA)."""
    leaving, switching, staying = (on_duty_at(http, admin_headers, *spot()) for _ in range(3))
    settings = Settings(database_url=live_server.database_url, redis_url=live_server.redis_url)
    redis_client = connect_redis(settings.redis_url)
    raced = []

    class RacedStore(LiveLocationStore):
        async def set_profiles(self, profiles, now_s=None):  # type: ignore[no-untyped-def]
            if not raced:  # the changes land after the rebuild read the registry, before it writes
                raced.append(True)
                off = http.put(
                    f"/v1/responders/{leaving['id']}/duty", json={"on_duty": False}, headers=admin_headers
                )
                ebike = http.patch(
                    f"/v1/responders/{switching['id']}", json={"mode": "ebike"}, headers=admin_headers
                )
                assert off.status_code == ebike.status_code == 200, (off.text, ebike.text)
                # what the two changes do to this store
                await self.remove(leaving["id"])
                await super().set_profiles([(switching["id"], "ebike", [])])
            await super().set_profiles(profiles, now_s)

    keys = Keys("rctest-resync-" + secrets.token_hex(4))
    store = RacedStore(redis_client, keys, settings)
    db = Database(settings.database_url, pool_size=1)
    try:
        async with db.sessions() as session:
            await resync_live_profiles(session, store, settings)
        assert await store.is_on_duty(staying["id"])
        assert not await store.is_on_duty(leaving["id"])
        profiles = [await store.profile(switching["id"]), await store.profile(staying["id"])]
        assert [p.split("|")[1] for p in profiles if p] == ["ebike", "walk"]
    finally:
        await db.dispose()
        await store.aclose()
        async for key in redis_client.scan_iter(match=keys("*"), count=1000):
            await redis_client.delete(key)
        await redis_client.aclose()


@on_single_and_cluster
def test_the_live_map_reads_only_the_view_it_is_given(http, admin_headers, token_for) -> None:
    """`bbox` returns exactly the positions inside the view (on both sides of a region border), a
    view too wide to read at once is refused naming the field and the rule, and without a box
    everyone comes back as before."""
    inside = [(22.6000, 114.0840), (22.6010, 114.0880), (22.6040, 114.0860)]  # across a region border
    outside = [(22.6100, 114.0860), (22.6000, 114.1000)]
    people = [on_duty_at(http, admin_headers, lat, lng) for lat, lng in inside + outside]
    ids = [p["id"] for p in people]
    dispatcher = token_for("dispatcher")
    live = http.get(
        "/v1/responders/live", params={"bbox": "22.5990,114.0800,22.6050,114.0900"}, headers=dispatcher
    )
    assert live.status_code == 200, live.text
    found = {f["properties"]["id"]: f["geometry"]["coordinates"] for f in live.json()["features"]}
    assert set(ids) & set(found) == set(ids[:3])
    for rid, (lat, lng) in zip(ids[:3], inside, strict=True):
        assert found[rid] == pytest.approx([lng, lat], abs=1e-6)
    everyone = {
        f["properties"]["id"] for f in http.get("/v1/responders/live", headers=dispatcher).json()["features"]
    }
    assert set(ids) <= everyone
    province = http.get("/v1/responders/live", params={"bbox": "20.0,109.0,25.5,117.5"}, headers=dispatcher)
    assert province.status_code == 422
    detail = province.json()["detail"]
    assert detail.startswith("bbox:") and "live_map_pages_max" in detail
