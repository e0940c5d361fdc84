"""`dispatch sim …`: load the demo or a real city, run coverage studies and what-ifs, keep the demo alive.

Studies run offline on the generated demo city (`--city demo`, no database needed) or on what the
service holds (`--city stored`: districts, registry AEDs, live or shift responders). Results go to a
folder: summary.json, cells.geojson and PNG maps, with a progress bar while they compute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from geo.crs import Crs
from geo.reach import ReachModel
from responders.schemas import ResponderCategory
from simulator.city import City
from simulator.cli_policies import policies

sim = typer.Typer(help="Simulation: demo city, coverage studies, what-if placement.", no_args_is_help=True)
console = Console(stderr=True)
T = TypeVar("T")


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


async def _with_stores(work: Callable[[Any, Any, Any], Awaitable[T]]) -> T:
    """Run `work(session, live_store, settings)` against the configured database and Redis."""
    from core.config import get_settings
    from core.db import Database
    from core.redis import Keys, connect_configured
    from responders.store import LiveLocationStore

    settings = get_settings()
    db = Database(settings.database_url, pool_size=2)
    redis = connect_configured(settings)
    store = LiveLocationStore(redis, Keys(settings.redis_prefix), settings)
    try:
        async with db.sessions() as session:
            return await work(session, store, settings)
    finally:
        await store.aclose()
        await redis.aclose()
        await db.dispose()


@sim.command("load-demo")
def load_demo_command(
    seed: int = typer.Option(0, help="same seed, same workers, AEDs and community seats"),
    responders: int = typer.Option(8000, help="synthetic frontline workers"),
    aeds: int = typer.Option(23000, help="synthetic public AEDs"),
) -> None:
    """Store the demo city, Shenzhen: districts and streets, workers in community teams (registry) and
    AEDs (registry)."""
    from simulator.demo import build_demo, load_demo

    demo = build_demo(seed, responders, aeds)
    counts = asyncio.run(
        _with_stores(
            lambda s, store, settings: load_demo(
                s, store, settings, demo, lambda p: console.print(f"writing {p}…")
            )
        )
    )
    console.print(counts)


@sim.command("load-city")
def load_city_command(
    file: Path = typer.Argument(
        ..., exists=True, dir_okay=False, help="GeoJSON FeatureCollection of districts"
    ),
    crs: Crs = typer.Option(Crs.wgs84, help="datum of the file (Chinese boundary files are usually gcj02)"),
    name_property: str = typer.Option("name", help="feature property with the district name"),
    population: list[str] = typer.Option([], "--population", help="NAME=COUNT, repeatable"),
) -> None:
    """Replace the stored city with the districts of FILE."""
    from simulator.importers import CityFileError, load_city_file
    from simulator.service import save_city

    try:
        pops = {}
        for item in population:
            name, sep, count = item.partition("=")
            if not sep or not name or not count.strip().isdigit():
                raise ValueError(f"--population {item!r}: must be NAME=COUNT, a whole number of people")
            pops[name] = int(count)
        city = load_city_file(file, crs, name_property=name_property, populations=pops)
    except (CityFileError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(code=2) from exc

    async def store(session: Any, _store: Any, _settings: Any) -> None:
        await save_city(session, city)
        await session.commit()

    asyncio.run(_with_stores(store))
    console.print(f"{city.name}: {len(city.districts)} districts, {city.population:,} people")


@dataclass
class Study:
    city: City
    snapshot: Any
    inputs: dict[str, Any]


def _gather(
    city_arg: str, crs: Crs, source: str, at: datetime, seed: int, workforce: int, aeds: int
) -> Study:
    """The city and snapshot for a CLI study: generated offline, or from the stores."""
    from aed_registry.availability import HoursPolicy
    from core.config import get_settings
    from simulator.coverage import Snapshot
    from simulator.population import on_shift, synth_aeds, synth_responders

    hours = HoursPolicy.from_settings(get_settings())
    if city_arg == "demo":
        from simulator.shenzhen import demo_city

        city = demo_city()
        people = on_shift(synth_responders(city, workforce, seed), hours.local(at).hour)
        open_aeds = [a for a in synth_aeds(city, aeds, seed) if hours.offered(a.opening_hours, at)]
        snapshot = Snapshot.of(people, open_aeds)
        return Study(city, snapshot, {"responders": len(people), "aeds": len(open_aeds)})
    from simulator import service
    from simulator.importers import load_city_file

    async def work(session: Any, store: Any, settings: Any) -> Study:
        city = (
            await service.load_city(session) if city_arg == "stored" else load_city_file(Path(city_arg), crs)
        )
        got = await service.gather(
            session, store, city, source=source, at=at, hours=hours,
            staleness_s=settings.staleness_s, workforce=workforce, seed=seed,
        )  # fmt: skip
        return Study(city, got.snapshot, {"responders": got.responders, "aeds": got.aeds})

    return asyncio.run(_with_stores(work))


def _run(study: Study, res: int, reach: float) -> Any:
    from core.config import get_settings
    from simulator.coverage import city_grid
    from simulator.coverage import study as run_study

    with _progress() as progress:
        task = progress.add_task(f"coverage, H3 res {res}", total=None)
        grid = city_grid(study.city, res)
        progress.update(task, total=len(grid))
        return run_study(
            grid, study.snapshot, ReachModel.from_settings(get_settings()), reach,
            lambda done, total: progress.update(task, completed=done, total=total),
        )  # fmt: skip


def _pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def _coverage_table(title: str, area: str, rows: list[dict[str, Any]]) -> Table:
    """One table of shares within the reach: a row per district, or per street with its district."""
    table = Table(title=title)
    columns = [area, *(["district"] if area == "street" else []), "people"]
    for col in [*columns, "people: responder", "people: AED", "area: responder", "area: AED"]:
        table.add_column(col, justify="left" if col in (area, "district") else "right")
    for row in rows:
        table.add_row(
            row["name"], *([row["district"]] if area == "street" else []), f"{row['population']:,}",
            _pct(row["population_share_responder"]), _pct(row["population_share_aed"]),
            _pct(row["area_share_responder"]), _pct(row["area_share_aed"]),
        )  # fmt: skip
    return table


def _print_summary(summary: dict[str, Any]) -> None:
    within = f"Within {summary['reach_s']:.0f} s (H3 res {summary['resolution']})"
    if summary["streets"]:
        Console().print(_coverage_table(f"{within}, by street", "street", summary["streets"]))
    rows = [*summary["districts"], {**summary, "name": "whole city"}]
    Console().print(_coverage_table(f"{within}, by district", "district", rows))


CITY = typer.Option("demo", "--city", help="demo (Shenzhen), stored (the service's), or a GeoJSON file")
AT = typer.Option(None, help="ISO time for AED hours and shift (default: now)")


class Source(StrEnum):
    live = "live"
    shift = "shift"


class Kind(StrEnum):
    aed = "aed"
    recruit = "recruit"


SOURCE = typer.Option(
    Source.shift, help="stored city or a file: live (fresh positions now) or shift (synthetic workforce)"
)
CITY_CRS = typer.Option(Crs.wgs84, help="datum of a GeoJSON --city file")


@sim.command("coverage")
def coverage_command(
    city: str = CITY,
    crs: Crs = CITY_CRS,
    res: int = typer.Option(9, min=5, max=11, help="H3 resolution of the grid"),
    reach: float = typer.Option(300.0, help="seconds that count as in time"),
    at: datetime = AT,
    source: Source = SOURCE,
    seed: int = typer.Option(0),
    workforce: int = typer.Option(8000, help="synthetic workers (demo city or source=shift)"),
    aeds: int = typer.Option(23000, help="synthetic AEDs (demo city)"),
    out: Path = typer.Option(Path("coverage-out"), help="folder for summary.json, cells.geojson, maps"),
) -> None:
    """Coverage study: per H3 cell, the fastest responder and AED-at-patient ETAs; shares per district
    and per street."""
    from simulator.coverage import cells_geojson, summarise
    from simulator.render import coverage_png

    when = at or datetime.now(UTC)  # a time without offset is the city's local time
    study = _gather(city, crs, source.value, when, seed, workforce, aeds)
    result = _run(study, res, reach)
    summary = {**summarise(result, study.city), "inputs": {**study.inputs, "at": when.isoformat()}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False))
    (out / "cells.geojson").write_text(json.dumps(cells_geojson(result, study.city)))
    for field in ("responder", "aed"):
        (out / f"coverage_{field}.png").write_bytes(coverage_png(study.city, result, field=f"{field}_eta_s"))
    _print_summary(summary)
    console.print(f"written to {out}/: summary.json, cells.geojson, coverage_responder.png, coverage_aed.png")


@sim.command("placement")
def placement_command(
    kind: Kind = typer.Option(Kind.aed, help="what to add"),
    k: int = typer.Option(10, min=1, help="how many to place"),
    category: ResponderCategory | None = typer.Option(None, help="recruits' category (sets the travel mode)"),
    city: str = CITY,
    crs: Crs = CITY_CRS,
    source: Source = SOURCE,
    res: int = typer.Option(9, min=5, max=10),
    reach: float = typer.Option(300.0),
    at: datetime = AT,
    seed: int = typer.Option(0),
    workforce: int = typer.Option(8000),
    aeds: int = typer.Option(23000),
    out: Path = typer.Option(Path("placement-out")),
) -> None:
    """Greedy sites for K new AEDs or recruits: a list, the marginal-gain curve and a map."""
    from core.config import get_settings
    from simulator.placement import place_aeds, place_recruits
    from simulator.render import coverage_png, curve_png
    from simulator.service import recruit_mode

    when = at or datetime.now(UTC)
    study = _gather(city, crs, source.value, when, seed, workforce, aeds)
    result = _run(study, res, reach)
    model = ReachModel.from_settings(get_settings())
    if kind == "aed":
        plan, field = place_aeds(result, study.snapshot, model, k), "aed_eta_s"
    else:
        plan, field = (
            place_recruits(result, recruit_mode(category and category.value), model, k),
            "responder_eta_s",
        )
    out.mkdir(parents=True, exist_ok=True)
    sites = [asdict(s) for s in plan.sites]
    body = {"kind": kind.value, "baseline_share": plan.baseline_share, "curve": plan.curve, "sites": sites}
    (out / "placement.json").write_text(json.dumps(body, indent=2))
    (out / "placement_map.png").write_bytes(coverage_png(study.city, result, field=field, sites=plan.sites))
    (out / "placement_curve.png").write_bytes(
        curve_png(plan, f"{k} new {'AEDs' if kind == Kind.aed else 'recruits'}")
    )
    table = Table(
        title=f"{len(sites)} proposed {kind.value} sites (baseline {100 * plan.baseline_share:.1f} %)"
    )
    for col in ("#", "lat", "lng", "+ people", "covered after"):
        table.add_column(col, justify="right")
    for i, (s, share) in enumerate(zip(plan.sites, plan.curve, strict=True), start=1):
        table.add_row(
            str(i), f"{s.lat:.5f}", f"{s.lng:.5f}", f"{s.gain_population:,}", f"{100 * share:.2f} %"
        )
    Console().print(table)
    console.print(f"written to {out}/: placement.json, placement_map.png, placement_curve.png")


@sim.command("live")
def live_command(
    url: str = typer.Option("http://127.0.0.1:8000", help="the running service"),
    seed: int = typer.Option(0, help="the seed the demo was loaded with"),
    responders: int = typer.Option(8000),
    aeds: int = typer.Option(23000),
    wait: float = typer.Option(60.0, help="seconds to wait for the service to come up"),
) -> None:
    """Keep the demo city alive: the shift on duty, moving, phones reporting every 10-15 s."""
    import logging
    import time
    from zoneinfo import ZoneInfo

    import httpx

    from core.auth import Role, issue_token
    from simulator.demo import build_demo, registry_ids
    from simulator.live import stream_crowd

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    demo = build_demo(seed, responders, aeds)

    async def prepare(session: Any, _store: Any, settings: Any) -> tuple[dict[str, str], str, str]:
        ids = await registry_ids(session, demo)
        _, token = await issue_token(session, Role.admin, "demo: live movement")
        await session.commit()
        return ids, token, settings.timezone

    ids, token, tz = asyncio.run(_with_stores(prepare))
    if not ids:
        console.print("[red]the demo is not loaded: run `dispatch sim load-demo` first[/red]")
        raise typer.Exit(code=2)
    deadline = time.time() + wait
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            console.print(f"[red]{url} did not answer /health within {wait:.0f} s[/red]")
            raise typer.Exit(code=2)
        time.sleep(0.5)

    async def run() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client:
            await stream_crowd(client, demo.city, demo.responders, ids, tz=ZoneInfo(tz), seed=seed)

    console.print(f"demo alive: {len(ids)} workers known, streaming to {url} (Ctrl-C stops)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


sim.command("policies")(policies)
