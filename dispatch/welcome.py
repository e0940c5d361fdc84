"""What `make run` tells a new user once everything is up: the three pages, a token for each role,
what to try, and how to stop, in one block printed last so that it is what the terminal shows.

The block is rendered by a pure function (`startup_block`); gathering its tokens talks to the
running service as any admin would (`POST /v1/tokens`, `POST /v1/responders/{id}/token`), so the
responder it names is one the demo's mover has on duty and moving at that moment.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

STAFF_ROLES = ("dispatcher", "planner", "coordinator")
PAGES = (
    ("Dispatcher console", "/"),
    ("Responder app", "/responder"),
    ("Planner", "/planner"),
    ("Coordinator", "/coordinator"),
)
WIDTH = 78
MAKE_TOKEN = ".venv/bin/python -m dispatch.cli token create --role dispatcher --label ME"


@dataclass(frozen=True)
class DemoResponder:
    """A demo worker the mover keeps on duty, with a fresh token for the responder app."""

    name: str
    team: str | None
    token: str


def wait_until_serving(url: str, timeout_s: float, between: Callable[[], None] = lambda: None) -> bool:
    """Whether `/healthz` answered 200 within `timeout_s` (both stores reachable); `between` runs
    between polls (the supervisor's round: a server that dies meanwhile is restarted)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        between()
        time.sleep(0.5)
    return False


def staff_tokens(http: httpx.Client, label: str) -> dict[str, str]:
    """A token for each staff page's role, issued through the API by the admin `http` speaks as."""
    tokens = {}
    for role in STAFF_ROLES:
        r = http.post("/v1/tokens", json={"role": role, "label": label})
        r.raise_for_status()
        tokens[role] = r.json()["token"]
    return tokens


def demo_responder(
    http: httpx.Client, wait_s: float, between: Callable[[], None] = lambda: None
) -> DemoResponder | None:
    """The on-duty demo worker nearest the middle of everyone on the map (where incidents are
    likeliest to reach them), with a new token; None if nobody was on duty within `wait_s` (the
    mover clocks the shift in a few hundred at a time)."""
    deadline = time.monotonic() + wait_s
    while True:
        features = http.get("/v1/responders/live").json()["features"]
        if features or time.monotonic() > deadline:
            break
        between()
        time.sleep(1.0)
    if not features:
        return None
    points = [f["geometry"]["coordinates"] for f in features]
    mid_lng, mid_lat = (sum(p[i] for p in points) / len(points) for i in (0, 1))
    chosen = min(features, key=lambda f: math.dist(f["geometry"]["coordinates"], (mid_lng, mid_lat)))
    rid = chosen["properties"]["id"]
    token = http.post(f"/v1/responders/{rid}/token")
    token.raise_for_status()
    person = http.get(f"/v1/responders/{rid}").json()
    return DemoResponder(person["name"], person.get("team"), token.json()["token"])


def startup_block(
    url: str,
    tokens: Mapping[str, str],
    responder: DemoResponder | None,
    *,
    demo: bool,
    workers: int,
) -> str:
    """The block itself: pages, sign-in tokens (shown once: only their hashes are stored), what to
    try, how to stop."""
    lines = [f"{name:<20}{url}{path}" for name, path in PAGES]
    lines.append(f"{'Metrics':<20}{url}/metrics   ({workers} API worker{'s' if workers > 1 else ''})")
    lines.append("")
    if tokens or responder:
        lines.append("Sign in with these tokens (shown once; only their hashes are stored):")
        lines += [f"  {role:<12}{token}" for role, token in tokens.items()]
        if responder is not None:
            who = responder.name + (f", team {responder.team}" if responder.team else "")
            lines.append(f"  {'responder':<12}{responder.token}")
            lines.append(f"  {'':<12}({who}: on duty, moved by the demo)")
    else:
        lines.append(f"Make a token: {MAKE_TOKEN}")
    lines.append("")
    if demo:
        lines += [
            "Try it: in the console, open a cardiac arrest near a dot on the map;",
            "the responder app, signed in with the responder token, rings when",
            "that worker is within reach. The demo mover's summary follows every 10 s.",
        ]
    parts = "server, mover, stores" if demo else "server, stores"
    lines.append(f"Stop everything ({parts}): Ctrl-C.")
    title = " The 5-minute rescue circle is running "
    top = "┌─" + title + "─" * max(0, WIDTH - len(title) - 2)
    return "\n".join([top, *(f"│ {line}" if line else "│" for line in lines), "└" + "─" * (WIDTH - 1)])
