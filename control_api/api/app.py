"""The Twilio-compatible REST API (version 2010-04-01) as one FastAPI application."""

from __future__ import annotations

from fastapi import FastAPI

from control_api.api import accounts, calls, phone_numbers
from control_api.api.calls import LiveCalls
from control_api.errors import install_error_handlers
from control_api.store import Store

__all__ = ["create_app"]


def create_app(store: Store, live_calls: LiveCalls) -> FastAPI:
    """The REST API over ``store``, acting on live calls through ``live_calls``.

    Every answer, errors included, is JSON in Twilio's shape; there are no
    documentation routes.
    """
    app = FastAPI(
        title="callswitch REST API",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.store = store
    app.state.live_calls = live_calls
    install_error_handlers(app)
    for resource in (accounts, phone_numbers, calls):
        app.include_router(resource.router)
    return app
