"""What the routes take from the application's state (set by ``create_app``)."""

from __future__ import annotations

from fastapi import Request

from control_api.store import Store

__all__ = ["store_of"]


def store_of(request: Request) -> Store:
    """The store the application was created with."""
    store: Store = request.app.state.store
    return store
