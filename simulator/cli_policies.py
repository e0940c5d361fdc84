"""`dispatch sim policies`: the dispatch-policy comparison on the demo city, written to a folder.

Registered on the `dispatch sim` typer app by simulator/cli.py. Offline: the demo city and its
people are generated from the seed, nothing is read from or written to the service's stores.
"""

from __future__ import annotations

import time
from dataclasses import fields
from datetime import date, datetime
from pathlib import Path
from typing import Any

import typer

from core.config import Settings
from simulator.answers import AnswerModel
from simulator.incidents import DEFAULT_WEEK

HISTORY_WEEKS, ALERTS_PER_WEEK = 12, 1.0


def vars_of(point: Any) -> dict[str, Any]:
    """A slotted dataclass as a plain dict (for JSON)."""
    return {f.name: getattr(point, f.name) for f in fields(point)}


def _parameters(settings: Settings, *, seed: int, responders: int, aeds: int, incidents: int,
                acceptance: float, week: date, seconds: float) -> dict[str, str]:  # fmt: skip
    """The page's parameter table: everything a reader needs to reproduce or question the figures."""
    s, m = settings, AnswerModel()
    return {
        "city": f"generated demo city (seed {seed}), {responders:,} workers, {aeds:,} AEDs",
        "incidents": f"{incidents:,}, week of {week.isoformat()} ({s.timezone})",
        "seed": str(seed),
        "acceptance (simulated)": (
            f"each worker's propensity ~ Beta(mean {acceptance:g}, α+β = {m.concentration:g}),"
            f" × {m.night_factor:g} on the night shift"
        ),
        "answers (simulated)": (
            f"of those who do not accept, {100 * m.silent_share:g} % never answer, the rest decline;"
            f" delay lognormal, median {m.delay_median_s:g} s, log-sd {m.delay_sigma:g}"
            f" ({100 * m.share_slower_than(s.answer_timeout_s):.0f} % slower than {s.answer_timeout_s:g} s)"
        ),
        "ours: what it knows of acceptance": (
            f"learned from {HISTORY_WEEKS} earlier weeks (≈ {ALERTS_PER_WEEK:g} alert per worker-week):"
            f" Beta-Binomial, prior {s.acceptance_probability:g} worth {s.acceptance_prior_strength:g}"
            " answers, person ← team (district) ← category, per day/night band"
        ),
        "ours: rules (settings)": (
            f"{s.target_cpr} cpr + {s.target_aed} AED at success level {s.success_level:g};"
            f" ≤ {s.alert_cap} alerts; answer timeout {s.answer_timeout_s:g} s (late weight"
            f" {s.late_answer_weight:g}); cpr weight {s.cpr_weight:g}; ambulance AED at {s.ems_defib_s:g} s"
        ),
        "ours: reach and escalation": (
            f"{s.reach_s:g} s; when the pool runs dry, +{s.escalation_step_s:g} s every "
            f"{s.escalation_interval_s:g} s up to {s.reach_max_s:g} s"
        ),
        "reach model": (
            f"activation {s.activation_s:g} s (after the accept), circuity {s.circuity:g}, walk "
            f"{s.speed_walk_mps:g} m/s, e-bike {s.speed_ebike_mps:g} m/s, AED pick-up {s.aed_pickup_s:g} s"
        ),
        "run time": f"{seconds:.1f} s",
    }


POLICY_NOTES = [
    "- **A** alerts every on-shift worker within 400 m (straight line); all go straight to the patient.",
    "- **B** (Heartrunner-style) alerts the 30 nearest within 1.3 km at once; a third of them (rounded",
    "  down) are told to fetch an AED when the alerts go out: the pair (worker, open AED within 1.3 km)",
    "  that brings an AED soonest first, then the best of the rest, a different AED each while there",
    "  are enough.",
    "- **HartslagNu-style** alerts up to 30 nearest within 1 km and aims at two thirds via an AED, but",
    "  only a worker within 500 m of an AED whose route via it is at most 5 % longer than going direct",
    "  is sent for it (the nearest such workers first, each to the AED that brings it soonest); the",
    "  rest go direct. Roles fixed when the alerts go out.",
    "- **Hjerteløber-style** alerts the 20 nearest within 1.3 km; the first 4 who accept are each sent",
    "  for the AED that brings it soonest via them (a different one each while there are), the 5th and",
    "  later go straight to the patient.",
    "- **ours** is `dispatch.policy.circle` as the service runs it (`CircleRules.from_settings`):",
    "  `top_up` alerts until the chance that at least the targets accept reaches the success level",
    "  (AED-capable people first, soonest AED first), again after every decline and every alert",
    "  unanswered at the timeout; `choose_role` gives each acceptor the role (direct, or via a free",
    "  AED) with the least expected time to defibrillation + cpr weight × time to CPR; `stand_down`",
    "  cancels the pending alerts once the targets have accepted, except anyone who could still bring",
    "  an AED sooner than the one on its way (until an answer shows they no longer could). The reach",
    "  widens, one step per escalation interval, only when nobody at the current reach is worth",
    "  alerting and someone farther is — also when no AED can be brought from within the reach.",
    "  AEDs count for a person only when they could bring them within the reach: at 5 minutes this",
    "  is what costs ours at 8 minutes against B, whose runners take any AED within 1.3 km at once.",
    "- The Pareto chart varies each policy's knob: A's radius, B's and HartslagNu's cap,",
    "  Hjerteløber's count, ours' success level.",
]


