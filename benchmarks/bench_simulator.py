"""Whole-city coverage: the demo city (8,000 workers, 23,000 AEDs) at H3 resolutions 9 and 10.

Each resolution runs in a fresh subprocess so its peak memory (max RSS) is its own. The baseline is
the obvious alternative: ask dispatch's matching path for every cell — responders and AEDs within the
reach by a numpy brute-force scan, then `people_in_reach` and the dispatcher's verdict (`coverage_of`)
— timed on a sample of cells and scaled to the grid; the same sample checks both give the same ETAs.

Then the peak memory of the largest studies the service allows (res 10, reach 900 s, on the demo
city): what a study job's process runs (`simulator.studies.run`, blocks of bounded pairs), each in
a fresh process, beside the unchunked computation (every pair at once, as the studies were before
issue #16), which runs under an address-space cap so it cannot take the machine down.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np

from benchmarks.common import median, table

SEED, WORKFORCE, AEDS, REACH = 0, 8000, 23000, 300.0
SAMPLE = 300
ROUNDS = 3


def _child(res: int) -> dict[str, float]:
    """Run in a subprocess: time the study (median of rounds) and the baseline on a sample."""
    import resource
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from aed_registry.availability import HoursPolicy
    from core.config import Settings
    from dispatch.matching import AedSite, Candidate, coverage_of, people_in_reach
    from geo.distance import haversine_m_np
    from geo.reach import ReachModel
    from simulator.coverage import Snapshot, city_grid, study
    from simulator.population import on_shift, synth_aeds, synth_responders
    from simulator.shenzhen import demo_city

    model = ReachModel()
    at = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    t0 = time.perf_counter()
    city = demo_city()
    people = on_shift(synth_responders(city, WORKFORCE, SEED), at.hour)
    hours = HoursPolicy.from_settings(Settings())
    aeds = [a for a in synth_aeds(city, AEDS, SEED) if hours.offered(a.opening_hours, at)]
    setup_s = time.perf_counter() - t0
    snapshot = Snapshot.of(people, aeds)
    runs, result = [], None
    for _ in range(ROUNDS):
        t0 = time.perf_counter()
        result = study(city_grid(city, res), snapshot, model, REACH)
        runs.append(time.perf_counter() - t0)
    assert result is not None

    rng = np.random.default_rng(1)
    sample = rng.choice(len(result.grid), size=min(SAMPLE, len(result.grid)), replace=False)
    r_lat, r_lng = snapshot.resp_lat, snapshot.resp_lng
    a_lat, a_lng = snapshot.aed_lat, snapshot.aed_lng
    radius = model.max_distance_for(REACH)
    differ = 0
    t0 = time.perf_counter()
    for k in sample:
        lat, lng = result.grid.lat[k], result.grid.lng[k]
        d = haversine_m_np(lat, lng, r_lat, r_lng)
        near = np.flatnonzero(d <= radius)
        candidates = [Candidate(str(i), r_lat[i], r_lng[i], people[i].mode, d[i]) for i in near]
        near_aeds = np.flatnonzero(haversine_m_np(lat, lng, a_lat, a_lng) <= radius)
        sites = [AedSite(str(i), a_lat[i], a_lng[i]) for i in near_aeds]
        verdict = coverage_of(people_in_reach(lat, lng, candidates, sites, model, REACH, {}, prior=0.35))
        for got, want in (
            (verdict.fastest_eta_s, result.responder_eta_s[k]),
            (verdict.aed_eta_s, result.aed_eta_s[k]),
        ):
            if (got is None) != bool(np.isnan(want)) or (got is not None and abs(got - want) > 0.051):
                differ += 1
    per_cell = (time.perf_counter() - t0) / len(sample)
    return {
        "res": res,
        "cells": len(result.grid),
        "median_s": median(runs),
        "setup_s": setup_s,
        "baseline_s": per_cell * len(result.grid),
        "differ": differ,
        "sample": len(sample),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "responders": len(people),
        "aeds": len(aeds),
    }


UNCHUNKED_CAP_MB = 6144
HEAVY_REACH = 900.0
# Measured once at commit beb3281 (before #16) with the same inputs: too heavy to rerun every time.
BEFORE_16 = (
    "its res-10 AED placement peaked at 4.3 GB in the coverage pass, then ran out of a 10 GB "
    "address-space cap (MemoryError) building the site × cell pairs"
)


def _study_child(what: str, kind: str, res: int, unchunked: bool) -> dict[str, float | str]:
    """In a subprocess: one study as a job runs it, end to end (JSON body); its time and max RSS."""
    import resource
    from datetime import datetime
    from zoneinfo import ZoneInfo

    import simulator.nearest as nearest
    import simulator.placement as placement
    from aed_registry.availability import HoursPolicy
    from core.config import Settings
    from geo.reach import ReachModel
    from simulator import studies
    from simulator.coverage import Snapshot
    from simulator.population import on_shift, synth_aeds, synth_responders
    from simulator.schemas import Inputs
    from simulator.shenzhen import demo_city

    if unchunked:  # every pair in one block: what the studies did before
        cap = UNCHUNKED_CAP_MB * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        nearest.PAIR_BUDGET = placement.PAIR_BUDGET = 10**15
    at = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    city = demo_city()
    people = on_shift(synth_responders(city, WORKFORCE, SEED), at.hour)
    hours = HoursPolicy.from_settings(Settings())
    aeds = [a for a in synth_aeds(city, AEDS, SEED) if hours.offered(a.opening_hours, at)]
    snapshot = Snapshot.of(people, aeds)
    spec = studies.StudySpec(
        what, city, snapshot, ReachModel(), res, HEAVY_REACH,  # type: ignore[arg-type]
        Inputs(at=at, source="shift", responders=len(people), aeds=len(aeds)),
        kind=kind, k=10, mode="ebike" if kind == "recruit" else None,  # type: ignore[arg-type]
    )  # fmt: skip
    t0 = time.perf_counter()
    try:
        _, body = studies.run(spec)
        outcome = f"{len(body) / 2**20:.0f} MB JSON"
    except MemoryError:
        outcome = f"MemoryError at the {UNCHUNKED_CAP_MB // 1024} GB cap"
    return {
        "seconds": time.perf_counter() - t0,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "outcome": outcome,
        "cells": studies.estimate_cells(city, res),
    }


def _in_subprocess(call: str) -> dict:
    code = f"import json, benchmarks.bench_simulator as b; print(json.dumps(b.{call}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def largest_studies() -> str:
    """Peak memory of the largest allowed studies, blocked as jobs run them and all pairs at once."""
    cases = [
        ("placement", "aed", 10, "AED placement, k 10"),
        ("placement", "recruit", 10, "e-bike recruit placement, k 10"),
        ("coverage", "aed", 10, "coverage, every cell's GeoJSON"),
        ("placement", "aed", 9, "AED placement, k 10"),
    ]
    rows = []
    for what, kind, res, label in cases:
        got = _in_subprocess(f"_study_child({what!r}, {kind!r}, {res}, False)")
        row = [label, res, f"{got['cells']:,}", f"{got['peak_mb']:.0f}", round(got["seconds"], 1)]
        if what == "placement" and kind == "aed":
            old = _in_subprocess(f"_study_child({what!r}, {kind!r}, {res}, True)")
            capped = old["outcome"].startswith("MemoryError")
            ratio = old["peak_mb"] / got["peak_mb"]
            row += [
                f"{'≥ ' if capped else ''}{old['peak_mb']:.0f}" + (" (cap)" if capped else ""),
                round(old["seconds"], 1),
                f"{'≥ ' if capped else ''}{ratio:.0f}x",
            ]
        else:
            row += ["", "", ""]
        rows.append(row)
    intro = (
        f"The largest studies the service allows on the demo city (res 10 is ~136,000 cells, under "
        f"the default `DISPATCH_STUDY_MAX_CELLS` of 250,000), reach {HEAVY_REACH:.0f} s, source shift "
        f"at 10:00. Each runs what a study job's process runs (`simulator.studies.run`, ending in the "
        "JSON body) in a fresh process; 'peak MB' is its max RSS, libraries included (~100 MB). "
        "'unchunked' is the same code with the block budget set to infinity: every (cell, source) "
        "pair at once, as the coverage pass ran before issue #16 in the API worker's thread. (The "
        "placement before #16 also paired every site with every cell, not only those not yet "
        f"covered, so it went further: {BEFORE_16}.) It runs under an address-space cap of "
        f"{UNCHUNKED_CAP_MB // 1024} GB; '(cap)' means it hit the cap, so its true peak and the "
        "ratio are higher still."
    )
    headers = ["study", "res", "cells", "peak MB", "s", "unchunked peak MB", "unchunked s", "ratio"]
    title = "### Peak memory of the largest allowed studies (as jobs run them)"
    return f"{title}\n\n{intro}\n\n{table(headers, rows)}"


def run() -> str:
    rows = []
    for res in (9, 10):
        code = f"import json, benchmarks.bench_simulator as b; print(json.dumps(b._child({res})))"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        goal = 10 if res == 9 else 60
        rows.append(
            [
                r["res"], f"{r['cells']:,}", round(r["median_s"], 2), goal, round(r["baseline_s"], 1),
                round(r["baseline_s"] / r["median_s"]), f"{r['peak_mb']:.0f}",
                f"{r['differ']} of {2 * r['sample']}",
            ]
        )  # fmt: skip
    intro = (
        f"The generated demo city (about 2,000 km², seed {SEED}): {WORKFORCE:,} workers of whom "
        f"{r['responders']:,} are on the day shift, {AEDS:,} AEDs of which {r['aeds']:,} are open "
        f"on a weekday at 10:00; reach {REACH:.0f} s. 'study s' is the median of {ROUNDS} full runs "
        "(grid + both ETAs for every cell), in a fresh process per resolution so 'peak MB' (max RSS, "
        "including Python and the libraries) is that run's. The baseline asks dispatch's own path for "
        "each cell (numpy brute-force scan for responders and AEDs within reach, then `assign_roles`' "
        f"verdict), timed on {SAMPLE} random cells and scaled to the grid; 'differ' counts ETAs on that "
        "sample where the two disagree (by more than the verdict's 0.1 s rounding)."
    )
    headers = [
        "res",
        "cells",
        "study s",
        "goal s",
        "baseline s (scaled)",
        "baseline/study",
        "peak MB",
        "differ",
    ]
    coverage = f"## Simulator: whole-city coverage study\n\n{intro}\n\n{table(headers, rows)}"
    return f"{coverage}\n\n{largest_studies()}"
