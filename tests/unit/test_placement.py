"""What-if placement: greedy gains, checked by re-running the coverage study with the proposed sites."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.coverage import Snapshot, city_grid, study
from simulator.placement import place_aeds, place_recruits
from simulator.population import SimAed, SimResponder
from tests.unit.test_coverage import MODEL, random_people, tiny_city

REACH = 240.0


def covered_share(snapshot: Snapshot, field: str, res: int = 10) -> float:
    result = study(city_grid(tiny_city(), res), snapshot, MODEL, REACH)
    eta = getattr(result, field)
    pop = result.grid.population
    return float(pop[~np.isnan(eta)].sum() / pop.sum())


@pytest.mark.parametrize("seed", [1, 2])
def test_aed_sites_gain_what_the_study_then_shows_and_gains_never_grow(seed: int) -> None:
    responders, aeds = random_people(seed, 10, 2)
    snapshot = Snapshot.of(responders, aeds)
    result = study(city_grid(tiny_city(), 10), snapshot, MODEL, REACH)
    placement = place_aeds(result, snapshot, MODEL, 4)
    assert len(placement.sites) == 4
    gains = [s.gain_population for s in placement.sites]
    assert gains == sorted(gains, reverse=True) and gains[0] > 0
    # Adding the proposed AEDs one by one, the full study reproduces the curve exactly.
    added: list[SimAed] = []
    for site, share in zip(placement.sites, placement.curve, strict=True):
        added.append(SimAed(site.cell, site.lat, site.lng, "24/7"))
        assert covered_share(Snapshot.of(responders, aeds + added), "aed_eta_s") == pytest.approx(
            share, abs=1e-4
        )
    assert placement.baseline_share == pytest.approx(covered_share(snapshot, "aed_eta_s"), abs=1e-4)


def test_the_first_aed_site_is_the_best_single_site_by_brute_force() -> None:
    responders, aeds = random_people(4, 8, 1)
    snapshot = Snapshot.of(responders, aeds)
    grid = city_grid(tiny_city(), 9)
    result = study(grid, snapshot, MODEL, REACH)
    best = max(
        covered_share(
            Snapshot.of(responders, [*aeds, SimAed("x", grid.lat[k], grid.lng[k], "24/7")]), "aed_eta_s", 9
        )
        for k in range(len(grid))
    )
    first = place_aeds(result, snapshot, MODEL, 1)
    assert first.curve[0] == pytest.approx(best, abs=1e-4)


def test_recruits_go_where_nobody_reaches_yet() -> None:
    walker = SimResponder("w", "park_security", 22.54, 114.05 - 0.014, "walk", "day")
    snapshot = Snapshot.of([walker], [])
    result = study(city_grid(tiny_city(), 10), snapshot, MODEL, REACH)
    placement = place_recruits(result, "walk", MODEL, 3)
    gains = [s.gain_population for s in placement.sites]
    assert gains == sorted(gains, reverse=True) and gains[-1] > 0
    recruits = [
        SimResponder(f"n{i}", "park_security", s.lat, s.lng, "walk", "day")
        for i, s in enumerate(placement.sites)
    ]
    share = covered_share(Snapshot.of([walker, *recruits], []), "responder_eta_s")
    assert share == pytest.approx(placement.curve[-1], abs=1e-4)
    first = result.grid.cells.index(placement.sites[0].cell)
    assert np.isnan(result.responder_eta_s[first])  # nobody reached the first site's own cell before


def test_placement_stops_when_nothing_is_left_to_gain() -> None:
    responders, aeds = random_people(1, 40, 0)
    result = study(city_grid(tiny_city(), 9), Snapshot.of(responders, aeds), MODEL, 600.0)
    assert np.isnan(result.responder_eta_s).sum() == 0
    assert place_recruits(result, "walk", MODEL, 5).sites == []


def test_the_placement_command_writes_its_list_curve_and_map_and_refuses_unknown_kinds(tmp_path) -> None:
    import json

    from typer.testing import CliRunner

    from simulator.cli import sim

    runner = CliRunner()
    small = [
        "--city",
        "demo",
        "--res",
        "7",
        "--workforce",
        "300",
        "--aeds",
        "500",
        "--at",
        "2026-11-23T10:00",
    ]
    out = tmp_path / "recruits"
    done = runner.invoke(
        sim,
        [
            "placement",
            "--kind",
            "recruit",
            "--category",
            "park_security",
            "--k",
            "2",
            *small,
            "--out",
            str(out),
        ],
    )
    assert done.exit_code == 0, done.output
    plan = json.loads((out / "placement.json").read_text())
    assert plan["kind"] == "recruit" and len(plan["sites"]) == 2
    assert plan["curve"] == sorted(plan["curve"]) and plan["curve"][0] > plan["baseline_share"]
    for png in ("placement_map.png", "placement_curve.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # anything but aed or recruit used to be taken for a recruit; unknown categories for walkers
    for bad in (["--kind", "hospital"], ["--kind", "recruit", "--category", "astronaut"]):
        refused = runner.invoke(sim, ["placement", *bad, *small, "--out", str(tmp_path / "x")])
        assert refused.exit_code == 2, refused.output
    assert not (tmp_path / "x").exists()
