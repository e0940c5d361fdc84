"""The policy comparison as people read it: a Markdown page with the tables and a bar chart (PNG).

Both are made from the summary rows only (`simulator.policy_run.summarise`), so the page, the chart
and the terminal table never disagree. Matplotlib runs on the Agg backend: no display, no network.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from simulator.policy_run import WHOLE_CITY, PolicyRow

METRICS: tuple[tuple[str, str], ...] = (
    ("responder_5min", "responder on scene ≤ 5 min"),
    ("aed_5min", "AED on scene ≤ 5 min"),
    ("aed_8min", "AED on scene ≤ 8 min"),
    ("median_alerts", "median alerts per incident"),
)
COLOURS = ("#8a8f98", "#c9b22a", "#1a7f37", "#7fc08a", "#3b6ea8")


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f} %"


def count(v: float | None) -> str:
    return "—" if v is None else f"{v:g}"


def row_cells(row: PolicyRow) -> list[str]:
    """The figures of one row, in the column order of every table on the page."""
    return [
        f"{row.incidents:,}", pct(row.responder_5min), pct(row.aed_5min), pct(row.aed_8min),
        count(row.median_alerts),
    ]  # fmt: skip


FIGURE_HEADER = "incidents | responder ≤ 5 min | AED ≤ 5 min | AED ≤ 8 min | median alerts"


def _findings(rows: Sequence[PolicyRow]) -> list[str]:
    """One sentence per baseline: how ours compares on the whole city, in percentage points."""
    city = {r.policy: r for r in rows if r.district == WHOLE_CITY}
    ours = city.get("ours")
    if ours is None or ours.incidents == 0:
        return []
    # one standard error of a share near 50 %: differences much smaller than this are noise
    error_pp = 50 / ours.incidents**0.5
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
            f"instead of {count(other.median_alerts)}."
        )
    return out


def markdown(
    rows: Sequence[PolicyRow], params: Mapping[str, str], command: str, chart: str, notes: Sequence[str] = ()
) -> str:
    """The whole page: what was compared, with which parameters and rules, the tables, and the chart."""
    lines = [
        "# Dispatch policies compared",
        "",
        "The same simulated cardiac arrests (placed where people live, at random times over one week),",
        "the same on-shift workers and open AEDs, the same travel model and the same answers: an alerted",
        "worker accepts with a fixed probability, decided by one draw per (incident, worker) that every",
        "policy shares, so the comparison is paired. A responder is on scene when the first accepted",
        "worker arrives; an AED when the first accepted AED runner arrives with it. Times count from",
        "when the incident is opened; later escalation batches start later.",
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
        "|---|---|---|---|---|---|",
        *[f"| {r.label} | {' | '.join(row_cells(r))} |" for r in rows if r.district == WHOLE_CITY],
        "",
        *_findings(rows),
        "",
        f"![policies by district]({chart})",
        "",
        "## Per district",
        "",
        f"| district | policy | {FIGURE_HEADER} |",
        "|---|---|---|---|---|---|---|",
        *[
            f"| {r.district} | {r.label} | {' | '.join(row_cells(r))} |"
            for r in rows
            if r.district != WHOLE_CITY
        ],
        "",
    ]
    return "\n".join(lines)


def chart_png(rows: Sequence[PolicyRow], *, dpi: int = 110) -> bytes:
    """Grouped bars, one panel per figure: the whole city and each district, one bar per policy."""
    areas = list(dict.fromkeys(r.district for r in rows))
    policies = list(dict.fromkeys(r.policy for r in rows))
    labels = {r.policy: r.label for r in rows}
    by = {(r.district, r.policy): r for r in rows}
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(13, 3.2 * len(METRICS)), dpi=dpi, sharex=True)
    x = np.arange(len(areas))
    width = 0.8 / max(len(policies), 1)
    for ax, (field, title) in zip(axes, METRICS, strict=True):
        share = field != "median_alerts"
        for k, policy in enumerate(policies):
            values = [getattr(by[(a, policy)], field) for a in areas]
            heights = [np.nan if v is None else (100 * v if share else v) for v in values]
            ax.bar(x + (k - (len(policies) - 1) / 2) * width, heights, width, label=labels[policy],
                   color=COLOURS[k % len(COLOURS)])  # fmt: skip
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel("% of incidents" if share else "alerts")
        if share:
            ax.set_ylim(0, 100)
        ax.grid(axis="y", linewidth=0.4, alpha=0.6)
        ax.set_axisbelow(True)
    axes[0].legend(fontsize=8, ncol=2, loc="upper right")
    axes[-1].set_xticks(x, areas, rotation=20, ha="right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
