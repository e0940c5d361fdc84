"""The interface between the ladder and the channels that reach a phone (push, SMS, voice).

The ladder (`ladder.py`) decides *when* to try *which* channel for an alert; an adapter only knows
how to put one alert in front of one responder through its provider, and says what the provider
answered. An adapter never marks an alert delivered: only the phone's receipt does that.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from dispatch.frames import AlertView


class Outcome(StrEnum):
    """What a provider made of one attempt."""

    sent = "sent"  # handed to the provider and accepted by it (201 from a push service, an SMS id)
    provider_error = "provider_error"  # the provider refused or failed, also after retries
    unreachable = "unreachable"  # nothing to send to: no subscription, no phone number, all gone


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try to reach a responder about one alert.

    `alert` holds what the phone may show before accept: build the payload or text from
    `dispatch.frames.alert_frame(alert)` (category, distance, ETA, the approximate place), never
    from its exact location or address. `link` opens this one alert in the responder app with a
    one-time, alert-scoped, expiring code (for SMS and voice); `phone` is the responder's number.
    """

    alert: AlertView
    phone: str | None
    link: str | None
    step: int


@dataclass(frozen=True, slots=True)
class AttemptResult:
    outcome: Outcome
    detail: str = ""  # the provider's answer in a few words, for the incident's event log
    provider_id: str | None = None  # the provider's message id, when it gives one


class Channel(Protocol):
    """A way to reach a phone; `name` is what events and the ladder's settings call it."""

    name: str

    async def send(self, attempt: Attempt) -> AttemptResult: ...


class ClosableChannel(Channel, Protocol):
    """A channel holding connections (an HTTP client pool) that the app closes at shutdown."""

    async def aclose(self) -> None: ...
