"""The demo crowd: moves at patrol speed along the grid, stays in the city, reports every 10-15 s."""

from __future__ import annotations

import numpy as np

from geo.distance import haversine_m_np
from simulator.live import PATROL_SPEED_MPS, REPORT_EVERY_S, Crowd
from simulator.population import synth_responders
from simulator.shenzhen import demo_city


def test_the_crowd_moves_at_patrol_speed_inside_the_city_and_reports_on_schedule() -> None:
    city = demo_city()
    people = synth_responders(city, 400, seed=2)
    crowd = Crowd(city, people, seed=2, now=0.0)
    crowd.on_duty[:] = True
    idx = np.arange(len(crowd))
    lat0, lng0 = crowd.latlng(idx)
    reports: dict[int, list[float]] = {}
    for t in range(1, 121):
        crowd.step(1.0)
        for k in crowd.due(float(t)):
            reports.setdefault(int(k), []).append(float(t))
    lat1, lng1 = crowd.latlng(idx)
    assert (city.district_index(lat1, lng1) >= 0).all()  # nobody walked out of the city
    moved = haversine_m_np(lat0, lng0, lat1, lng1)
    speeds = np.array([PATROL_SPEED_MPS[p.mode] for p in people])
    assert (moved <= speeds * 120 * 1.01).all()  # never faster than patrol speed
    assert np.median(moved / (speeds * 120)) > 0.3  # and really on the move
    gaps = np.concatenate([np.diff(ts) for ts in reports.values()])
    assert len(reports) == len(crowd)
    assert gaps.min() >= REPORT_EVERY_S[0] and gaps.max() <= REPORT_EVERY_S[1] + 1


def test_only_clocked_in_phones_report() -> None:
    city = demo_city()
    crowd = Crowd(city, synth_responders(city, 50, seed=1), seed=1, now=0.0)
    crowd.on_duty[:10] = True
    seen = set()
    for t in range(1, 31):
        crowd.step(1.0)
        seen.update(int(k) for k in crowd.due(float(t)))
    assert seen == set(range(10))
