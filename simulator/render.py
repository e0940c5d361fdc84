"""Maps people would rather see than read: the coverage heat map and proposed sites, as PNG.

Matplotlib with the Agg backend (no display, no network): H3 cells filled by ETA band, district
outlines on top, proposed sites numbered. The same colour bands as the planner page.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import h3
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import font_manager
from matplotlib.collections import PolyCollection
from matplotlib.patches import Patch

from simulator.city import City
from simulator.coverage import CoverageResult
from simulator.placement import Placement, Site

# District names of Chinese cities (福田区, 南山区…) need a CJK font, or they print as empty boxes.
# The set-up installs Debian's fonts-wqy-microhei; it is added by path (matplotlib's font cache may
# predate it) and placed after DejaVu Sans, so matplotlib falls back to it glyph by glyph.
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
if CJK_FONT.exists():
    font_manager.fontManager.addfont(str(CJK_FONT))
    matplotlib.rcParams["font.family"] = ["DejaVu Sans", "WenQuanYi Micro Hei"]

BANDS: tuple[tuple[float, str, str], ...] = (
    (120, "#1a7f37", "≤ 2 min"),
    (180, "#52a447", "≤ 3 min"),
    (240, "#c9b22a", "≤ 4 min"),
    (300, "#e07b00", "≤ 5 min"),
    (np.inf, "#b3261e", "later or nobody"),
)


def band_colours(eta_s: np.ndarray) -> list[str]:
    """The band colour of each ETA (NaN: nobody within the reach)."""
    limits = np.array([b[0] for b in BANDS])
    filled = np.where(np.isnan(eta_s), np.inf, eta_s)
    return [BANDS[i][1] for i in np.searchsorted(limits, filled, side="left")]


def coverage_png(
    city: City,
    result: CoverageResult,
    *,
    field: str = "responder_eta_s",
    title: str = "",
    sites: Sequence[Site] = (),
    dpi: int = 110,
) -> bytes:
    """The heat map of one ETA field over the city, with district outlines and numbered sites."""
    fig, ax = plt.subplots(figsize=(11, 7), dpi=dpi)
    polys = [[(lng, lat) for lat, lng in h3.cell_to_boundary(c)] for c in result.grid.cells]
    ax.add_collection(PolyCollection(polys, facecolors=band_colours(getattr(result, field)), linewidths=0))
    for district in city.districts:
        for poly in getattr(district.geometry, "geoms", [district.geometry]):
            x, y = poly.exterior.xy
            ax.plot(x, y, color="#1f2933", linewidth=0.8)
        c = district.geometry.representative_point()
        ax.annotate(district.name, (c.x, c.y), fontsize=7, ha="center", color="#1f2933")
    for i, site in enumerate(sites, start=1):
        ax.plot(site.lng, site.lat, marker="o", markersize=9, color="#0b3d91", markeredgecolor="white")
        ax.annotate(str(i), (site.lng, site.lat), fontsize=6, ha="center", va="center", color="white")
    minx, miny, maxx, maxy = city.outline.bounds
    ax.set_xlim(minx, maxx)
    ax.set_ylim(miny, maxy)
    ax.set_aspect(1 / np.cos(np.radians((miny + maxy) / 2)))
    ax.set_xlabel("longitude (WGS-84)")
    ax.set_ylabel("latitude")
    label = "a responder" if field == "responder_eta_s" else "an AED"
    ax.set_title(title or f"{city.name}: time until {label} is at the patient, H3 res {result.grid.res}")
    ax.legend(handles=[Patch(color=c, label=t) for _, c, t in BANDS], loc="lower right", fontsize=8)
    return _png(fig)


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def curve_png(plan: Placement, title: str) -> bytes:
    """The marginal-gain curve: population share covered after each added site."""
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    shares = [plan.baseline_share, *plan.curve]
    ax.plot(range(len(shares)), [100 * s for s in shares], marker="o", color="#0b3d91")
    ax.set_xlabel("sites added")
    ax.set_ylabel("population covered (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    return _png(fig)
