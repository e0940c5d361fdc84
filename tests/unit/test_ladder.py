"""The ladder of channels (pure): which rung comes next for an unconfirmed alert, and when."""

from __future__ import annotations

from dataclasses import replace

import pytest
from pydantic import ValidationError

from core.config import Settings
from dispatch.channels.ladder import AlertState, LadderConfig, Rung, Step, next_step

ALL = ("push", "sms", "voice")
DEFAULT = LadderConfig.for_category(Settings(), "sanitation_worker")
FRESH = AlertState(
    status="sent",
    ended=False,
    socket_attached=False,
    push_subscribed=True,
    has_phone=True,
    configured=ALL,
    next_rung=0,
)


def climb(state: AlertState, config: LadderConfig = DEFAULT) -> list[tuple[str, float, str | None]]:
    """Every rung the ladder would take for an alert nobody confirms: (channel, due, skip)."""
    taken = []
    while (step := next_step(state, config)) is not None:
        taken.append((step.channel, step.due_s, step.skip))
        state = replace(state, next_rung=step.rung + 1)
    return taken


def test_the_default_ladder_follows_the_settings() -> None:
    assert DEFAULT.rungs == (Rung("push", 0.0), Rung("sms", 20.0), Rung("voice", 45.0))
    assert DEFAULT.receipt_timeout_s == 5.0
    custom = Settings(sms_after_s=12, voice_after_s=30, receipt_timeout_s=3)
    config = LadderConfig.for_category(custom, "volunteer")
    assert config.rungs == (Rung("push", 0.0), Rung("sms", 12.0), Rung("voice", 30.0))
    assert config.receipt_timeout_s == 3.0


def test_without_a_socket_push_goes_at_once_then_sms_then_voice() -> None:
    assert climb(FRESH) == [("push", 0.0, None), ("sms", 20.0, None), ("voice", 45.0, None)]


def test_with_a_socket_push_waits_for_the_receipt_timeout() -> None:
    assert next_step(replace(FRESH, socket_attached=True), DEFAULT) == Step(0, "push", 5.0)
    assert climb(replace(FRESH, socket_attached=True)) == [
        ("push", 5.0, None),
        ("sms", 20.0, None),
        ("voice", 45.0, None),
    ]
    # a receipt timeout longer than a rung's delay holds that rung back too
    slow = replace(DEFAULT, receipt_timeout_s=30.0)
    assert [due for _, due, _ in climb(replace(FRESH, socket_attached=True), slow)] == [30.0, 30.0, 45.0]


@pytest.mark.parametrize("status", ["delivered", "accepted", "declined", "expired", "cancelled", "en_route"])
def test_the_ladder_stops_at_a_receipt_an_answer_or_the_end(status: str) -> None:
    assert next_step(replace(FRESH, status=status), DEFAULT) is None
    assert next_step(replace(FRESH, status=status, next_rung=1), DEFAULT) is None


def test_never_after_the_alert_ended_nor_past_the_last_rung() -> None:
    assert next_step(replace(FRESH, ended=True), DEFAULT) is None
    assert next_step(replace(FRESH, ended=True, next_rung=2), DEFAULT) is None
    assert next_step(replace(FRESH, next_rung=3), DEFAULT) is None
    assert next_step(replace(FRESH, next_rung=2), DEFAULT) == Step(2, "voice", 45.0)


def test_a_rung_that_cannot_reach_the_responder_is_skipped_with_the_reason() -> None:
    assert climb(replace(FRESH, configured=("sms",))) == [
        ("push", 0.0, "push is not configured on this service"),
        ("sms", 20.0, None),
        ("voice", 45.0, "voice is not configured on this service"),
    ]
    assert climb(replace(FRESH, push_subscribed=False, has_phone=False)) == [
        ("push", 0.0, "the responder has no push subscription"),
        ("sms", 20.0, "the responder has no phone number"),
        ("voice", 45.0, "the responder has no phone number"),
    ]
    assert climb(replace(FRESH, configured=())) == [
        (c, due, f"{c} is not configured on this service") for c, due, _ in climb(FRESH)
    ]


def test_each_responder_category_may_have_its_own_order_and_delays() -> None:
    settings = Settings(
        ladder_by_category={"park_security": {"voice": 30, "sms": 0}, "volunteer": {"push": 0}}
    )
    guards = LadderConfig.for_category(settings, "park_security")
    assert guards.rungs == (Rung("sms", 0.0), Rung("voice", 30.0))  # by delay, whatever the order given
    assert climb(FRESH, guards) == [("sms", 0.0, None), ("voice", 30.0, None)]
    assert climb(replace(FRESH, socket_attached=True), guards) == [("sms", 5.0, None), ("voice", 30.0, None)]
    assert climb(FRESH, LadderConfig.for_category(settings, "volunteer")) == [("push", 0.0, None)]
    assert LadderConfig.for_category(settings, "sanitation_worker") == DEFAULT  # not named: the default
    # a tie keeps the order given
    assert [r.channel for r in LadderConfig.of({"voice": 10, "sms": 10}, 5).rungs] == ["voice", "sms"]


def test_unknown_channels_are_refused() -> None:
    with pytest.raises(ValidationError, match="ladder_by_category"):
        Settings(ladder_by_category={"volunteer": {"fax": 10}})
    with pytest.raises(ValidationError, match="ladder_by_category"):
        Settings(ladder_by_category={"volunteer": {"sms": -1}})
    with pytest.raises(ValueError, match="fax"):
        LadderConfig.of({"fax": 1.0}, 5)
