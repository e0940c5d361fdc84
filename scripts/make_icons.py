"""Draw the responder app's icons (a white heart with a red lightning bolt) with Pillow.

Run once when the design changes: `.venv/bin/python scripts/make_icons.py`; the PNGs are committed,
so nothing is drawn or downloaded at set-up. "any" icons fill the square; "maskable" icons keep the
symbol inside the central 80 % safe zone, because launchers crop them to circles or squircles.
"""

from __future__ import annotations

import math
from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "dispatch" / "web" / "static" / "icons"
RED = (196, 22, 28, 255)  # the alert red of the pages
WHITE = (255, 255, 255, 255)
SUPERSAMPLE = 4  # draw large, shrink: smooth edges without an anti-aliasing library


def heart(cx: float, cy: float, size: float) -> list[tuple[float, float]]:
    """The classic parametric heart, scaled to `size` wide, centred on (cx, cy)."""
    points = []
    for i in range(360):
        t = math.radians(i)
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        points.append((cx + x * size / 34, cy - y * size / 34 - size * 0.03))
    return points


def bolt(cx: float, cy: float, size: float) -> list[tuple[float, float]]:
    """A lightning bolt (the shock of an AED) about `size` tall."""
    shape = [(0.10, -0.50), (-0.22, 0.05), (-0.02, 0.05), (-0.12, 0.50)]
    shape += [(0.24, -0.08), (0.03, -0.08), (0.14, -0.50)]
    return [(cx + x * size, cy + y * size) for x, y in shape]


def draw(px: int, symbol_scale: float, round_corners: bool) -> Image.Image:
    big = px * SUPERSAMPLE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(img)
    if round_corners:
        pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=big * 0.18, fill=RED)
    else:
        pen.rectangle((0, 0, big, big), fill=RED)  # maskable: full bleed, the launcher shapes it
    c = big / 2
    pen.polygon(heart(c, c, big * symbol_scale), fill=WHITE)
    pen.polygon(bolt(c, c * 1.02, big * symbol_scale * 0.62), fill=RED)
    return img.resize((px, px), Image.LANCZOS)


def badge(px: int) -> Image.Image:
    """The small monochrome status-bar badge (Android uses only its alpha)."""
    big = px * SUPERSAMPLE
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(img)
    pen.polygon(heart(big / 2, big / 2, big * 0.92), fill=WHITE)
    pen.polygon(bolt(big / 2, big * 0.51, big * 0.56), fill=(0, 0, 0, 0))
    return img.resize((px, px), Image.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for px in (192, 512):
        draw(px, 0.78, round_corners=True).save(OUT / f"responder-{px}.png", optimize=True)
        draw(px, 0.56, round_corners=False).save(OUT / f"responder-maskable-{px}.png", optimize=True)
    badge(96).save(OUT / "badge-96.png", optimize=True)


if __name__ == "__main__":
    main()
