"""Inbound calls to phone numbers: Calls records, webhooks and status callbacks.

A call whose Request-URI user is one of our numbers runs the TwiML of that
number's ``VoiceUrl``. Its record in the store follows it (ringing,
in-progress, then a final status with duration), and each change is posted to
the number's ``StatusCallback`` through the durable outbox.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from control_api.call import Call
from control_api.sids import rfc2822
from control_api.store import CallRecord
from control_api.voice.lookup import Lookup
from control_api.voice.runner import Document, TwimlRunner, VoiceServices
from control_api.webhooks import Outbox, WebhookClient
from sip.invite import EndReason

__all__ = ["VoiceApps"]

log = logging.getLogger("callswitch.voice")

API_VERSION = "2010-04-01"
PHONE = re.compile(r"\+?\d{3,15}")


def _now() -> datetime:
    return datetime.now(UTC)


def caller_address(call: Call) -> str:
    """The caller as Twilio shows it: E.164 for a number, else the SIP URI."""
    uri = call.session.request.from_.uri
    user = uri.user or ""
    if PHONE.fullmatch(user):
        return user if user.startswith("+") else "+" + user
    return f"sip:{user}@{uri.host}" if user else f"sip:{uri.host}"


def final_status(call: Call) -> str:
    """The Calls resource status once the call is over (reference §2)."""
    if call.answered:
        return "completed"
    if call.reject_status == 486:
        return "busy"
    if call.reject_status == 603 or call.end_reason is EndReason.CANCELLED:
        return "no-answer"  # <Reject reason="rejected">, or the caller gave up ringing
    return "failed"


class _Journal:
    """One call's store writes and callbacks: in order, each after the one before."""

    def __init__(self) -> None:
        self._last: asyncio.Future | None = None

    def add(self, write: Callable[[], Awaitable[object]]) -> None:
        previous = self._last

        async def step() -> None:
            if previous is not None:
                await previous
            try:
                await write()
            except Exception:  # a failed write must not stop the ones after it
                log.exception("voice.journal_write_failed")

        self._last = asyncio.ensure_future(step())

    async def flush(self) -> None:
        if self._last is not None:
            await self._last


@dataclass(slots=True)
class _LiveCall:
    call: Call
    runner: TwimlRunner
    account_sid: str


