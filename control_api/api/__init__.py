"""The Twilio-compatible REST API: ``create_app(store, live_calls)``."""

from control_api.api.app import create_app
from control_api.voice.port import LiveCalls

__all__ = ["LiveCalls", "create_app"]
