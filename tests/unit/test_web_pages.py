"""The web screens' routes without stores: pages, vendor files, and the 503 when set-up is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from core.config import Settings
from dispatch.web import router as web
from geo.crs import Crs


@pytest.fixture
def client() -> TestClient:
    app = FastAPI()
    web.install_web(app)
    return TestClient(app)


@pytest.mark.parametrize(("path", "title"), [("/", "Dispatch console"), ("/responder", "Responder"),
                                             ("/planner", "Planner")])  # fmt: skip
def test_pages_and_vendor_files_come_from_our_origin(client: TestClient, path: str, title: str) -> None:
    r = client.get(path)
    assert r.status_code == 200 and re.search(f"<title[^>]*>{title}", r.text)
    assert "https://" not in r.text and "http://" not in r.text  # no CDN: everything from this service
    assert client.get("/static/vendor/leaflet/leaflet.js").status_code == 200
    assert client.get("/static/lib/api.js").status_code == 200


def test_vendor_route_serves_only_dist_folders_of_known_packages(client: TestClient) -> None:
    assert client.get("/static/vendor/leaflet/../package.json").status_code == 404
    assert client.get("/static/vendor/leaflet/%2e%2e/package.json").status_code == 404
    r = client.get("/static/vendor/left-pad/index.js")
    assert r.status_code == 404 and r.json()["detail"] == "package: not served: left-pad"


def test_missing_npm_install_gives_a_503_saying_what_to_run(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(web.VENDOR_DIRS, "leaflet", tmp_path / "nothing-here")
    for path in ("/", "/static/vendor/leaflet/leaflet.js"):
        r = client.get(path)
        assert r.status_code == 503
        assert "npm install" in r.text and "leaflet" in r.text
        assert "地图组件未安装" in r.text and "The map packages are not installed" in r.text  # both languages


@pytest.mark.parametrize(
    ("tile_url", "tile_crs", "datum"),
    [(None, "gcj02", Crs.wgs84), ("http://tiles.local/{z}/{x}/{y}.png", "gcj02", Crs.gcj02),
     ("http://tiles.local/{z}/{x}/{y}.png", "wgs84", Crs.wgs84)],
)  # fmt: skip
def test_pages_draw_in_the_tiles_datum_only_when_there_are_tiles(
    tile_url: str | None, tile_crs: str, datum: Crs
) -> None:
    assert web.map_datum(Settings(tile_url=tile_url, tile_crs=tile_crs)) is datum
