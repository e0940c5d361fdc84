"""The reach model and distances: exact values, monotonicity, inverse, vectorised = scalar."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.config import Settings
from geo.distance import haversine_m, haversine_m_np
from geo.reach import ReachModel, TravelMode

MODEL = ReachModel()
modes = st.sampled_from(list(TravelMode))
dist = st.floats(min_value=0, max_value=50_000)


def test_haversine_known_distance() -> None:
    # One degree of latitude on the mean sphere is 111.195 km.
    assert haversine_m(22.0, 114.0, 23.0, 114.0) == pytest.approx(111_195, rel=1e-4)
    assert haversine_m(22.5, 114.0, 22.5, 114.0) == 0.0


def test_haversine_vectorised_matches_scalar() -> None:
    rng = np.random.default_rng(3)
    lat, lng = rng.uniform(-80, 80, 1000), rng.uniform(-180, 180, 1000)
    got = haversine_m_np(22.5, 114.0, lat, lng)
    want = [haversine_m(22.5, 114.0, a, b) for a, b in zip(lat, lng, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-6)


def test_design_defaults_and_worked_example() -> None:
    # 300 m on foot: 30 s + 300 × 1.3 / 1.4 = 308.57 s; an e-bike: 30 + 390 / 5.5.
    assert MODEL.eta_s(300, "walk") == pytest.approx(30 + 390 / 1.4)
    assert MODEL.eta_s(300, TravelMode.ebike) == pytest.approx(30 + 390 / 5.5)
    assert MODEL.fetch_eta_s(100, 200, "run") == pytest.approx(30 + 300 * 1.3 / 2.3 + 60)
    assert MODEL.max_distance_m(300, "run") == pytest.approx(270 * 2.3 / 1.3)
    assert MODEL.max_distance_m(20, "run") == 0.0
    assert MODEL.max_distance_for(300) == pytest.approx(270 * 8.0 / 1.3)


def test_from_settings_reads_the_one_settings_object() -> None:
    s = Settings(activation_s=10, circuity=1.5, speed_walk_mps=1.0, aed_pickup_s=90)
    m = ReachModel.from_settings(s)
    assert m.eta_s(100, "walk") == pytest.approx(10 + 150)
    assert m.fetch_eta_s(0, 100, "walk") == pytest.approx(10 + 150 + 90)


@settings(max_examples=200, deadline=None)
@given(dist, dist, modes)
def test_eta_grows_with_distance(d1: float, d2: float, mode: TravelMode) -> None:
    lo, hi = sorted((d1, d2))
    assert MODEL.eta_s(lo, mode) <= MODEL.eta_s(hi, mode)
    if hi > lo + 1e-6:
        assert MODEL.eta_s(lo, mode) < MODEL.eta_s(hi, mode)


@settings(max_examples=200, deadline=None)
@given(dist, dist, modes)
def test_fetch_never_shorter_than_direct_to_aed_plus_aed_to_patient_leg(
    d_ra: float, d_ap: float, mode: str
) -> None:
    leg = d_ap * MODEL.circuity / MODEL.speed(mode)
    assert MODEL.fetch_eta_s(d_ra, d_ap, mode) >= MODEL.eta_s(d_ra, mode) + leg - 1e-9


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=31, max_value=3600), modes)
def test_inverse_of_eta(t: float, mode: str) -> None:
    assert MODEL.eta_s(MODEL.max_distance_m(t, mode), mode) == pytest.approx(t)


def test_vectorised_eta_matches_scalar() -> None:
    rng = np.random.default_rng(5)
    d = rng.uniform(0, 5000, 1000)
    mode_names = rng.choice([m.value for m in TravelMode], 1000)
    speeds = MODEL.speeds_np(mode_names)
    np.testing.assert_allclose(
        MODEL.eta_s_np(d, speeds), [MODEL.eta_s(x, m) for x, m in zip(d, mode_names, strict=True)]
    )
    d2 = rng.uniform(0, 5000, 1000)
    np.testing.assert_allclose(
        MODEL.fetch_eta_s_np(d, d2, speeds),
        [MODEL.fetch_eta_s(a, b, m) for a, b, m in zip(d, d2, mode_names, strict=True)],
    )
