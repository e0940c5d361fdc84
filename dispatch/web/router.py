"""The three screens (dispatcher console, responder app, planner page), served by the service itself.

Nothing is fetched from a CDN: the map library comes from npm into `dispatch/web/node_modules` at
set-up and is served under `/static/vendor/<package>/`, so the screens work on a network with no
internet. When the set-up has not run, pages answer 503 with what to run instead of a blank map.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from core.auth import Principal, authenticate
from core.config import Settings
from core.deps import get_app_settings
from dispatch.schemas import IncidentCategory
from geo.crs import Crs
from geo.reach import ReachModel

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
NODE_MODULES = WEB_DIR / "node_modules"
# package name in URLs -> the folder of that npm package the browser may read (its `dist`, nothing else)
VENDOR_DIRS: dict[str, Path] = {
    "leaflet": NODE_MODULES / "leaflet" / "dist",
    "leaflet.markercluster": NODE_MODULES / "leaflet.markercluster" / "dist",
}
NO_CACHE = {"Cache-Control": "no-cache"}  # pages are tiny; a new deployment must show at once
PAGES = {
    "/": "console.html",
    "/responder": "responder.html",
    "/planner": "planner.html",
    "/coordinator": "coordinator.html",  # programme coordinators: debrief follow-ups (issue 22)
}

router = APIRouter(tags=["web"])

SETUP_MISSING_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>需要安装 · Set-up needed</title></head>
<body style="font-family: sans-serif; max-width: 40rem; margin: 3rem auto; color: #111">
<h1>地图组件未安装</h1>
<p>页面所需的前端组件由本服务自己提供（从不使用 CDN），缺少：<code>{missing}</code>。</p>
<p>请在联网时运行一次 <code>scripts/setup.sh</code>
（或 <code>cd dispatch/web &amp;&amp; npm install</code>），然后刷新本页。</p>
<hr>
<h1 lang="en">The map packages are not installed</h1>
<p lang="en">The screens need front-end packages from npm that are served by this service (never a CDN):
missing <code>{missing}</code>.</p>
<p lang="en">Run <code>scripts/setup.sh</code> (or <code>cd dispatch/web &amp;&amp; npm install</code>)
once while the machine is online, then reload this page.</p>
</body></html>"""


def missing_vendor_packages() -> list[str]:
    """Vendor packages whose files are not on disk (the set-up did not run `npm install`)."""
    return [name for name, folder in VENDOR_DIRS.items() if not folder.is_dir()]


def _setup_missing() -> HTMLResponse:
    missing = ", ".join(missing_vendor_packages())
    return HTMLResponse(SETUP_MISSING_PAGE.format(missing=missing), status.HTTP_503_SERVICE_UNAVAILABLE)


def _page(filename: str) -> Any:
    async def serve() -> Any:
        if missing_vendor_packages():
            return _setup_missing()
        return FileResponse(STATIC_DIR / filename, media_type="text/html", headers=NO_CACHE)

    serve.__name__ = f"page_{filename.removesuffix('.html')}"
    serve.__doc__ = f"The {filename.removesuffix('.html')} screen."
    return serve


for _path, _file in PAGES.items():
    router.add_api_route(_path, _page(_file), methods=["GET"], include_in_schema=False)


@router.get("/responder.webmanifest", include_in_schema=False)
async def responder_manifest() -> FileResponse:
    """The installable responder app's manifest (name, icons, start page, standalone display)."""
    manifest = STATIC_DIR / "responder.webmanifest"
    return FileResponse(manifest, media_type="application/manifest+json", headers=NO_CACHE)


@router.get("/responder-sw.js", include_in_schema=False)
async def responder_service_worker() -> FileResponse:
    """The responder app's service worker. Served from the root (not /static) because a worker may
    only control pages at or below its own folder, and it must control /responder; never cached by
    HTTP so a fixed worker reaches phones at the next check rather than after a day."""
    return FileResponse(STATIC_DIR / "responder-sw.js", media_type="text/javascript", headers=NO_CACHE)


@router.get("/static/vendor/{package}/{path:path}", include_in_schema=False)
async def vendor_file(package: str, path: str) -> Any:
    """One file of an npm package's `dist` folder; 503 when the set-up did not install it."""
    folder = VENDOR_DIRS.get(package)
    if folder is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"package: not served: {package}")
    if not folder.is_dir():
        return _setup_missing()
    target = (folder / path).resolve()
    if not target.is_relative_to(folder.resolve()) or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"path: no file {path} in {package}")
    return FileResponse(target)


def map_datum(settings: Settings) -> Crs:
    """The datum the pages draw in: the tiles' datum when there are tiles, else plain WGS-84.

    Chinese tile providers draw GCJ-02, so points must be shifted into it (a few hundred metres)
    to sit on the right street; without tiles there is nothing to line up with and WGS-84 is used.
    """
    return Crs(settings.tile_crs) if settings.tile_url else Crs.wgs84


# The modes the console rings a circle for around an incident: the slowest common one and the fastest
# a city worker uses, so the two circles bracket where help can come from.
REACH_CIRCLE_MODES = ("walk", "ebike")


def reach_model(settings: Settings) -> dict[str, Any]:
    """The reach model's numbers (`geo.reach.ReachModel`) a page needs to draw an incident's reach
    for any `reach_s` a dispatcher chose: radius = (reach_s − activation) × speed ÷ circuity."""
    model = ReachModel.from_settings(settings)
    return {
        "activation_s": model.activation_s,
        "circuity": model.circuity,
        "speed_mps": {mode: model.speed(mode) for mode in REACH_CIRCLE_MODES},
    }


@router.get("/v1/web/config")
async def web_config(settings: Settings = Depends(get_app_settings)) -> dict[str, Any]:
    """What the pages need before sign-in: the base map, the choices the forms offer, and the city's
    time zone (pages show the city's clock, not the browser's: a dispatcher's laptop may be set
    to another zone)."""
    return {
        "timezone": settings.timezone,
        "tile_url": settings.tile_url,
        "tile_crs": settings.tile_crs,
        "map_crs": map_datum(settings).value,
        "reach_s": settings.reach_s,
        "reach_min_s": settings.reach_min_s,
        "reach_max_s": settings.reach_max_s,
        "reach_model": reach_model(settings),
        "incident_categories": [c.value for c in IncidentCategory],
    }


@router.get("/v1/web/session")
async def web_session(principal: Principal = Depends(authenticate)) -> dict[str, Any]:
    """Who a token belongs to, so a page can say at sign-in whether this token fits this screen."""
    return {
        "role": principal.role.value,
        "label": principal.label,
        "responder_id": str(principal.responder_id) if principal.responder_id else None,
    }


def install_web(app: FastAPI) -> None:
    """Add the pages, the vendor files and `/static` (our own JS/CSS) to the app."""
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
