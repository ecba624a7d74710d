"""Browser clients in calls: ``<Dial><Client>`` and ``To=client:`` ring their tabs, and
a call a tab places runs the TwiML of the application its token names.

The call kinds themselves (:class:`~control_api.calls.browser.ClientCall`,
:class:`~control_api.calls.browser.BrowserOriginatedCall`) live in calls/browser.py.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from control_api.calls.browser import BrowserOriginatedCall, ClientCall
from control_api.voice.lifecycle import base_params
from control_api.voice.twiml_call import (
    document_of,
    follow_child,
    incoming_lifecycle,
    run_call_twiml,
)
from signaling.server import DialRequest

if TYPE_CHECKING:
    from control_api.twiml.verbs import Dial
    from control_api.voice.inbound import VoiceApps
    from control_api.voice.runner import TwimlRunner

__all__ = ["dial_children", "run_browser_call"]

log = logging.getLogger("callswitch.webrtc")

# Webhook parameters a client's own params cannot replace (From must stay client:<identity>).
_RESERVED = frozenset(
    {
        "CallSid",
        "AccountSid",
        "From",
        "To",
        "Caller",
        "Called",
        "Direction",
        "CallStatus",
        "ApiVersion",
        "ApplicationSid",
        "ParentCallSid",
    }
)


async def run_browser_call(voice: VoiceApps, request: DialRequest) -> None:
    """A tab's call: the TwiML of the token's application, From=client:<identity>."""
    context = voice.context
    tab, browser = request.tab, request.call
    account_sid = tab.account_sid
    application = await context.store.applications.get(account_sid, tab.token.application_sid or "")
    token = await context.token_of(account_sid)
    if application is None or not application.voice_url or token is None:
        browser.status("failed")
        log.warning("webrtc.no_application", extra={"call_sid": browser.sid})
        return
    assert context.browsers is not None  # a tab placed this call: WebRTC runs
    call = BrowserOriginatedCall(browser, context.browsers.media)
    caller = f"client:{tab.identity}"
    base = [
        *base_params(
            call_sid=call.sid,
            account_sid=account_sid,
            from_=caller,
            to=request.to,
            direction="inbound",
        ),
        ("ApplicationSid", application.sid),
        *[(k, v) for k, v in request.params.items() if k not in _RESERVED],
    ]
    lifecycle = incoming_lifecycle(
        context,
        call_sid=call.sid,
        account_sid=account_sid,
        to=request.to,
        from_=caller,
        base=base,
        status_callback=application.status_callback,
        status_callback_method=application.status_callback_method,
    )
    await run_call_twiml(
        voice,
        call,
        lifecycle,
        document_of(application),
        account_sid=account_sid,
        token=token,
        final_status=lambda call: "completed" if call.answered else "failed",
        answer_at_once=True,  # Twilio answers a client's call at once: its media flows
        on_final=browser.status,
    )


def dial_children(
    voice: VoiceApps, runner: TwimlRunner, address: str, noun, verb: Dial
) -> list[ClientCall]:
    """``<Dial><Client>``: a child call, with its own Calls record, for each tab rung."""
    context = voice.context
    browsers = context.browsers
    if browsers is None:
        return []
    parent = runner.call
    params = dict(runner.params())
    caller_id = verb.caller_id or params.get("From") or "anonymous"
    leg = getattr(parent, "leg", None)
    # PCMU toward a PCMU caller (or one not answered yet: most trunks and phones are).
    prefer_pcmu = leg is None or leg.codec.upper() == "PCMU"
    calls = browsers.calls_to(
        runner.account_sid, address, from_=caller_id, timeout=verb.timeout, prefer_pcmu=prefer_pcmu
    )
    for call in calls:
        follow_child(
            context,
            call,
            account_sid=runner.account_sid,
            parent_sid=parent.sid,
            to=address,
            caller_id=caller_id,
            noun=noun,
        )
    return calls
