"""What the live store's tests share: the settings it needs (the service's defaults, page levels
chosen per test) and the box they place people in."""

from __future__ import annotations

from dataclasses import dataclass

DAY = 86_400
SZ = (22.45, 22.85, 113.75, 114.60)  # Shenzhen's bounding box: lat_min, lat_max, lng_min, lng_max


@dataclass
class StoreSettings:
    """`responders.store.StoreSettings` with the service's defaults."""

    h3_resolution: int = 9
    staleness_s: float = 120.0
    live_page_levels: int = 1
    live_region_resolution: int = 5
    live_directory_parts: int = 16
