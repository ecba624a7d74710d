"""The Twilio-compatible REST API (version 2010-04-01) as one FastAPI application."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from control_api.api import (
    accounts,
    applications,
    balance,
    caller_ids,
    calls,
    conferences,
    ip_access_control,
    keys,
    live_recordings,
    message_media,
    messages,
    notifications,
    participants,
    phone_number_types,
    phone_numbers,
    queues,
    realtime_transcriptions,
    recordings,
    signing_keys,
    sip_credentials,
    sip_domain_mappings,
    sip_domains,
    streams,
    tokens,
    transcriptions,
    usage,
)
from control_api.api.conferences import LiveConferences
from control_api.api.fast_path import MessagesFastPath
from control_api.api.tokens import IceServers
from control_api.errors import install_error_handlers
from control_api.store import Store
from control_api.voice.port import LiveCalls, Unavailable
from control_api.voice.validation import CallerIdValidations

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
    caller_id_validations: CallerIdValidations | None = None,
    verified_caller_ids: bool = False,
) -> FastAPI:
    """The REST API over ``store``, acting on live calls through ``live_calls``.

    ``live_conferences`` acts on live conferences (without it none is live);
    ``recordings_dir`` holds the recordings' audio files (without it none is served).
    ``ice_servers`` is the TURN relay the Tokens resource hands out (without it, 404).
    ``messaging`` (``control_api.sms.service.Messaging``) sends messages and
    ``billing`` (``control_api.usage.billing.Billing``) prices usage; without them the
    Messages and Usage resources answer 501. ``caller_id_validations`` places the calls
    that verify caller IDs (without it, ``POST OutgoingCallerIds.json`` answers 501);
    ``verified_caller_ids`` makes ``POST Calls.json`` take only a ``From`` number of the
    account's or one of its verified caller IDs (21210).

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
    app.state.caller_id_validations = caller_id_validations
    app.state.verified_caller_ids = verified_caller_ids
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
        realtime_transcriptions,
        recordings,
        live_recordings,
        notifications,
        conferences,
        participants,
        queues,
        sip_credentials,
        sip_domains,
        sip_domain_mappings,
        ip_access_control,
        tokens,
        message_media,
        messages,
        transcriptions,
        caller_ids,
        usage,
        balance,
        keys,
        signing_keys,
        applications,
    ):
        app.include_router(resource.router)
    return app
