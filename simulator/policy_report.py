"""The policy comparison as people and programs read it: a Markdown page with the tables (whole city,
per district, per street), a bar chart per district and a Pareto chart (PNG), and `policies.json`.

All are made from the summary rows (`simulator.policy_run.summarise`), so the page, the charts,
the JSON and the terminal table never disagree. Matplotlib runs on the Agg backend: no display, no network.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from simulator.policy_run import WHOLE_CITY, Ceiling, PolicyRow

METRICS: tuple[tuple[str, str], ...] = (
    ("responder_5min", "responder on scene ≤ 5 min"),
    ("aed_5min", "AED at the patient ≤ 5 min"),
    ("aed_8min", "AED at the patient ≤ 8 min"),
    ("median_alerts", "median alerts per incident"),
    ("ran_for_nothing", "people who ran for nothing (mean per incident)"),
)
SHARES = ("responder_5min", "aed_5min", "aed_8min")
COLOURS = ("#8a8f98", "#c9b22a", "#b5562b", "#7a5bb0", "#1a7f37")
JSON_FIELDS = (
    "policy", "district", "street", "incidents", "responder_5min", "aed_5min", "aed_8min", "median_alerts",
    "mean_alerts", "ran_for_nothing",
)  # fmt: skip


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def count(v: float | None) -> str:
    return "—" if v is None else f"{v:g}"


def mean(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def row_cells(row: PolicyRow) -> list[str]:
    """The figures of one row, in the column order of every table on the page."""
    return [
        f"{row.incidents:,}", pct(row.responder_5min), pct(row.aed_5min), pct(row.aed_8min),
        count(row.median_alerts), mean(row.mean_alerts), mean(row.ran_for_nothing),
    ]  # fmt: skip


COLUMNS = (
    "incidents", "responder ≤ 5 min", "AED ≤ 5 min", "AED ≤ 8 min", "median alerts", "mean alerts",
    "ran for nothing",
)  # fmt: skip
FIGURE_HEADER = " | ".join(COLUMNS)
_RULE = "|".join(["", *["---"] * (len(COLUMNS) + 1), ""])


@dataclass(frozen=True, slots=True)
class Goal:
    """The issue's goal on the whole city: ours vs the best other policy (`best_other`, its key) on
    AED ≤ 5 min."""

    best_other: str
    aed_gain_pp: float
    responder_gain_pp: float
    ours_median: float
    b_median: float

    @property
    def met(self) -> bool:
        return self.aed_gain_pp >= 5 and self.responder_gain_pp >= 0 and self.ours_median <= self.b_median

    @property
    def aimed(self) -> bool:
        return self.aed_gain_pp >= 10 and self.ours_median <= self.b_median / 2


def goal(rows: Sequence[PolicyRow]) -> Goal | None:
    city = {r.policy: r for r in rows if r.district == WHOLE_CITY}
    ours, b = city.get("ours"), city.get("B")
    others = [r for k, r in city.items() if k != "ours"]
    if ours is None or b is None or not others:
        return None
    best = max(others, key=lambda r: r.aed_5min or 0.0)
    best_responder = max(r.responder_5min or 0.0 for r in others)
    return Goal(
        best.policy,
        100 * ((ours.aed_5min or 0.0) - (best.aed_5min or 0.0)),
        100 * ((ours.responder_5min or 0.0) - best_responder),
        ours.median_alerts or 0.0,
        b.median_alerts or 0.0,
    )


def _findings(rows: Sequence[PolicyRow], ceiling: Ceiling | None) -> list[str]:
    """How ours compares on the whole city, in percentage points, against each policy and the goal."""
    city = {r.policy: r for r in rows if r.district == WHOLE_CITY}
    ours = city.get("ours")
    if ours is None or ours.incidents == 0:
        return []
    error_pp = 50 / ours.incidents**0.5  # one standard error of a share near 50 %
    out = [
        f"With {ours.incidents:,} incidents a whole-city share is known to about ±{error_pp:.1f} pp (one"
        " standard error); the policies share incidents and answers, so their differences are firmer.",
        "",
    ]
    for key, other in city.items():
        if key == "ours":
            continue

        def pp(field: str, other: PolicyRow = other) -> str:
            return f"{100 * ((getattr(ours, field) or 0) - (getattr(other, field) or 0)):+.1f} pp"

        out.append(
            f"- ours vs {other.label}: responder ≤ 5 min {pp('responder_5min')}, AED ≤ 5 min "
            f"{pp('aed_5min')}, AED ≤ 8 min {pp('aed_8min')}; median alerts {count(ours.median_alerts)} "
            f"instead of {count(other.median_alerts)}; {mean(ours.ran_for_nothing)} ran for nothing "
            f"instead of {mean(other.ran_for_nothing)}."
        )
    if ceiling is not None:
        out += [
            "",
            f"**Ceiling.** In {pct(ceiling.reachable)} of incidents some on-shift worker could bring some"
            " open AED to the patient within 5 minutes at all (answering at once). In"
            f" {pct(ceiling.answered)} one of the workers who *would accept* this alert could, their"
            " answer delay included: that bound reads everyone's simulated answers, which no policy can,"
            " so no policy can beat it on AED ≤ 5 min.",
        ]
    g = goal(rows)
    if g is not None:
        verdict = "met" if g.met else "not met"
        out += [
            "",
            f"**Goal** (ours ≥ +5 pp over the best other policy on AED ≤ 5 min, not worse on responder"
            f" ≤ 5 min, median alerts ≤ B's): **{verdict}** — AED ≤ 5 min {g.aed_gain_pp:+.1f} pp over"
            f" {g.best_other}, responder ≤ 5 min {g.responder_gain_pp:+.1f} pp over the best other,"
            f" median alerts {g.ours_median:g} vs B's {g.b_median:g}."
            + ("" if g.aimed else " The aim (+10 pp with half B's alerts) is not reached."),
        ]
        best = city.get(g.best_other)
        if ceiling is not None and ceiling.answered is not None and best is not None:
            room = 100 * (ceiling.answered - (best.aed_5min or 0.0))
            left = 100 * (ceiling.answered - (ours.aed_5min or 0.0))
            out += [
                "",
                f"No policy can gain more than {room:+.1f} pp over {best.policy} on AED ≤ 5 min here: that is"
                f" how far {best.policy} is below the ceiling by acceptors; ours is {left:.1f} pp below it.",
            ]
    return out


def markdown(
    rows: Sequence[PolicyRow],
    params: Mapping[str, str],
    command: str,
    charts: Mapping[str, str],
    ceilings: Mapping[str, Ceiling],
    notes: Sequence[str] = (),
) -> str:
    """The whole page: what was compared, with which parameters and rules, the tables, the charts."""
    lines = [
        "# Dispatch policies compared",
        "",
        "The same simulated cardiac arrests (placed where people live, at random times over one week),",
        "the same on-shift workers and open AEDs, the same travel model and the same answers. Every",
        "worker has their own propensity to accept (Beta-distributed around the study's acceptance,",
        "lower at night); an alerted worker accepts, declines or never answers, after a delay, decided",
        "by hashed draws of (seed, incident, worker) that every policy shares: the comparison is",
        "paired. Each incident is played in time (`simulator.events`): answers arrive after their",
        "delays, an acceptor reaches the patient (with the AED, for a runner) at answer time + ETA",
        "(`geo.reach.ReachModel`, its activation counted after the accept), replacements and",
        "stand-downs happen when the policy decides them. Every alert counts, stood down or not. Ours",
        "(`dispatch.policy.circle`, the service's own policy core) dispatches on acceptance",
        "estimates learned from simulated earlier weeks, never on the true propensities.",
        "",
        "*Ran for nothing*: accepted people who were neither among the first target (cpr + AED) to",
        "arrive nor the first to bring an AED.",
        "",
        "Made with:",
        "",
        f"    {command}",
        "",
        "| parameter | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in params.items()],
        "",
        *(["## How the policies work", "", *notes, ""] if notes else []),
        "## Whole city",
        "",
        f"| policy | {FIGURE_HEADER} |",
        _RULE,
        *[f"| {r.label} | {' | '.join(row_cells(r))} |" for r in rows if r.district == WHOLE_CITY],
        "",
        *_findings(rows, ceilings.get(WHOLE_CITY)),
        "",
        *[f"![{title}]({path})" for title, path in charts.items()],
        "",
        "## Per district",
        "",
        "| district | AED reachable ≤ 5 min at all | … by someone who would accept |",
        "|---|---|---|",
        *[f"| {name} | {pct(c.reachable)} | {pct(c.answered)} |" for name, c in ceilings.items()],
        "",
        f"| district | policy | {FIGURE_HEADER} |",
        _RULE + "---|",
        *[
            f"| {r.district} | {r.label} | {' | '.join(row_cells(r))} |"
            for r in rows
            if r.district != WHOLE_CITY and r.street is None
        ],
        "",
        *_per_street(rows),
    ]
    return "\n".join(lines)


def _per_street(rows: Sequence[PolicyRow]) -> list[str]:
    """The street table (none for a city loaded without streets): a street office reads its own line."""
    streets = [r for r in rows if r.street is not None]
    if not streets:
        return []
    return [
        "## Per street",
        "",
        f"| district | street | policy | {FIGURE_HEADER} |",
        _RULE + "---|---|",
        *[f"| {r.district} | {r.street} | {r.label} | {' | '.join(row_cells(r))} |" for r in streets],
        "",
    ]


def policies_json(rows: Sequence[PolicyRow], parameters: Mapping[str, Any]) -> str:
    """The machine-readable report: {"parameters": …, "rows": [one object per policy and area]}."""
    return json.dumps(
        {
            "parameters": dict(parameters),
            "rows": [{f: getattr(r, f) for f in JSON_FIELDS} for r in rows],
        },
        ensure_ascii=False,
        indent=1,
    )


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def chart_png(rows: Sequence[PolicyRow], *, dpi: int = 110) -> bytes:
    """Grouped bars, one panel per figure: the whole city and each district, one bar per policy (74
    streets would not read as bars: they are in the page's table)."""
    rows = [r for r in rows if r.street is None]
    areas = list(dict.fromkeys(r.district for r in rows))
    policies = list(dict.fromkeys(r.policy for r in rows))
    labels = {r.policy: r.label for r in rows}
    by = {(r.district, r.policy): r for r in rows}
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(13, 3.0 * len(METRICS)), dpi=dpi, sharex=True)
    x = np.arange(len(areas))
    width = 0.8 / max(len(policies), 1)
    for ax, (field, title) in zip(axes, METRICS, strict=True):
        share = field in SHARES
        for k, policy in enumerate(policies):
            values = [getattr(by[(a, policy)], field) for a in areas]
            heights = [np.nan if v is None else (100 * v if share else v) for v in values]
            ax.bar(x + (k - (len(policies) - 1) / 2) * width, heights, width, label=labels[policy],
                   color=COLOURS[k % len(COLOURS)])  # fmt: skip
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel("% of incidents" if share else "people")
        if share:
            ax.set_ylim(0, 100)
        ax.grid(axis="y", linewidth=0.4, alpha=0.6)
        ax.set_axisbelow(True)
    axes[0].legend(fontsize=8, ncol=2, loc="upper right")
    axes[-1].set_xticks(x, areas, rotation=20, ha="right")
    fig.tight_layout()
    return _png(fig)


