"""The one settings object of the service.

Every tunable lives here so that the dispatcher's matching, the planner's coverage and the
operator's deployment read the same numbers. Values come from the environment (`DISPATCH_*`,
plus the conventional `DATABASE_URL` and `REDIS_URL`) or a `.env` file.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service configuration; see the README's table for what each field does."""

    model_config = SettingsConfigDict(env_prefix="DISPATCH_", env_file=".env", extra="ignore")

    # --- stores -------------------------------------------------------------------------------
    database_url: str = Field(
        "postgresql+asyncpg://rescue@127.0.0.1:55432/rescue",
        validation_alias=AliasChoices("DATABASE_URL", "DISPATCH_DATABASE_URL"),
    )
    redis_url: str = Field(
        "redis://127.0.0.1:56379/0",
        validation_alias=AliasChoices("REDIS_URL", "DISPATCH_REDIS_URL"),
    )
    redis_prefix: str = "rc"  # namespaces every Redis key and channel of this deployment

    # --- service ------------------------------------------------------------------------------
    admin_token: str | None = None
    log_json: bool = False
    log_level: str = "INFO"
    timezone: str = "Asia/Shanghai"
    tile_url: str | None = None  # base-map tiles for the web console; None = outlines only
    tile_crs: str = "gcj02"  # datum the tiles are drawn in (Chinese providers use GCJ-02)

    # --- reach model (DESIGN.md) --------------------------------------------------------------
    activation_s: float = 30.0
    circuity: float = 1.3
    speed_walk_mps: float = 1.4
    speed_run_mps: float = 2.3
    speed_bicycle_mps: float = 4.2
    speed_ebike_mps: float = 5.5
    speed_car_mps: float = 8.0
    aed_pickup_s: float = 60.0
    reach_s: float = 300.0
    reach_min_s: float = 60.0
    reach_max_s: float = 480.0

    team_root: str = "shenzhen"  # the city at the top of the team hierarchy (paths are below it)

    # --- live locations -----------------------------------------------------------------------
    h3_resolution: int = 9
    staleness_s: float = 120.0
    max_clock_skew_s: float = 60.0
    location_batch_max: int = 5000

    # --- AEDs -----------------------------------------------------------------------------------
    aed_unknown_hours_available: bool = True
    # Days `PH` means in opening hours: China's official 2026 days off (State Council schedule),
    # whole periods including bridged weekdays; set DISPATCH_AED_PUBLIC_HOLIDAYS='["2027-01-01",...]'.
    aed_public_holidays: list[date] = Field(
        default_factory=lambda: (
            [date(2026, 1, d) for d in (1, 2, 3)]
            + [date(2026, 2, d) for d in range(15, 24)]
            + [date(2026, 4, d) for d in (4, 5, 6)]
            + [date(2026, 5, d) for d in range(1, 6)]
            + [date(2026, 6, d) for d in (19, 20, 21)]
            + [date(2026, 9, d) for d in (25, 26, 27)]
            + [date(2026, 10, d) for d in range(1, 8)]
        )
    )

    # --- matching and alerts ------------------------------------------------------------------
    qualifying_certificates: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "cardiac_arrest": ["first_aid", "cpr", "aed"],
            "unconscious": ["first_aid", "cpr", "aed"],
            "choking": ["first_aid", "cpr", "aed"],
            "severe_bleeding": ["first_aid", "cpr", "aed"],
            "other_medical": ["first_aid", "cpr", "aed"],
        }
    )
    acceptance_probability: float = 0.35
    target_cpr: int = 2
    target_aed: int = 1
    aed_candidates: int = 3
    alert_cap: int = 20
    alert_ttl_s: float = 120.0
    escalation_interval_s: float = 30.0
    escalation_step_s: float = 60.0
    approx_location_m: float = 200.0

    # --- demo ---------------------------------------------------------------------------------
    demo: bool = True
    demo_seed: int = 7

    def speed_mps(self, mode: str) -> float:
        """Travel speed for a mode name (`walk`, `run`, `bicycle`, `ebike`, `car`)."""
        return float(getattr(self, f"speed_{mode}_mps"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
