"""lib/charts.js run by Node: a bar per share, "no data" (not a zero bar) where a row has no
incidents, a trend line broken by a month without incidents, and names escaped."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from dispatch.web.router import STATIC_DIR

NODE = shutil.which("node")
SCRIPT = """
const charts = await import(STATIC + "/lib/charts.js");
const series = [{ name: "responder", colour: "#1a7f37" }, { name: "AED", colour: "#0b4f8a" }];
const format = (s) => `${Math.round(s * 100)} %`;
const bars = charts.shareBars({ title: "t", series, format, noData: "no incidents", rows: [
  { label: "West", values: [0.5, 0] }, { label: "<East>", values: [null, null] }] });
const trend = charts.shareTrend({ title: "t", series, format, points: [
  { label: "2026-01", values: [0.5, 0.25] }, { label: "2026-02", values: [null, null] },
  { label: "2026-03", values: [0.75, 0.5] }, { label: "2026-04", values: [1, 0.5] }] });
console.log(JSON.stringify({ bars, trend }));
"""


def drawn() -> dict[str, str]:
    if NODE is None:
        pytest.fail("node is missing: scripts/setup.sh installs it (npm needs it)")
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", SCRIPT.replace("STATIC + ", f"{json.dumps(str(STATIC_DIR))} + ")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_bars_draw_zero_as_a_bar_and_null_as_no_data() -> None:
    bars = drawn()["bars"]
    assert bars.count("<rect") - bars.count("data-series") == 2  # the legend
    assert bars.count("no incidents") == 2
    assert "West · AED: 0 %" in bars
    assert "&lt;East&gt;" in bars and "<East>" not in bars


def test_a_month_without_incidents_breaks_the_trend() -> None:
    trend = drawn()["trend"]
    assert trend.count("<circle") == 6  # three months with incidents, two series
    assert trend.count("<polyline") == 2  # March-April for each series; January stands alone
