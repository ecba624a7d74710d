"""The Twilio-compatible REST API (version 2010-04-01) as one FastAPI application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from control_api.api import (
    accounts,
    applications,
    balance,
    calls,
    conferences,
    ip_access_control,
    keys,
    live_recordings,
    messages,
    participants,
    phone_number_types,
    phone_numbers,
    queues,
    recordings,
    signing_keys,
    sip_credentials,
    sip_domain_mappings,
    sip_domains,
    streams,
    tokens,
    usage,
)
from control_api.api.conferences import LiveConferences
from control_api.api.fast_path import MessagesFastPath
from control_api.api.tokens import IceServers
from control_api.errors import install_error_handlers
from control_api.store import Store
from control_api.voice.port import LiveCalls, Unavailable

__all__ = ["create_app"]


def create_app(
    store: Store,
    live_calls: LiveCalls,
    *,
    live_conferences: LiveConferences | None = None,
    recordings_dir: str | Path | None = None,
    ice_servers: IceServers | None = None,
    messaging=None,
    billing=None,
) -> FastAPI:
    """The REST API over ``store``, acting on live calls through ``live_calls``.

    ``live_conferences`` acts on live conferences (without it none is live);
    ``recordings_dir`` holds the recordings' audio files (without it none is served).
    ``ice_servers`` is the TURN relay the Tokens resource hands out (without it, 404).
    ``messaging`` (``control_api.sms.service.Messaging``) sends messages and
    ``billing`` (``control_api.usage.billing.Billing``) prices usage; without them the
    Messages and Usage resources answer 501.

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
    app.state.live_conferences = live_conferences
    app.state.recordings_dir = Path(recordings_dir) if recordings_dir is not None else None
    app.state.ice_servers = ice_servers
    app.state.messaging = messaging
    app.state.billing = billing
    install_error_handlers(app)
    app.add_exception_handler(Unavailable, calls.unavailable)  # the voice port's 20503
    # POST Messages.json without FastAPI's routing: same auth and endpoint (fast_path.py).
    app.add_middleware(MessagesFastPath)
    for resource in (
        accounts,
        phone_number_types,  # before phone_numbers: IncomingPhoneNumbers/Local.json
        phone_numbers,
        calls,
        streams,
        recordings,
        live_recordings,
        conferences,
        participants,
        queues,
        sip_credentials,
        sip_domains,
        sip_domain_mappings,
        ip_access_control,
        tokens,
        messages,
        usage,
        balance,
        keys,
        signing_keys,
        applications,
    ):
        app.include_router(resource.router)
    return app
