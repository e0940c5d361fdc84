"""The SMS and voice-call channels, built from the settings (none unless configured).

`DISPATCH_SMS_PROVIDER` and `DISPATCH_VOICE_PROVIDER` pick `tencent` or `webhook` for each; unset,
the builder answers None and the ladder skips that step. A provider picked but not fully
configured stops the start with the names of the missing settings: an operator who meant to turn
SMS on must not find out at the first cardiac arrest that it is off.
"""

from __future__ import annotations

from typing import Literal

import httpx

from core.config import Settings
from dispatch.channels.base import ClosableChannel
from dispatch.channels.retry import RetryPolicy
from dispatch.channels.tencent import TencentApi, TencentSms, TencentVoice
from dispatch.channels.webhook import WebhookChannel


class ChannelConfigError(ValueError):
    """A provider was chosen but settings it needs are missing."""


def _require(settings: Settings, kind: str, *names: str) -> None:
    missing = [f"DISPATCH_{n.upper()}" for n in names if not getattr(settings, n)]
    if missing:
        provider = getattr(settings, f"{kind}_provider")
        raise ChannelConfigError(f"DISPATCH_{kind.upper()}_PROVIDER={provider} needs {', '.join(missing)}")


def _policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(settings.sms_retries, settings.sms_retry_backoff_s, settings.sms_timeout_s)


def _client(settings: Settings) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=settings.sms_timeout_s, follow_redirects=False)


def _tencent(settings: Settings, kind: str) -> TencentApi:
    _require(settings, kind, "tencent_secret_id", "tencent_secret_key")
    assert settings.tencent_secret_id and settings.tencent_secret_key
    return TencentApi(
        settings.tencent_secret_id, settings.tencent_secret_key.get_secret_value(), settings.tencent_region,
        _client(settings), settings.tencent_endpoint_url,
    )  # fmt: skip


def _webhook(settings: Settings, kind: Literal["sms", "voice"]) -> WebhookChannel:
    _require(settings, kind, "sms_webhook_url", "sms_webhook_secret")
    assert settings.sms_webhook_url and settings.sms_webhook_secret
    return WebhookChannel(
        settings.sms_webhook_url, settings.sms_webhook_secret.get_secret_value(), kind, settings.sms_language,
        _policy(settings), _client(settings),
    )  # fmt: skip


def build_sms(settings: Settings) -> ClosableChannel | None:
    """The SMS channel, or None when `DISPATCH_SMS_PROVIDER` is unset."""
    if settings.sms_provider == "webhook":
        return _webhook(settings, "sms")
    if settings.sms_provider == "tencent":
        _require(
            settings, "sms", "tencent_sms_sdk_app_id", "tencent_sms_sign_name", "tencent_sms_template_id",
            "tencent_sms_link_prefix",
        )  # fmt: skip
        assert settings.tencent_sms_sdk_app_id and settings.tencent_sms_sign_name
        assert settings.tencent_sms_template_id and settings.tencent_sms_link_prefix
        return TencentSms(
            _tencent(settings, "sms"), settings.tencent_sms_sdk_app_id, settings.tencent_sms_sign_name,
            settings.tencent_sms_template_id, settings.tencent_sms_aed_template_id, settings.sms_language,
            _policy(settings), settings.tencent_sms_link_prefix,
        )  # fmt: skip
    return None


def build_voice(settings: Settings) -> ClosableChannel | None:
    """The voice-call channel, or None when `DISPATCH_VOICE_PROVIDER` is unset."""
    if settings.voice_provider == "webhook":
        return _webhook(settings, "voice")
    if settings.voice_provider == "tencent":
        _require(settings, "voice", "tencent_voice_sdk_app_id", "tencent_voice_template_id")
        assert settings.tencent_voice_sdk_app_id and settings.tencent_voice_template_id
        return TencentVoice(
            _tencent(settings, "voice"), settings.tencent_voice_sdk_app_id,
            settings.tencent_voice_template_id, settings.tencent_voice_play_times,
            settings.sms_language, _policy(settings),
        )  # fmt: skip
    return None
