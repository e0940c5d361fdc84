"""`dispatch sim policies`: the dispatch-policy comparison on the demo city, written to a folder.

Registered on the `dispatch sim` typer app by simulator/cli.py. Offline: the demo city and its
people are generated from the seed, nothing is read from or written to the service's stores.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from pathlib import Path

import typer

from core.config import Settings
from simulator.incidents import DEFAULT_WEEK


def _parameters(settings: Settings, *, seed: int, responders: int, aeds: int, incidents: int,
                acceptance: float, week: date, seconds: float) -> dict[str, str]:  # fmt: skip
    """The page's parameter table: everything a reader needs to reproduce or question the figures."""
    s = settings
    return {
        "city": f"generated demo city (seed {seed}), {responders:,} workers, {aeds:,} AEDs",
        "incidents": f"{incidents:,}, week of {week.isoformat()} ({s.timezone})",
        "seed": str(seed),
        "acceptance (simulated)": f"{acceptance:g}",
        "ours: assumed acceptance, targets, cap": (
            f"{s.acceptance_probability:g}; {s.target_cpr} cpr + "
            f"{s.target_aed} AED (≤ {s.aed_candidates} AEDs); "
            f"≤ {s.alert_cap} alerts"
        ),
        "ours: reach and escalation": (
            f"{s.reach_s:g} s, then +{s.escalation_step_s:g} s every "
            f"{s.escalation_interval_s:g} s up to {s.reach_max_s:g} s "
            "while fewer than the targets have accepted"
        ),
        "reach model": (
            f"activation {s.activation_s:g} s, circuity {s.circuity:g}, walk "
            f"{s.speed_walk_mps:g} m/s, e-bike {s.speed_ebike_mps:g} m/s, "
            f"AED pick-up {s.aed_pickup_s:g} s"
        ),
        "run time": f"{seconds:.1f} s",
    }


def _policy_notes(settings: Settings, acceptance: float) -> list[str]:
    """How each policy chooses, in words and with the numbers this run used."""
    from dispatch.matching import MatchPolicy

    match = MatchPolicy.from_settings(settings)
    runners = min(match.alerts_for(match.target_aed), match.aed_candidates)
    return [
        "- **A** alerts every on-shift worker within 400 m (straight line); all go straight to the patient.",
        "- **B** alerts the 30 nearest within 1.3 km; a third of them (rounded down) fetch an AED: the",
        "  pair (worker, open AED within 1.3 km) that brings an AED soonest first, then the best of the",
        "  rest, a different AED each while there are enough. No time limit: a far AED still counts",
        "  at 8 min.",
        f"- **ours** is `dispatch.matching.assign_roles` at the service's reach ({settings.reach_s:g} s):",
        f"  up to {runners} AED runners (expected acceptances ≥ {match.target_aed} at the assumed "
        f"{match.acceptance_probability:g}, at most {match.aed_candidates} AEDs), only for AEDs that reach",
        f"  the patient within the reach, and up to {match.alerts_for(match.target_cpr)} CPR runners; with "
        f"escalation, every {settings.escalation_interval_s:g} s",
        f"  while fewer than {match.target_cpr + match.target_aed} have accepted, the next batch at a reach "
        f"{settings.escalation_step_s:g} s wider (up to {settings.reach_max_s:g} s),",
        f"  never more than {match.alert_cap} alerts. With the simulated acceptance {acceptance:g}, "
        f"when {runners} AED runners are sent,",
        f"  all of them decline {100 * (1 - acceptance) ** runners:.0f} % of the time.",
    ]


def policies(
    incidents: int = typer.Option(2000, min=1, help="simulated incidents"),
    seed: int = typer.Option(0, help="city, people, incidents and answers all follow it"),
    acceptance: float = typer.Option(0.35, min=0.0, max=1.0, help="probability an alerted worker accepts"),
    responders: int = typer.Option(8000, min=0, help="synthetic frontline workers"),
    aeds: int = typer.Option(23000, min=0, help="synthetic public AEDs"),
    week: datetime = typer.Option(
        datetime.combine(DEFAULT_WEEK, datetime.min.time()),
        formats=["%Y-%m-%d"],
        help="first day of the week",
    ),
    out: Path = typer.Option(Path("docs"), help="folder for POLICIES.md and policies.png"),
) -> None:
    """Compare dispatch policies (everyone ≤ 400 m; 30 nearest ≤ 1.3 km with AED runners; ours)."""
    from rich.table import Table

    from core.config import get_settings
    from simulator.cli import _progress, console
    from simulator.demo import build_demo
    from simulator.policy_report import FIGURE_HEADER, chart_png, markdown, row_cells
    from simulator.policy_run import WHOLE_CITY, run_study, summarise

    settings = get_settings()
    started = time.perf_counter()
    demo = build_demo(seed, responders, aeds)
    with _progress() as progress:
        task = progress.add_task("policies", total=incidents)
        comparison = run_study(
            demo.city, demo.responders, demo.aeds, incidents=incidents, seed=seed, acceptance=acceptance,
            settings=settings, week_start=week.date(),
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )  # fmt: skip
    rows = summarise(comparison, demo.city.names)
    seconds = time.perf_counter() - started
    command = (
        f"dispatch sim policies --incidents {incidents} --seed {seed} --acceptance {acceptance:g} "
        f"--responders {responders} --aeds {aeds} --week {week.date().isoformat()} --out {out}"
    )
    params = _parameters(
        settings, seed=seed, responders=responders, aeds=aeds, incidents=incidents, acceptance=acceptance,
        week=week.date(), seconds=seconds,
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    (out / "POLICIES.md").write_text(
        markdown(rows, params, command, "policies.png", _policy_notes(settings, acceptance))
    )
    (out / "policies.png").write_bytes(chart_png(rows))
    table = Table(title=f"{incidents:,} incidents, acceptance {acceptance:g}, seed {seed}")
    for col in ["policy", *FIGURE_HEADER.split(" | ")]:
        table.add_column(col, justify="left" if col == "policy" else "right")
    for row in rows:
        if row.district == WHOLE_CITY:
            table.add_row(row.label, *row_cells(row))
    console.print(table)
    console.print(f"written to {out}/: POLICIES.md, policies.png ({seconds:.1f} s)")
