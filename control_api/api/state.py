"""What the routes take from the application's state (set by ``create_app``)."""

from __future__ import annotations

from fastapi import Request

from control_api.store import Store
from control_api.voice.port import LiveCalls

__all__ = ["live_calls_of", "store_of"]


def store_of(request: Request) -> Store:
    """The store the application was created with."""
    store: Store = request.app.state.store
    return store


def live_calls_of(request: Request) -> LiveCalls:
    """The engine's live calls the application was created with."""
    live: LiveCalls = request.app.state.live_calls
    return live
