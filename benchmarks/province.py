"""A province's responders, put where people are: Guangdong's box, weighted by its cities.

A uniform spread over the province would put most responders in hills and sea and would flatter
the cluster: every region (and so every slot) would hold about as many as the next. People crowd
into a few cities, and a region's slot cannot be split, so the slot balance worth measuring is
the one of a crowded province. Pure: the same seed gives the same people.
"""

from __future__ import annotations

import numpy as np

BOX = (20.2, 109.7, 25.5, 117.3)  # Guangdong: min_lat, min_lng, max_lat, max_lng
BACKGROUND = 0.15  # share spread uniformly over the box: villages, roads, the countryside
CITIES: dict[str, tuple[float, float, float]] = {
    # name: (lat, lng, residents in millions, 2020 census, rounded); the spread grows with size
    "Guangzhou": (23.13, 113.26, 18.7),
    "Shenzhen": (22.60, 114.05, 17.6),
    "Dongguan": (23.02, 113.75, 10.5),
    "Foshan": (23.02, 113.12, 9.5),
    "Zhanjiang": (21.27, 110.36, 7.0),
    "Maoming": (21.66, 110.92, 6.2),
    "Huizhou": (23.11, 114.42, 6.0),
    "Jieyang": (23.55, 116.37, 5.6),
    "Shantou": (23.35, 116.68, 5.5),
    "Jiangmen": (22.58, 113.08, 4.8),
    "Zhongshan": (22.52, 113.39, 4.4),
    "Zhaoqing": (23.05, 112.47, 4.1),
    "Qingyuan": (23.68, 113.06, 4.0),
    "Meizhou": (24.29, 116.12, 3.9),
    "Shaoguan": (24.81, 113.60, 2.9),
    "Zhuhai": (22.27, 113.58, 2.4),
}
KM_PER_DEG_LAT = 111.195


def people(n: int, seed: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """`n` positions (lats, lngs): `BACKGROUND` of them uniform over the box, the rest around the
    city centres in proportion to residents, each city a normal spread of sigma 4 km per million
    residents' square root (Guangzhou ~17 km, Zhuhai ~6 km), clipped to the box."""
    rng = np.random.default_rng(seed)
    rural = int(n * BACKGROUND)
    lat = np.empty(n)
    lng = np.empty(n)
    lat[:rural] = rng.uniform(BOX[0], BOX[2], rural)
    lng[:rural] = rng.uniform(BOX[1], BOX[3], rural)
    centres = np.array([(c_lat, c_lng) for c_lat, c_lng, _ in CITIES.values()])
    residents = np.array([r for _, _, r in CITIES.values()])
    city = rng.choice(len(CITIES), size=n - rural, p=residents / residents.sum())
    sigma_km = 4.0 * np.sqrt(residents[city])
    lat[rural:] = centres[city, 0] + rng.normal(0, 1, n - rural) * sigma_km / KM_PER_DEG_LAT
    lng[rural:] = centres[city, 1] + rng.normal(0, 1, n - rural) * sigma_km / (
        KM_PER_DEG_LAT * np.cos(np.radians(centres[city, 0]))
    )
    return np.clip(lat, BOX[0], BOX[2]), np.clip(lng, BOX[1], BOX[3])


def moved(
    lat: np.ndarray, lng: np.ndarray, metres: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Each position `metres` away on a random heading (flat-Earth: steps of metres)."""
    heading = rng.uniform(0, 2 * np.pi, len(lat))
    dlat = metres * np.cos(heading) / (KM_PER_DEG_LAT * 1000)
    dlng = metres * np.sin(heading) / (KM_PER_DEG_LAT * 1000 * np.cos(np.radians(lat)))
    return lat + dlat, lng + dlng