@dataclass(frozen=True, slots=True)
class ParetoPoint:
    """One policy at one knob value, whole city."""

    family: str
    knob: str
    value: float
    mean_alerts: float
    aed_5min: float


def pareto_png(points: Sequence[ParetoPoint], labels: Mapping[str, str], ceiling: Ceiling | None,
               *, dpi: int = 110) -> bytes:  # fmt: skip
    """AED ≤ 5 min against mean alerts per incident, one line per policy as its knob varies."""
    fig, ax = plt.subplots(figsize=(10, 7), dpi=dpi)
    families = list(dict.fromkeys(p.family for p in points))
    for k, family in enumerate(families):
        mine = sorted((p for p in points if p.family == family), key=lambda p: p.mean_alerts)
        colour = COLOURS[k % len(COLOURS)]
        ax.plot([p.mean_alerts for p in mine], [100 * p.aed_5min for p in mine], "o-", color=colour,
                label=f"{labels.get(family, family)} (knob: {mine[0].knob})")  # fmt: skip
        for p in mine:
            ax.annotate(f"{p.value:g}", (p.mean_alerts, 100 * p.aed_5min), fontsize=7,
                        xytext=(3, 3), textcoords="offset points", color=colour)  # fmt: skip
    if ceiling is not None:
        for value, text in (
            (ceiling.reachable, "AED reachable at all"),
            (ceiling.answered, "… by an acceptor"),
        ):
            if value is not None:
                ax.axhline(100 * value, linestyle="--", linewidth=0.8, color="#555")
                ax.annotate(f"ceiling: {text}", (0, 100 * value), fontsize=8, xytext=(4, 3),
                            textcoords="offset points", xycoords=("axes fraction", "data"))  # fmt: skip
    ax.set_xlabel("mean alerts per incident (stood-down alerts included)")
    ax.set_ylabel("AED at the patient ≤ 5 min (% of incidents)")
    ax.set_title("Whole city: what each policy buys with its alerts", fontsize=10, loc="left")
    ax.grid(linewidth=0.4, alpha=0.6)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2)  # below: off the data
    fig.tight_layout()
    return _png(fig)
