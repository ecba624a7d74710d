"""A call a browser tab places: it runs the TwiML of the application its token names.

The call kinds themselves (:class:`~control_api.calls.browser.ClientCall`,
:class:`~control_api.calls.browser.BrowserOriginatedCall`) live in calls/browser.py;
``<Dial><Client>`` rings tabs as child calls (children.py).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from control_api.calls.browser import BrowserOriginatedCall
from control_api.voice.twiml_call import run_offered_call
from signaling.server import DialRequest

if TYPE_CHECKING:
    from control_api.voice.runtime import VoiceRuntime

__all__ = ["run_browser_call"]

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


async def run_browser_call(runtime: VoiceRuntime, request: DialRequest) -> None:
    """A tab's call: the TwiML of the token's application, From=client:<identity>."""
    context = runtime.context
    tab, browser = request.tab, request.call
    account_sid = tab.account_sid
    application = await context.store.applications.get(account_sid, tab.token.application_sid or "")
    token = await context.token_of(account_sid)
    if application is None or not application.voice_url or token is None:
        browser.status("failed")
        log.warning("webrtc.no_application", extra={"call_sid": browser.sid})
        return
    assert context.browsers is not None  # a tab placed this call: WebRTC runs
    await run_offered_call(
        runtime,
        BrowserOriginatedCall(browser, context.browsers.media),
        application,
        token=token,
        caller=f"client:{tab.identity}",
        to=request.to,
        params=[
            ("ApplicationSid", application.sid),
            *[(k, v) for k, v in request.params.items() if k not in _RESERVED],
        ],
        final_status=lambda call: "completed" if call.answered else "failed",
        answer_at_once=True,  # Twilio answers a client's call at once: its media flows
        on_final=browser.status,
    )
