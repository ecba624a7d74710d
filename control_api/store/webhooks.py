"""The voice webhooks a phone number or a TwiML application names (the columns of
``schema._voice_webhooks``): where its calls get their TwiML and where their status
goes, as record fields and with the defaults of a new one."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["VOICE_WEBHOOK_DEFAULTS", "VoiceWebhooks"]


@dataclass(slots=True, kw_only=True)
class VoiceWebhooks:
    """A call's TwiML comes from ``voice_url``, from ``voice_fallback_url`` when that
    fails; its status goes to ``status_callback``. A URL of None is not set."""

    voice_url: str | None
    voice_method: str
    voice_fallback_url: str | None
    voice_fallback_method: str
    status_callback: str | None
    status_callback_method: str


# What a new number or application has unless told otherwise.
VOICE_WEBHOOK_DEFAULTS: dict[str, str | None] = {
    "voice_url": None,
    "voice_method": "POST",
    "voice_fallback_url": None,
    "voice_fallback_method": "POST",
    "status_callback": None,
    "status_callback_method": "POST",
}
