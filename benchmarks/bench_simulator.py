"""Whole-city coverage: the demo city (8,000 workers, 23,000 AEDs) at H3 resolutions 9 and 10.

Each resolution runs in a fresh subprocess so its peak memory (max RSS) is its own. The baseline is
the obvious alternative: ask dispatch's matching path for every cell — responders and AEDs within the
reach by a numpy brute-force scan, then `assign_roles`' coverage verdict — timed on a sample of
cells and scaled to the grid; the same sample checks both give the same ETAs.
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
    from dispatch.matching import AedSite, Candidate, MatchPolicy, assign_roles
    from geo.distance import haversine_m_np
    from geo.reach import ReachModel
    from simulator.city import demo_city
    from simulator.coverage import Snapshot, city_grid, study
    from simulator.population import on_shift, synth_aeds, synth_responders

    model = ReachModel()
    at = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    t0 = time.perf_counter()
    city = demo_city(SEED)
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
    policy = MatchPolicy()
    differ = 0
    t0 = time.perf_counter()
    for k in sample:
        lat, lng = result.grid.lat[k], result.grid.lng[k]
        d = haversine_m_np(lat, lng, r_lat, r_lng)
        near = np.flatnonzero(d <= radius)
        candidates = [Candidate(str(i), r_lat[i], r_lng[i], people[i].mode, d[i]) for i in near]
        near_aeds = np.flatnonzero(haversine_m_np(lat, lng, a_lat, a_lng) <= radius)
        sites = [AedSite(str(i), a_lat[i], a_lng[i]) for i in near_aeds]
        verdict = assign_roles(lat, lng, candidates, sites, model, REACH, policy).coverage
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
    return f"## Simulator: whole-city coverage study\n\n{intro}\n\n{table(headers, rows)}"
