"""Bodies of the alert endpoints a phone uses without its socket (a push action, an SMS link)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from core.inputs import InputModel

ReceiptChannel = Literal["socket", "push", "sms", "voice", "app"]


class ReceiptIn(InputModel):
    channel: ReceiptChannel | None = Field(
        None,
        description="what brought the alert to the screen; default: the channel of the one-time code "
        "(sms, voice), else `app`",
    )


class AnswerIn(InputModel):
    response: Literal["accept", "decline"]


class ReceiptOut(BaseModel):
    alert_id: uuid.UUID
    status: str
    delivered_via: str | None = Field(description="the channel of the first receipt (or answer)")


class AnswerOut(BaseModel):
    alert_id: uuid.UUID
    status: str
    incident: dict[str, Any] | None = Field(
        description="on accept, the `incident` frame: the exact place, the address, the AED"
    )


class AlertRead(BaseModel):
    alert_id: uuid.UUID
    status: str
    delivered_via: str | None
    alert: dict[str, Any] = Field(description="the `alert` frame: never the exact place")
    incident: dict[str, Any] | None = Field(description="the `incident` frame, once accepted")
