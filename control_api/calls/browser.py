"""Browser tabs as calls: ringing a tab (:class:`ClientCall`), a call a tab placed
(:class:`BrowserOriginatedCall`), and :class:`BrowserClients`, which finds the
tabs an address rings.

The signaling plane (signaling/server.py) knows tabs, legs and the JSON protocol;
this module gives its calls the call-leg shape (calls/leg.py) the rest of the
control plane expects: a :class:`ClientCall` rings and connects like an
:class:`~control_api.calls.outbound_call.OutboundCall`, a
:class:`BrowserOriginatedCall` is answered like an inbound
:class:`~control_api.calls.call.Call`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import KW_ONLY, InitVar, dataclass

from control_api.calls.call import CallTimes, MediaSettings
from control_api.calls.leg import Placing
from signaling.server import BrowserCall, SignalingServer, Tab
from signaling.webrtc_leg import WebRtcLeg

__all__ = ["BrowserClients", "BrowserOriginatedCall", "ClientCall"]

log = logging.getLogger("callswitch.webrtc")


@dataclass(eq=False)
class ClientCall(Placing):
    """Ringing one browser tab; ``await call.connect()`` says whether it answered."""

    direction = "outbound-dial"

    server: SignalingServer
    tab: Tab
    media: MediaSettings
    _: KW_ONLY
    from_: str
    to: str
    timeout: float = 60.0
    prefer_pcmu: bool = True
    params: dict[str, str] | None = None  # <Client><Parameter>: the SDK's customParameters
    call_sid: InitVar[str | None] = None  # the Calls SID (a REST call's own), else a new one

    def __post_init__(self, call_sid: str | None) -> None:
        self._start(call_sid)
        self.leg: WebRtcLeg | None = None
        self.browser: BrowserCall | None = None
        self.failure = "no-answer"

    @property
    def call_id(self) -> str:
        return self.sid

    async def _connect(self) -> bool:
        if self.ended.is_set():
            return False
        try:
            browser = await self.server.ring(
                self.tab,
                from_=self.from_,
                to=self.to,
                prefer_pcmu=self.prefer_pcmu,
                sid=self.sid,
                params=self.params,
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

    def _stop_ringing(self) -> None:
        if self.browser is not None:
            self.browser.cancel()
        self._finish()

    def hangup(self) -> None:
        if self.browser is not None:
            self.browser.hangup()
        self._finish()

    reject = hangup

    def _failure(self) -> str:
        return self.failure

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
        params: dict[str, str] | None = None,
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
                call_sid=sid,
                params=params,
            )
            for tab in self.server.tabs(account_sid, identity)
        ]