class VoiceApps:
    """Runs inbound calls to numbers; also the ``LiveCalls`` the REST API drives."""

    def __init__(
        self,
        store,
        client: WebhookClient,
        outbox: Outbox,
        synthesize: Callable[[str, str, str], Awaitable[object]],
        load_audio: Callable[[str], Awaitable[object]],
    ) -> None:
        self.store = store
        self.client = client
        self.outbox = outbox
        self.synthesize = synthesize
        self.load_audio = load_audio
        self.live: dict[str, _LiveCall] = {}
        # A REST change to a number or a token reaches calls within a second.
        self._numbers = Lookup(store.find_number, fresh=1.0)
        self._tokens = Lookup(store.auth_token, fresh=1.0)

    async def app_for(self, user: str):
        """The app for a call to ``user``, or None when it is not one of our numbers."""
        if not PHONE.fullmatch(user):
            return None
        number = await self._numbers.get(user)
        if number is None or not number.voice_url:
            return None
        return functools.partial(self.run_call, number)

    async def run_call(self, number, call: Call) -> None:
        token = await self._tokens.get(number.account_sid)
        if token is None:
            call.reject(404)
            return
        account_sid = number.account_sid
        journal = _Journal()
        status = {"value": "ringing", "sequence": 0}
        session = call.session
        base = [
            ("CallSid", call.sid),
            ("AccountSid", account_sid),
            ("From", caller_address(call)),
            ("To", number.phone_number),
            ("ApiVersion", API_VERSION),
            ("Direction", "inbound"),
            ("ForwardedFrom", ""),
            ("CallerName", ""),
            ("ParentCallSid", ""),
            ("Called", number.phone_number),
            ("Caller", caller_address(call)),
            ("FromCity", ""),
            ("FromState", ""),
            ("FromZip", ""),
            ("FromCountry", ""),
            ("ToCity", ""),
            ("ToState", ""),
            ("ToZip", ""),
            ("ToCountry", ""),
            ("SipCallId", session.call_id),
            *[
                (f"SipHeader_{name}", value)
                for name, value in session.request.headers
                if name.lower().startswith("x-")
            ],
        ]

        def params() -> list[tuple[str, str]]:
            return [*base, ("CallStatus", status["value"])]

        async def callback(call_status: str, **extra: str) -> None:
            if not number.status_callback:
                return
            fields = [
                *base,
                ("CallStatus", call_status),
                ("Timestamp", rfc2822(_now())),
                ("CallbackSource", "call-progress-events"),
                ("SequenceNumber", str(status["sequence"])),
                *extra.items(),
            ]
            status["sequence"] += 1
            await self.outbox.enqueue(
                account_sid=account_sid,
                url=number.status_callback,
                method=number.status_callback_method or "POST",
                params=fields,
                call_sid=call.sid,
            )

        now = _now()
        # The record and the callbacks are written in order but off the call's path:
        # the caller hears the application while the store catches up.
        journal.add(
            lambda: self.store.insert_call(
                CallRecord(
                    sid=call.sid,
                    account_sid=account_sid,
                    parent_call_sid=None,
                    to=number.phone_number,
                    from_=caller_address(call),
                    phone_number_sid=number.sid,
                    status="ringing",
                    direction="inbound",
                    start_time=now,
                    end_time=None,
                    duration=None,
                    price=None,
                    price_unit="USD",
                    answered_by=None,
                    forwarded_from=None,
                    caller_name=None,
                    sip_call_id=session.call_id,
                    date_created=now,
                    date_updated=now,
                )
            )
        )
        journal.add(lambda: callback("initiated"))
        journal.add(lambda: callback("ringing"))

        async def answered() -> None:
            await self.store.update_call(call.sid, status="in-progress", date_updated=_now())
            await callback("in-progress")

        def on_answered(_: Call) -> None:
            status["value"] = "in-progress"
            journal.add(answered)

        call.on_answered.append(on_answered)

        async def fetch(url: str, method: str, fields: list[tuple[str, str]]) -> str:
            return await self.client.fetch_twiml(url, method, fields, token)

        services = VoiceServices(fetch, self.synthesize, self.load_audio)
        runner = TwimlRunner(call, services, params)
        self.live[call.sid] = _LiveCall(call, runner, account_sid)
        try:
            runner.start(
                Document(
                    number.voice_url,
                    number.voice_method or "POST",
                    fallback_url=number.voice_fallback_url,
                    fallback_method=number.voice_fallback_method or "POST",
                )
            )
            await runner.wait()
        finally:
            del self.live[call.sid]
            if not call.ended.is_set():
                call.hangup()
            status["value"] = final_status(call)
            end = _now()
            duration = str(round(call.duration))

            async def finished() -> None:
                await self.store.update_call(
                    call.sid,
                    status=status["value"],
                    end_time=end,
                    duration=int(duration),
                    date_updated=end,
                )
                await callback(status["value"], CallDuration=duration, Duration=duration)

            journal.add(finished)
            await journal.flush()
            call.log("call.completed", status=status["value"], errors=len(runner.errors))

    # -- LiveCalls, for the REST API

    def _find(self, account_sid: str, sid: str) -> _LiveCall | None:
        live = self.live.get(sid)
        return live if live is not None and live.account_sid == account_sid else None

    async def hangup(self, account_sid: str, sid: str) -> bool:
        live = self._find(account_sid, sid)
        if live is None:
            return False
        live.call.hangup()
        return True

    async def cancel(self, account_sid: str, sid: str) -> bool:
        live = self._find(account_sid, sid)
        if live is None or live.call.answered:
            return False
        live.call.reject(487)
        return True

    async def redirect(
        self,
        account_sid: str,
        sid: str,
        *,
        url: str | None = None,
        method: str = "POST",
        twiml: str | None = None,
    ) -> bool:
        live = self._find(account_sid, sid)
        if live is None or live.call.ended.is_set():
            return False
        live.runner.redirect(Document(url, method or "POST", twiml=twiml))
        return True
