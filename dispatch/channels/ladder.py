"""The ladder: which channel to try next for an alert the phone has not confirmed, and when (pure).

An alert planned is not an alert received. The socket (when one is open) takes the alert at once:
that is the publish, not a rung here. Then, until the phone confirms or the responder answers:
Web Push at once for a responder without a socket, and after `receipt_timeout_s` for one with a
socket (the socket gets its chance to bring the receipt; a half-open one never will); SMS after
`sms_after_s`; a voice call after `voice_after_s`. Each responder category may have its own rungs
and delays (`Settings.ladder_by_category`): park guards on foot patrol with no data plan, say,
get an SMS at once. The ladder never climbs for an alert that ended (expired, cancelled, closed).

A rung whose channel cannot be used for this responder is not tried but skipped, with the reason,
so the incident's log says why nobody got an SMS: the channel is not configured on this service,
the responder has no push subscription, or no phone number.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from core.config import Settings

LADDER_CHANNELS = ("push", "sms", "voice")
NEEDS_PHONE = ("sms", "voice")


@dataclass(frozen=True, slots=True)
class Rung:
    channel: str
    after_s: float  # seconds after the alert was created


@dataclass(frozen=True, slots=True)
class LadderConfig:
    rungs: tuple[Rung, ...]  # in the order they are climbed (by delay)
    receipt_timeout_s: float  # no rung before this when a socket took the alert

    @classmethod
    def for_category(cls, settings: Settings, category: str) -> LadderConfig:
        """The ladder of one responder category: its own when configured, else the default."""
        delays = settings.ladder_by_category.get(category)
        if delays is None:
            delays = {"push": 0.0, "sms": settings.sms_after_s, "voice": settings.voice_after_s}
        return cls.of(delays, settings.receipt_timeout_s)

    @classmethod
    def of(cls, delays: dict[str, float], receipt_timeout_s: float) -> LadderConfig:
        """Rungs ordered by delay (a tie keeps the order given)."""
        rungs = sorted(
            (Rung(channel, float(after)) for channel, after in delays.items()), key=lambda r: r.after_s
        )
        unknown = [r.channel for r in rungs if r.channel not in LADDER_CHANNELS]
        if unknown:
            raise ValueError(f"ladder: unknown channel(s) {unknown}; use {', '.join(LADDER_CHANNELS)}")
        return cls(tuple(rungs), receipt_timeout_s)


@dataclass(frozen=True, slots=True)
class AlertState:
    """What the ladder needs to know of one alert, now."""

    status: str  # the alert's status: only `sent` (no receipt, no answer) climbs
    ended: bool  # expired, or its incident closed
    socket_attached: bool  # a socket took it, or the responder holds one
    push_subscribed: bool  # the responder has at least one Web Push subscription
    has_phone: bool  # the responder has a phone number (SMS, voice)
    configured: Collection[str]  # channels this service can use (absent ones are skipped)
    next_rung: int  # rungs already climbed


@dataclass(frozen=True, slots=True)
class Step:
    rung: int  # index into the config's rungs
    channel: str
    due_s: float  # seconds after the alert was created
    skip: str | None = None  # why this rung is not tried (logged as `attempt_skipped`); None: try it


def skip_reason(channel: str, state: AlertState) -> str | None:
    if channel not in state.configured:
        return f"{channel} is not configured on this service"
    if channel == "push" and not state.push_subscribed:
        return "the responder has no push subscription"
    if channel in NEEDS_PHONE and not state.has_phone:
        return "the responder has no phone number"
    return None


def next_step(state: AlertState, config: LadderConfig) -> Step | None:
    """The next rung and when it is due, or None when the ladder stops: the phone confirmed, the
    responder answered, the alert ended, or no rung is left."""
    if state.status != "sent" or state.ended or state.next_rung >= len(config.rungs):
        return None
    rung = config.rungs[state.next_rung]
    due = max(rung.after_s, config.receipt_timeout_s) if state.socket_attached else rung.after_s
    return Step(state.next_rung, rung.channel, due, skip_reason(rung.channel, state))