def policies(
    incidents: int = typer.Option(5000, min=1, help="simulated incidents"),
    seed: int = typer.Option(0, help="city, people, incidents and answers all follow it"),
    acceptance: float = typer.Option(
        0.35, min=0.01, max=0.99, help="mean propensity of a worker to accept an alert (day shift)"
    ),
    responders: int = typer.Option(8000, min=0, help="synthetic frontline workers"),
    aeds: int = typer.Option(23000, min=0, help="synthetic public AEDs"),
    week: datetime = typer.Option(
        datetime.combine(DEFAULT_WEEK, datetime.min.time()),
        formats=["%Y-%m-%d"],
        help="first day of the week",
    ),
    pareto: bool = typer.Option(True, help="also run every policy at each value of its knob"),
    out: Path = typer.Option(Path("docs"), help="folder for POLICIES.md, policies.json and the charts"),
) -> None:
    """Compare dispatch policies (A, B Heartrunner-style, HartslagNu-style, Hjerteløber-style, ours)."""
    from rich.table import Table

    from core.config import get_settings
    from geo.reach import ReachModel
    from simulator.cli import _progress, console
    from simulator.demo import build_demo
    from simulator.policy_report import (
        FIGURE_HEADER,
        ParetoPoint,
        chart_png,
        markdown,
        pareto_png,
        policies_json,
        row_cells,
    )
    from simulator.policy_run import (
        WHOLE_CITY,
        ceilings,
        knob_variants,
        run_study,
        standard_policies,
        street_names,
        summarise,
    )

    settings = get_settings()
    started = time.perf_counter()
    demo = build_demo(seed, responders, aeds)
    standard = standard_policies(settings, ReachModel.from_settings(settings))
    knobs = knob_variants(standard) if pareto else []
    with _progress() as progress:
        task = progress.add_task("policies", total=incidents)
        comparison = run_study(
            demo.city, demo.responders, demo.aeds, incidents=incidents, seed=seed, acceptance=acceptance,
            settings=settings, week_start=week.date(), policies=[k.policy for k in knobs] or standard,
            history_weeks=HISTORY_WEEKS, alerts_per_week=ALERTS_PER_WEEK,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )  # fmt: skip
    rows = summarise(comparison, demo.city.names, [p.key for p in standard], street_names(demo.city))
    limits = ceilings(comparison, demo.city.names)
    everywhere = summarise(comparison, [])
    by_key = {r.policy: r for r in everywhere}
    points = [
        ParetoPoint(k.family, k.name, k.value, by_key[k.policy.key].mean_alerts or 0.0,
                    by_key[k.policy.key].aed_5min or 0.0)
        for k in knobs
    ]  # fmt: skip
    seconds = time.perf_counter() - started
    command = (
        f"dispatch sim policies --incidents {incidents} --seed {seed} --acceptance {acceptance:g} "
        f"--responders {responders} --aeds {aeds} --week {week.date().isoformat()}"
        f"{'' if pareto else ' --no-pareto'} --out {out}"
    )
    params = _parameters(
        settings, seed=seed, responders=responders, aeds=aeds, incidents=incidents, acceptance=acceptance,
        week=week.date(), seconds=seconds,
    )  # fmt: skip
    charts = {"policies by district": "policies.png"}
    if points:
        charts["Pareto: AED ≤ 5 min against alerts"] = "policies_pareto.png"
    out.mkdir(parents=True, exist_ok=True)
    (out / "POLICIES.md").write_text(markdown(rows, params, command, charts, limits, POLICY_NOTES))
    (out / "policies.png").write_bytes(chart_png(rows))
    if points:
        labels = {p.key: p.label for p in standard}
        (out / "policies_pareto.png").write_bytes(pareto_png(points, labels, limits[WHOLE_CITY]))
    machine = {
        **params,
        "command": command, "seed": seed, "acceptance": acceptance, "incidents": incidents,
        "responders": responders, "aeds": aeds, "week": week.date().isoformat(),
        "ceiling_aed_5min": {k: c.reachable for k, c in limits.items()},
        "ceiling_aed_5min_by_acceptor": {k: c.answered for k, c in limits.items()},
        "pareto": [vars_of(p) for p in points],
    }  # fmt: skip
    (out / "policies.json").write_text(policies_json(rows, machine) + "\n")
    table = Table(title=f"{incidents:,} incidents, acceptance {acceptance:g}, seed {seed}")
    for col in ["policy", *FIGURE_HEADER.split(" | ")]:
        table.add_column(col, justify="left" if col == "policy" else "right")
    for row in rows:
        if row.district == WHOLE_CITY:
            table.add_row(row.policy, *row_cells(row))
    console.print(table)
    city = limits[WHOLE_CITY]
    console.print(
        f"ceiling: AED reachable ≤ 5 min in {100 * (city.reachable or 0):.1f} %, by someone who would "
        f"accept in {100 * (city.answered or 0):.1f} %"
    )
    console.print(f"written to {out}/: POLICIES.md, policies.json, charts ({seconds:.1f} s)")
