"""Browser clients in calls: ``<Dial><Client>`` and ``To=client:`` ring their tabs, and
a call a tab places runs the TwiML of the application its token names.

The signaling plane (signaling/server.py) knows tabs, legs and the JSON protocol;
this module gives its calls the shape the rest of the control plane expects:
:class:`ClientCall` looks like an :class:`~control_api.outbound_call.OutboundCall`
to ``<Dial>`` and the REST API, :class:`BrowserOriginatedCall` like an inbound
:class:`~control_api.call.Call` to the TwiML runner.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from control_api.call import CallTimes, MediaSettings, new_call_sid
from control_api.store.webrtc import get_application
from control_api.voice.lifecycle import base_params
from control_api.voice.twiml_call import (
    document_of,
    follow_child,
    incoming_lifecycle,
    run_call_twiml,
)
from signaling.server import BrowserCall, DialRequest, SignalingServer, Tab

if TYPE_CHECKING:
    from control_api.twiml.verbs import Dial
    from control_api.voice.inbound import VoiceApps
    from control_api.voice.runner import TwimlRunner

__all__ = ["BrowserClients", "BrowserOriginatedCall", "ClientCall", "run_browser_call"]

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


class ClientCall(CallTimes):
    """Ringing one browser tab; ``await call.connect()`` says whether it answered."""

    direction = "outbound-dial"

    def __init__(
        self,
        server: SignalingServer,
        tab: Tab,
        media: MediaSettings,
        *,
        from_: str,
        to: str,
        timeout: float = 60.0,
        prefer_pcmu: bool = True,
        sid: str | None = None,
    ) -> None:
        self.sid = sid or new_call_sid()
        self.server = server
        self.tab = tab
        self.media = media
        self.from_ = from_
        self.to = to
        self.timeout = timeout
        self.prefer_pcmu = prefer_pcmu
        self.leg = None
        self.browser: BrowserCall | None = None
        self.ended = asyncio.Event()
        self.ringing = asyncio.Event()
        self.start_time = time.time()
        self.answer_time: float | None = None
        self.end_time: float | None = None
        self.canceled = False
        self.failure = "no-answer"
        self.on_answered: list[Callable[[ClientCall], None]] = []
        self.on_ringing: list[Callable[[ClientCall], None]] = []
        self._outcome: asyncio.Future[bool] | None = None

    @property
    def call_id(self) -> str:
        return self.sid

    async def answer(self) -> bool:
        return self.answered and not self.ended.is_set()

    async def connect(self) -> bool:
        if self._outcome is None:
            self._outcome = asyncio.ensure_future(self._connect())
        return await asyncio.shield(self._outcome)

    async def _connect(self) -> bool:
        if self.ended.is_set():
            return False
        try:
            browser = await self.server.ring(
                self.tab, from_=self.from_, to=self.to, prefer_pcmu=self.prefer_pcmu, sid=self.sid
            )
        except Exception:
            log.exception("webrtc.ring_failed", extra={"call_sid": self.sid})
            self.failure = "failed"
            self._finish()
            return False
        self.browser = browser
        browser.on_ended.append(lambda _: self._finish())
        if self.ended.is_set():  # canceled while the offer was made
            browser.cancel()
            return False
        self.ringing.set()
        for callback in self.on_ringing:
            callback(self)
        self.log("call.dialing", to=f"client:{self.tab.identity}")
        try:
            accepted = await asyncio.wait_for(asyncio.shield(browser.accepted), self.timeout)
        except TimeoutError:
            browser.cancel("no-answer")
            return False
        if not accepted or browser.ended.is_set():
            if browser.end_reason == "rejected":
                self.failure = "busy"  # Twilio reports a declined client call as busy
            self._finish()
            return False
        self.answer_time = time.time()
        self.leg = browser.leg
        browser.status("in-progress")
        self.log("call.answered", codec=browser.leg.browser_codec)
        for callback in self.on_answered:
            callback(self)
        return True

    def cancel(self) -> None:
        if self.answered:
            return
        self.canceled = True
        if self.browser is not None:
            self.browser.cancel()
        self._finish()

    def hangup(self) -> None:
        if self.browser is not None:
            self.browser.hangup()
        self._finish()

    reject = hangup

    @property
    def status(self) -> str:
        if self.ended.is_set():
            if self.answered:
                return "completed"
            return "canceled" if self.canceled else self.failure
        if self.answered:
            return "in-progress"
        return "ringing" if self.ringing.is_set() else "queued"

    def _finish(self) -> None:
        if self.ended.is_set():
            return
        self.end_time = time.time()
        self.ended.set()
        self.log("call.ended", status=self.status, duration=round(self.duration, 3))


class BrowserOriginatedCall(CallTimes):
    """A call a tab placed, as the TwiML runner sees a call: its media is up already."""

    def __init__(self, browser: BrowserCall, media: MediaSettings) -> None:
        self.sid = browser.sid
        self.browser = browser
        self.media = media
        self.leg = browser.leg
        self.session = None
        self.ended = asyncio.Event()
        self.answer_time: float | None = None
        self.end_time: float | None = None
        self.end_reason = None
        self.reject_status: int | None = None
        self.on_answered: list[Callable[[BrowserOriginatedCall], None]] = []
        browser.on_ended.append(lambda _: self._finish())

    @property
    def call_id(self) -> str:
        return self.sid

    def ring(self) -> None:
        self.browser.status("ringing")

    async def answer(self) -> bool:
        if self.ended.is_set():
            return False
        if self.answer_time is None:
            self.answer_time = time.time()
            self.browser.status("in-progress")
            for callback in self.on_answered:
                callback(self)
        return True

    def hangup(self) -> None:
        self.browser.hangup()

    def reject(self, status: int) -> None:
        self.reject_status = status
        self.browser.hangup("busy" if status == 486 else "rejected")

    def _finish(self) -> None:
        if not self.ended.is_set():
            self.end_time = time.time()
            self.ended.set()


class BrowserClients:
    """Where the voice plane meets the signaling server."""

    def __init__(self, server: SignalingServer, media: MediaSettings) -> None:
        self.server = server  # its on_dial is the voice runtime's (VoiceApps)
        self.media = media

    def calls_to(
        self,
        account_sid: str,
        address: str,
        *,
        from_: str,
        timeout: float,
        prefer_pcmu: bool = True,
        sid: str | None = None,
    ) -> list[ClientCall]:
        """A ClientCall for every tab ``client:identity`` rings (none for other addresses)."""
        scheme, colon, identity = address.strip().partition(":")
        if not colon or scheme.lower() != "client":
            return []
        return [
            ClientCall(
                self.server,
                tab,
                self.media,
                from_=from_,
                to=address,
                timeout=timeout,
                prefer_pcmu=prefer_pcmu,
                sid=sid,
            )
            for tab in self.server.tabs(account_sid, identity)
        ]


async def run_browser_call(voice: VoiceApps, request: DialRequest) -> None:
    """A tab's call: the TwiML of the token's application, From=client:<identity>."""
    context = voice.context
    tab, browser = request.tab, request.call
    account_sid = tab.account_sid
    application = await get_application(context.store, account_sid, tab.token.application_sid or "")
    token = await context.token_of(account_sid)
    if application is None or not application.voice_url or token is None:
        browser.status("failed")
        log.warning("webrtc.no_application", extra={"call_sid": browser.sid})
        return
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
