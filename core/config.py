"""The one settings object of the service.

Every tunable lives here so that the dispatcher's matching, the planner's coverage and the
operator's deployment read the same numbers. Values come from the environment (`DISPATCH_*`,
plus the conventional `DATABASE_URL` and `REDIS_URL`) or a `.env` file.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Service configuration; see the README's table for what each field does."""

    model_config = SettingsConfigDict(
        env_prefix="DISPATCH_", env_file=".env", extra="ignore", use_attribute_docstrings=True
    )

    # --- stores -------------------------------------------------------------------------------
    database_url: str = Field(
        "postgresql+asyncpg://rescue@127.0.0.1:55432/rescue",
        validation_alias=AliasChoices("DATABASE_URL", "DISPATCH_DATABASE_URL"),
    )
    """PostgreSQL+PostGIS URL (asyncpg driver); `make run`/`make test` set it to their own cluster."""
    redis_url: str = Field(
        "redis://127.0.0.1:56379/0",
        validation_alias=AliasChoices("REDIS_URL", "DISPATCH_REDIS_URL"),
    )
    """Redis URL for live positions, pub/sub and locks."""
    redis_prefix: str = "rc"  # namespaces every Redis key and channel of this deployment
    """Namespace of every Redis key and channel of this deployment."""
    redis_cluster: bool | None = None
    """Redis Cluster mode: unset = told by the server named in `REDIS_URL` (`INFO cluster`; any node
    of a cluster will do); true/false forces it (a cluster whose seed node is down at start-up)."""
    redis_read_from_replicas: bool = False
    """On a cluster with replicas, send reads (nearby queries, maps) to replicas as well as primaries:
    more read capacity, positions possibly a replication lag (milliseconds) behind."""

    # --- service ------------------------------------------------------------------------------
    admin_token: str | None = None
    """When set, this value is a valid admin token at start-up."""
    log_json: bool = False
    """Structured JSON logs (one object per line)."""
    log_level: str = "INFO"
    """Log level."""
    log_routine_requests: bool = False
    """Also write an access-log line for each successful position batch (`POST /v1/locations`) and
    duty change: off, they are counted in `/metrics` only, and a gateway or the demo's mover sending
    thousands of them does not bury the lines an operator reads."""
    timezone: str = "Asia/Shanghai"
    """City time zone: opening hours, certificate dates."""
    tile_url: str | None = None  # base-map tiles for the web console; None = the city drawn from its data
    """Base-map tile URL template for the web pages; unset = the pages draw the city themselves (land,
    districts, streets and their names), which needs no network (dispatch/web/README.md)."""
    tile_crs: str = "gcj02"  # datum the tiles are drawn in (Chinese providers use GCJ-02)
    """Datum of the tiles (Chinese providers draw in GCJ-02)."""

    # --- reach model (DESIGN.md) --------------------------------------------------------------
    activation_s: float = 30.0
    """Reach model: seconds to read an alert and start moving."""
    circuity: float = 1.3
    """Reach model: street distance / straight-line distance."""
    speed_walk_mps: float = 1.4
    """Walking speed, m/s."""
    speed_run_mps: float = 2.3
    """Running speed, m/s."""
    speed_bicycle_mps: float = 4.2
    """Bicycle speed, m/s."""
    speed_ebike_mps: float = 5.5
    """E-bike speed, m/s."""
    speed_car_mps: float = 8.0
    """Car speed, m/s."""
    aed_pickup_s: float = 60.0
    """Seconds to take an AED off the wall."""
    reach_s: float = 300.0
    """Default incident reach: ETA limit in seconds (the five minutes)."""
    reach_min_s: float = 60.0
    """Smallest reach a dispatcher may ask for."""
    reach_max_s: float = 480.0
    """Largest reach, also where escalation stops widening."""

    team_root: str = "shenzhen"  # the city at the top of the team hierarchy (paths are below it)
    """The city at the top of the team hierarchy."""

    # --- live locations -----------------------------------------------------------------------
    h3_resolution: int = Field(9, ge=0, le=15)
    """H3 resolution of the live responder cell index."""
    # Redis pays about a microsecond for each key a query reads: a 2 km disk covers ~150 res-9
    # cells but ~30 res-8 parents (responders.store explains the layout).
    live_page_levels: int = Field(1, ge=0, le=2)
    """Each Redis key of the cell index holds the cells of the H3 ancestor this many resolutions
    up (0: a key per cell)."""
    live_region_resolution: int = Field(5, ge=0, le=15)
    """H3 resolution of the live index's regions (res 5: ~250 km², ~8 km across). Every key of a
    region carries it as a Redis Cluster hash tag, so one script changes a region atomically and a
    2 km query reads ~1.8 regions' slots; a fix crossing into another region takes a three-step move
    (`responders.store`). Coarser: fewer moves, less even spread over shards."""
    live_directory_parts: int = Field(16, ge=1, le=4096)
    """The directory of record (responder → duty profile and region) is split into this many hashes
    by a CRC of the id, each in its own slot: millions of profiles spread over a cluster's shards."""
    live_map_pages_max: int = Field(20_000, ge=1)
    """Most pages of the live index a map view (`GET /v1/responders/live?bbox=`) may read: at the
    default resolutions ~15,000 km², a province's city; wider views get 422 (zoom in)."""
    staleness_s: float = 120.0
    """A position older than this is never used for dispatch."""
    max_clock_skew_s: float = 60.0
    """Location timestamps further in the future are rejected."""
    location_batch_max: int = 5000
    """Most updates in one POST /v1/locations batch (413 above)."""
    live_check_s: float = Field(2.0, gt=0)
    """Seconds between checks that Redis still holds the duty profiles (a restart or flush is
    repaired from Postgres at the next check)."""
    live_warmup_s: float = Field(60.0, ge=0)
    """Seconds after Redis lost its data during which positions count as still streaming back
    (phones send one every few seconds): incidents are re-planned every `replan_s` meanwhile.
    0: never."""
    ws_max_frame_bytes: int = Field(65_536, ge=1024)
    """Largest websocket frame a phone or console may send; a larger one gets an `error` frame."""

    # --- AEDs -----------------------------------------------------------------------------------
    aed_unknown_hours_available: bool = True
    """Offer AEDs whose opening hours are missing or unparseable."""
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
    """Days that `PH` means in opening hours (JSON list of dates)."""

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
    """Incident category → certificate kinds that qualify (JSON)."""
    acceptance_probability: float = Field(0.35, gt=0, lt=1)
    """Prior share of alerted responders who accept: what a responder, team and category with no
    answers yet are believed to do (each person's own rate is learned from their answers)."""
    acceptance_prior_strength: float = Field(10.0, gt=0)
    """How many answers a prior is worth when shrinking a responder's (team's, category's) own
    acceptance rate toward it (Beta-Binomial)."""
    target_cpr: int = Field(1, ge=0)
    """Responders wanted straight at the patient, besides the AED runners."""
    target_aed: int = Field(1, ge=0)
    """AED runners wanted."""
    success_level: float = Field(0.9, gt=0, lt=1)
    """Alert until the chance that at least the targets accept reaches this (per role)."""
    answer_timeout_s: float = Field(30.0, gt=0)
    """Seconds without an answer after which an alert counts for little and a replacement goes out."""
    late_answer_weight: float = Field(0.25, ge=0, le=1)
    """What an overdue alert's chance of acceptance still counts for when sizing replacements."""
    cpr_weight: float = Field(0.5, ge=0)
    """How a second of delay to CPR weighs against a second of delay to defibrillation when an
    acceptor's role is chosen."""
    ems_defib_s: float = Field(900.0, gt=0)
    """Seconds until the ambulance brings a defibrillator when the circle does not: what "never"
    counts as when roles are chosen."""
    aeds_considered: int = Field(30, ge=1)
    """Open AEDs nearest the patient the planner considers; each person is offered up to 3 of them."""
    alert_cap: int = 20
    """Most alerts per incident, escalation included."""
    alert_ttl_s: float = 120.0
    """Seconds before an unanswered alert expires."""
    escalation_interval_s: float = 30.0
    """Seconds between escalation steps while too few accepted; each incident keeps the value it
    opened with."""
    escalation_step_s: float = 60.0
    """Seconds added to the reach at each escalation step."""
    replan_s: float = Field(3.0, gt=0)
    """Seconds between re-plans of an incident planned while positions were unavailable (Redis
    down) or still streaming back (Redis lost its data), instead of the escalation interval."""

    # --- reaching phones: receipts and the ladder of channels (dispatch.channels) -------------
    receipt_timeout_s: float = Field(5.0, ge=0)
    """Seconds a socket that took an alert has to bring the phone's receipt before the ladder goes
    on to Web Push (responders without a socket get the push at once)."""
    sms_after_s: float = Field(20.0, ge=0)
    """Seconds after an alert without a receipt before it goes by SMS."""
    voice_after_s: float = Field(45.0, ge=0)
    """Seconds after an alert without a receipt before a voice call."""
    ladder_by_category: dict[str, dict[Literal["push", "sms", "voice"], Annotated[float, Field(ge=0)]]] = (
        Field(default_factory=dict)
    )
    """Responder category -> its own ladder: channel -> seconds after the alert (the order follows
    the delays; a channel left out is not used), e.g. `{"park_security": {"sms": 0, "voice": 30}}`
    (JSON). Categories not named: push at once, SMS after `sms_after_s`, voice after `voice_after_s`."""
    ladder_enabled: bool = True
    """Step the ladder (push, SMS, voice) in this worker's dispatch clock. Off: this worker never
    sends beyond its sockets (a worker kept for reads; a test that drives the ladder itself)."""
    public_base_url: str = "http://127.0.0.1:8000"
    """The address phones reach the service at: SMS and voice links to an alert are built on it."""

    # --- security -----------------------------------------------------------------------------
    ws_token_recheck_s: float = Field(15.0, gt=0)
    """Each worker re-checks the tokens of its open sockets this often (one query), closing those
    revoked: the safety net when a revocation announcement over Redis was missed."""
    token_cache_ttl_s: float = Field(60.0, ge=0)
    """How long a worker trusts a token PostgreSQL found valid without asking again. Revocations
    reach every worker's cache at once over Redis (and a worker whose subscription was down clears
    its cache), so this only bounds a revocation nobody announced: Redis unreachable when it was
    made, or a row edited by hand. 0: every request asks PostgreSQL."""
    token_cache_size: int = Field(100_000, ge=0)
    """Tokens a worker's cache holds (about 0.5 KB each); the least recently used go first."""
    rate_limit_enabled: bool = True
    """Count requests per client address and per token in Redis (shared by all workers); 429 above."""
    rate_limit_per_address: str = "20000/minute"
    """Requests (and socket handshakes) per client address; `limits` notation, e.g. "300/second".
    Behind a reverse proxy every client shares the proxy's address: raise it there."""
    rate_limit_per_token: str = "20000/minute"
    """Requests per bearer token (the demo's 8,000 duty changes at start-up fit in one minute)."""
    auth_failures_per_address: str = "50/minute"
    """Unknown or revoked tokens per client address; above it, further tokens from that address get
    429 without a database lookup, so a flood of guessed tokens costs Redis one counter each."""
    aed_report_confirm_window_s: float = Field(86_400.0, gt=0)
    """A missing/broken report from an untrusted role takes an AED out of dispatch only when a second
    independent reporter confirms it within this many seconds (an admin's report acts at once)."""
    aed_reports_per_reporter_per_hour: int = Field(20, ge=1)
    """Problem reports one reporter (token or responder) may file per hour, all AEDs together."""
    aed_reports_per_aed_per_hour: int = Field(10, ge=1)
    """Problem reports one AED may receive per hour, all reporters together."""
    docs_enabled: bool = True
    """Serve /docs, /redoc and /openapi.json; set false to hide the API description."""
    metrics_token: str | None = None
    """When set, /metrics needs `Authorization: Bearer <this>`; unset = open (scrapers on a private
    network)."""
    metrics_enabled: bool = True
    """Serve /metrics at all."""

    # --- emergency centres (cad/): incidents sent as NENA EIDO ------------------------------------
    cad_incident_types: dict[
        str, Literal["cardiac_arrest", "unconscious", "choking", "severe_bleeding", "other_medical"]
    ] = Field(
        default_factory=lambda: {
            "cardiac_arrest": "cardiac_arrest",
            "cardiac arrest": "cardiac_arrest",
            "EMS-CardiacArrest": "cardiac_arrest",
            "09": "cardiac_arrest",  # MPDS protocol 9: cardiac or respiratory arrest
            "unconscious": "unconscious",
            "31": "unconscious",  # MPDS 31: unconscious / fainting
            "choking": "choking",
            "11": "choking",  # MPDS 11: choking
            "severe_bleeding": "severe_bleeding",
            "21": "severe_bleeding",  # MPDS 21: haemorrhage / lacerations
        }
    )
    """A centre's incident-type code → our category (JSON; case-insensitive; a key also matches
    the codes it begins, so `09` takes `09-E-01`). Unknown codes dispatch as `other_medical` and the
    answer says so."""
    cad_datum_by_agency: dict[str, Literal["wgs84", "gcj02", "bd09"]] = Field(default_factory=dict)
    """Agency id → the datum its PIDF-LO coordinates are really in (JSON; default `wgs84`, as the
    standard says; some Chinese centres send GCJ-02 or BD-09 from their map SDK)."""

    # --- request bodies -----------------------------------------------------------------------
    body_limit_bytes: int = Field(1 * 2**20, ge=0)
    """Largest request body in bytes on any path not in `body_limits` (413 above, before reading)."""
    body_limits: dict[str, int] = Field(
        default_factory=lambda: {
            "/v1/locations": 8 * 2**20,  # a 5,000-update gateway batch is ~1 MB of JSON
            "/v1/responders/import": 32 * 2**20,
            "/v1/aeds/import": 64 * 2**20,
            "/v1/city": 32 * 2**20,
            "/v1/cad/eido": 256 * 2**10,  # an EIDO with its PIDF-LO is a few kB
        }
    )
    """Path -> largest request body in bytes, for paths that take files or batches (JSON; replaces
    the whole default map)."""

    # --- planner studies (coverage, placement): run as jobs, in processes of their own -----------
    study_workers: int = Field(1, ge=1, le=16)
    """Studies that run at once in each API worker (each in its own process); more wait queued."""
    study_time_limit_s: float = Field(600.0, gt=0)
    """Wall-clock seconds a study may run before its process is killed and the job fails."""
    study_memory_limit_mb: int = Field(3072, ge=256)
    """Address space (MB) of a study's process (RLIMIT_AS); past it the job fails, alone."""
    study_sync_wait_s: float = Field(5.0, ge=0)
    """A study done within this many seconds answers 200 at once; a longer one answers 202 + a job."""
    study_max_cells: int = Field(250_000, ge=1)
    """Largest grid a study may cover (H3 cells, estimated before it runs); above it, 422."""
    study_job_keep_s: float = Field(86_400.0, gt=0)
    """Seconds a finished study job (and its result) is kept for polling."""

    # --- SMS and voice calls (dispatch/channels/sms.py) -----------------------------------------
    sms_provider: Literal["tencent", "webhook"] | None = None
    """Who sends the alert SMS: `tencent` (Tencent Cloud SMS) or `webhook` (any gateway, signed
    JSON POST); unset = no SMS."""
    voice_provider: Literal["tencent", "webhook"] | None = None
    """Who places the alert voice call: `tencent` (Tencent Cloud voice, TTS template) or `webhook`;
    unset = no voice calls."""
    sms_language: Literal["zh", "en"] = "zh"
    """Language of the SMS and voice texts (webhook) and of the template parameters (Tencent)."""
    sms_timeout_s: float = Field(5.0, gt=0)
    """Seconds one request to the SMS/voice provider may take before it counts as failed."""
    sms_retries: int = Field(2, ge=0, le=10)
    """Further tries after a 5xx, a timeout or a lost connection (never past the alert's expiry)."""
    sms_retry_backoff_s: float = Field(0.5, ge=0)
    """Wait before the first retry; doubled for each further one."""
    sms_webhook_url: str | None = None
    """Webhook gateway: the URL that gets `{"to","text","alert_id","kind"}` as a signed JSON POST."""
    sms_webhook_secret: SecretStr | None = None
    """Webhook gateway: the shared secret of the `X-Rescue-Signature` HMAC (required with the URL)."""
    tencent_secret_id: str | None = None
    """Tencent Cloud API key: SecretId (CAM; give it only the SMS and voice permissions)."""
    tencent_secret_key: SecretStr | None = None
    """Tencent Cloud API key: SecretKey."""
    tencent_region: str = "ap-guangzhou"
    """Tencent Cloud region of the SMS and voice calls (`X-TC-Region`)."""
    tencent_endpoint_url: str | None = None
    """Base URL the Tencent requests go to instead of `https://<service>.tencentcloudapi.com` (a
    proxy, or the tests' stand-in); the signed Host stays the service's own."""
    tencent_sms_sdk_app_id: str | None = None
    """Tencent SMS: the SmsSdkAppId of the SMS application."""
    tencent_sms_sign_name: str | None = None
    """Tencent SMS: the approved signature (签名) shown in 【】 (required for mainland numbers)."""
    tencent_sms_template_id: str | None = None
    """Tencent SMS: approved template with 4 parameters {1} category {2} distance {3} ETA and {4} the
    link after `DISPATCH_TENCENT_SMS_LINK_PREFIX`."""
    tencent_sms_aed_template_id: str | None = None
    """Tencent SMS: template for AED runners, 5 parameters: category, distance, ETA, the AED's place,
    link; unset = AED runners get the plain template."""
    tencent_sms_link_prefix: str | None = None
    """Tencent SMS: the start of every alert link, `<public base URL>/responder?`, written as
    constant text in the approved template (Tencent refuses URLs in template variables); the last
    template variable is the rest of the link (`alert=…&code=…`). Required with Tencent SMS."""
    tencent_voice_sdk_app_id: str | None = None
    """Tencent voice: the VoiceSdkAppid of the voice application."""
    tencent_voice_template_id: str | None = None
    """Tencent voice: approved TTS template with 3 parameters {1} category {2} distance {3} ETA."""
    tencent_voice_play_times: int = Field(2, ge=1, le=3)
    """Tencent voice: times the message is played in one call."""

    # --- Web Push (dispatch/channels/push*.py) ----------------------------------------------------
    vapid_private_key: str | None = None
    """VAPID private key (raw 32-byte base64url, DER base64 or PEM); unset = one is made at first start
    and kept in PostgreSQL (table `push_vapid_keys`), shared by every worker."""
    vapid_subject: str = "mailto:ops@localhost"
    """VAPID `sub` claim: a `mailto:` or `https:` contact the push services can reach about our traffic."""
    push_allow_http_loopback: bool = False
    """Accept `http://` push endpoints on loopback addresses (tests and local push services only);
    otherwise an endpoint must be `https://`."""
    push_endpoint_hosts: list[str] = Field(
        default_factory=lambda: [
            "fcm.googleapis.com",  # Chrome, Edge on Android, Samsung Internet, Opera
            ".push.services.mozilla.com",  # Firefox
            ".push.apple.com",  # Safari (macOS, iOS 16.4+ home-screen apps)
            ".notify.windows.com",  # Edge on Windows
        ]
    )
    """Hosts push endpoints may name (a leading "." allows any subdomain; JSON list; [] = any https
    host): the service POSTs to these URLs, so a subscription must not aim it at internal hosts."""
    push_timeout_s: float = Field(5.0, gt=0)
    """Seconds one request to a push service may take before it counts as failed (and is retried)."""
    push_tries: int = Field(4, ge=1, le=10)
    """Most requests per subscription and alert: 429 and 5xx are retried until this or the alert expires."""
    push_backoff_s: float = Field(0.5, gt=0)
    """First wait before retrying a 5xx or a failed connection; doubles each try (429 waits Retry-After)."""
    push_connections: int = Field(200, ge=1)
    """Most requests in flight to push services at once, per worker."""

    # --- Feedback to emergency centres (cad/outbox*.py, cad/delivery.py) -------------------------
    cad_allow_private_urls: bool = False
    """Accept subscription URLs on loopback and private addresses (tests, a centre on the same
    network); otherwise a URL must name a public host, so a centre cannot aim our POSTs inward."""
    cad_timeout_s: float = Field(5.0, gt=0)
    """Seconds one feedback POST to a centre may take before it counts as failed (and is retried)."""
    cad_backoff_s: float = Field(1.0, gt=0)
    """Wait before the first retry of a feedback event; doubled for each further one."""
    cad_backoff_max_s: float = Field(300.0, gt=0)
    """Longest wait between two tries of one feedback event."""
    cad_max_attempts: int = Field(10, ge=1, le=100)
    """Tries of one feedback event before it is `failed` (visible to admins, re-sendable); the
    centre's stream for that incident waits behind it, so nothing arrives out of order."""
    cad_poll_s: float = Field(0.2, gt=0)
    """How often an idle delivery loop looks for feedback due (each worker runs one)."""
    cad_batch: int = Field(100, ge=1, le=1000)
    """Most feedback events one worker sends at once (each to a different incident stream)."""

    # --- after the alarm: arrival geofences, service record, privacy (issue 22) ------------------
    geofence_en_route_m: float = Field(20.0, gt=0, le=500)
    """`en_route` is recorded when an accepted responder's fix is surely (less its accuracy) this far
    from where they accepted, heading on."""
    geofence_aed_m: float = Field(15.0, gt=0, le=500)
    """`aed_picked_up` is recorded when a `fetch_aed` runner's fix is this close to the AED."""
    geofence_on_scene_m: float = Field(30.0, gt=0, le=500)
    """`on_scene` is recorded when an accepted responder's fix is this close to the patient."""
    geofence_max_accuracy_m: float = Field(50.0, gt=0)
    """A fix less accurate than this (`accuracy_m`) never sets an arrival time: it cannot tell 15 m
    from 60 m. Entering a radius also needs the fix's accuracy to be no larger than the radius."""
    points_per_duty_hour: float = Field(1.0, ge=0)
    """Service points per hour on duty (the programme's rule; Longhua turns points into vouchers)."""
    points_per_incident: float = Field(10.0, ge=0)
    """Service points per incident turned out for (an accepted alert)."""
    points_per_arrival: float = Field(5.0, ge=0)
    """Further service points when the responder reached the patient (`on_scene`)."""
    position_retention_days: float = Field(90.0, gt=0)
    """Days a responder's positions kept in incident timelines (where they accepted, the fixes that
    set arrival times) are kept; then they are erased, the times themselves stay."""
    position_retention_every_s: float = Field(3600.0, gt=0)
    """How often the retention job (`privacy.retention`) erases the positions past
    `position_retention_days`: one worker per period, under a Redis lease; also at start-up."""
    utstein_max_window_days: int = Field(366, ge=1, le=3660)
    """The longest window one Utstein report (`GET /v1/reports/utstein`) may span: a year of
    incidents (leap years included) is one registry submission; longer is asked for in pieces."""
    debrief_window_days: float = Field(14.0, gt=0, le=365)
    """How long after an incident ended a responder is still asked for their debrief: later, the
    memory is no longer fresh and the question no longer kind."""

    def speed_mps(self, mode: str) -> float:
        """Travel speed for a mode name (`walk`, `run`, `bicycle`, `ebike`, `car`)."""
        return float(getattr(self, f"speed_{mode}_mps"))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
