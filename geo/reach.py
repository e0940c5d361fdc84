"""The reach model: who can get to the patient (or fetch an AED and bring it) in how many seconds.

ETA = activation + distance × circuity ÷ speed(mode). Circuity turns straight-line distance into
street distance; activation is the time to read the alert and start moving. The fetch-an-AED ETA
adds the detour via the AED and the time to take it off the wall. One model serves the dispatcher's
matching and the planner's coverage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


class TravelMode(StrEnum):
    walk = "walk"
    run = "run"
    bicycle = "bicycle"
    ebike = "ebike"
    car = "car"


DEFAULT_SPEEDS: dict[str, float] = {"walk": 1.4, "run": 2.3, "bicycle": 4.2, "ebike": 5.5, "car": 8.0}


@dataclass(frozen=True)
class ReachModel:
    """Travel-time parameters; build it with `from_settings` so every caller uses the same numbers."""

    activation_s: float = 30.0
    circuity: float = 1.3
    speeds: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SPEEDS))
    aed_pickup_s: float = 60.0

    @classmethod
    def from_settings(cls, settings: Any) -> ReachModel:
        """Read activation, circuity, `speed_<mode>_mps`, pickup (duck-typed: geo imports no core)."""
        speeds = {m.value: float(getattr(settings, f"speed_{m.value}_mps")) for m in TravelMode}
        return cls(
            float(settings.activation_s), float(settings.circuity), speeds, float(settings.aed_pickup_s)
        )

    def speed(self, mode: str) -> float:
        """Speed in m/s of a travel mode; unknown modes are a programming error (KeyError)."""
        return float(self.speeds[str(mode)])

    @property
    def fastest_speed(self) -> float:
        return max(self.speeds.values())

    def eta_s(self, distance_m: float, mode: str) -> float:
        """Seconds for a responder `distance_m` away (straight line) to reach the patient."""
        return self.activation_s + distance_m * self.circuity / self.speed(mode)

    def fetch_eta_s(self, d_responder_aed_m: float, d_aed_patient_m: float, mode: str) -> float:
        """Seconds until the AED is at the patient when this responder fetches it first."""
        legs = (d_responder_aed_m + d_aed_patient_m) * self.circuity / self.speed(mode)
        return self.activation_s + legs + self.aed_pickup_s

    def max_distance_m(self, t_s: float, mode: str) -> float:
        """Largest straight-line distance from which `mode` arrives within `t_s` (the inverse of `eta_s`)."""
        return max(0.0, (t_s - self.activation_s) * self.speed(mode) / self.circuity)

    def max_distance_for(self, t_s: float) -> float:
        """The search radius: the farthest anyone (fastest mode) can come from within `t_s`."""
        return max(0.0, (t_s - self.activation_s) * self.fastest_speed / self.circuity)

    def speeds_np(self, modes: ArrayLike) -> NDArray[np.float64]:
        """Speeds for an array of mode names."""
        return np.array([self.speeds[str(m)] for m in np.asarray(modes).ravel()], dtype=np.float64)

    def eta_s_np(self, distances_m: ArrayLike, speeds_mps: ArrayLike) -> NDArray[np.float64]:
        """Vectorised `eta_s`; `speeds_mps` broadcasts (one speed or one per distance)."""
        d = np.asarray(distances_m, dtype=np.float64)
        return self.activation_s + d * self.circuity / np.asarray(speeds_mps, dtype=np.float64)

    def fetch_eta_s_np(self, d_ra: ArrayLike, d_ap: ArrayLike, speeds_mps: ArrayLike) -> NDArray[np.float64]:
        """Vectorised `fetch_eta_s`."""
        legs = np.asarray(d_ra, dtype=np.float64) + np.asarray(d_ap, dtype=np.float64)
        return (
            self.activation_s
            + legs * self.circuity / np.asarray(speeds_mps, dtype=np.float64)
            + self.aed_pickup_s
        )
