"""Inbound calls to phone numbers: Calls records, webhooks and status callbacks.

A call whose Request-URI user is one of our numbers runs the TwiML of that
number's ``VoiceUrl``. Its record in the store follows it (ringing,
in-progress, then a final status with duration), and each change is posted to
the number's ``StatusCallback`` through the durable outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from control_api.calls.call import Call
from control_api.calls.leg import CallLeg
from control_api.calls.outbound_call import OutboundCall
from control_api.twiml.verbs import Dial, Stream
from control_api.voice import outbound
from control_api.voice.browser import run_browser_call
from control_api.voice.conference import Conferences
from control_api.voice.context import VoiceContext
from control_api.voice.lifecycle import CallLifecycle, base_params
from control_api.voice.port import StreamInfo
from control_api.voice.recording import CallRecording
from control_api.voice.runner import Document, TwimlRunner, VoiceServices
from control_api.voice.twiml_call import document_of, incoming_lifecycle, run_call_twiml
from sip.invite import EndReason

__all__ = ["VoiceApps"]

log = logging.getLogger("callswitch.voice")

PHONE = re.compile(r"\+?\d{3,15}")
# How long a REST hangup or cancel waits for the call's final record before answering.
SETTLE_TIMEOUT_S = 5.0


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


@dataclass(slots=True)
class _LiveCall:
    call: CallLeg
    runner: TwimlRunner | None
    account_sid: str


class VoiceApps:
    """Runs inbound calls to numbers; also the ``LiveCalls`` the REST API drives."""

    def __init__(self, context: VoiceContext) -> None:
        self.context = context
        self.live: dict[str, _LiveCall] = {}
        # Calls the REST API ended, until their final record is written (``settled``).
        self._ending: dict[str, asyncio.Event] = {}
        if context.browsers is not None:  # a browser tab's own calls run here
            context.browsers.server.on_dial = functools.partial(run_browser_call, self)

    @property
    def conferences(self) -> Conferences | None:
        return self.context.conferences

    async def app_for(self, user: str):
        """The app for a call to ``user``, or None when it is not one of our numbers."""
        if not PHONE.fullmatch(user):
            return None
        number = await self.context.numbers.get(user)
        if number is None or not number.voice_url:
            return None
        billing = self.context.billing
        if billing is not None and await billing.is_spent(number.account_sid):
            # Twilio turns such calls away unanswered (error 10003, inactive account).
            return _refuse_spent
        return functools.partial(self.run_call, number)

    async def run_call(self, number, call: Call) -> None:
        token = await self.context.token_of(number.account_sid)
        if token is None:
            call.reject(404)
            return
        account_sid = number.account_sid
        session = call.session
        caller = caller_address(call)
        base = [
            *base_params(
                call_sid=call.sid,
                account_sid=account_sid,
                from_=caller,
                to=number.phone_number,
                direction="inbound",
            ),
            ("SipCallId", session.call_id),
            *[
                (f"SipHeader_{name}", value)
                for name, value in session.request.headers
                if name.lower().startswith("x-")
            ],
        ]
        # The record and the callbacks are written in order but off the call's path:
        # the caller hears the application while the store catches up.
        lifecycle = incoming_lifecycle(
            self.context,
            call_sid=call.sid,
            account_sid=account_sid,
            to=number.phone_number,
            from_=caller,
            base=base,
            status_callback=number.status_callback,
            status_callback_method=number.status_callback_method,
            phone_number_sid=number.sid,
            sip_call_id=session.call_id,
        )
        await run_call_twiml(
            self,
            call,
            lifecycle,
            document_of(number),
            account_sid=account_sid,
            token=token,
            final_status=final_status,
        )

    def runner_for(self, call, account_sid: str, token: str, lifecycle: CallLifecycle):
        """A TwiML runner for ``call``, fetching with the account's signature."""

        async def fetch(url: str, method: str, fields: list[tuple[str, str]]) -> str:
            await lifecycle.recorded()
            return await self.context.webhooks.fetch_twiml(url, method, fields, token)

        context = self.context
        services = VoiceServices(fetch, context.synthesize, context.load_audio, voice=self)
        return TwimlRunner(call, services, lifecycle.params, account_sid=account_sid)

    # -- calls we place

    def track(self, call, runner: TwimlRunner | None, account_sid: str) -> None:
        self.live[call.sid] = _LiveCall(call, runner, account_sid)

    def untrack(self, sid: str) -> None:
        self.live.pop(sid, None)

    def settled(self, sid: str) -> None:
        """The call's final status is in the store: a REST update ending it may answer."""
        ending = self._ending.get(sid)
        if ending is not None:
            ending.set()

    async def _end(self, sid: str, end: Callable[[], object]) -> None:
        """End a live call and wait (briefly) for its final record, so that the REST
        answer, like Twilio's, already shows the call completed or canceled."""
        ending = self._ending.setdefault(sid, asyncio.Event())
        try:
            end()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ending.wait(), SETTLE_TIMEOUT_S)
        finally:
            self._ending.pop(sid, None)

    def live_of(self, account_sid: str) -> list[_LiveCall]:
        """The account's calls in progress (the console's live view)."""
        return [live for live in self.live.values() if live.account_sid == account_sid]

    def child_call(self, runner, destination, noun, verb):
        return outbound.child_call(self, runner, destination, noun, verb)

    def dial_recorder(self, runner, child, verb: Dial) -> CallRecording | None:
        """The recording of a ``<Dial record=...>`` once the callee answered."""
        if not verb.record.startswith("record-from"):
            return None
        return CallRecording(
            self.context,
            account_sid=runner.account_sid,
            call_sid=runner.call.sid,
            source="DialVerb",
            channels=2,
            mix_to_mono=not verb.record.endswith("-dual"),
            trim_silence=verb.trim == "trim-silence",
            status_callback=verb.recording_status_callback,
            status_callback_method=verb.recording_status_callback_method,
            status_callback_events=verb.recording_status_callback_event,
            clock=runner.call.media.clock,
        )

    async def join_conference(self, runner, conference):
        return await self.context.conferences.join(runner, conference)

    # -- LiveCalls, for the REST API

    async def create(self, account_sid: str, new_call):
        return await outbound.place_call(self, account_sid, new_call)

    def _find(self, account_sid: str, sid: str) -> _LiveCall | None:
        live = self.live.get(sid)
        return live if live is not None and live.account_sid == account_sid else None

    async def hangup(self, account_sid: str, sid: str) -> bool:
        live = self._find(account_sid, sid)
        if live is None:
            return False
        await self._end(sid, live.call.hangup)
        return True

    async def cancel(self, account_sid: str, sid: str) -> bool:
        live = self._find(account_sid, sid)
        if live is None or live.call.answered:
            return False
        if isinstance(live.call, OutboundCall):
            await self._end(sid, live.call.cancel)
        else:
            await self._end(sid, lambda: live.call.reject(487))
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
        if live is None or live.runner is None or live.call.ended.is_set():
            return False
        live.runner.redirect(Document(url, method or "POST", twiml=twiml))
        return True

    async def start_stream(self, account_sid: str, sid: str, new_stream):
        """The Streams resource: fork a live, answered call's audio (voice/stream.py);
        None (21220) while it rings or once it ended."""
        live = self._find(account_sid, sid)
        if live is None or live.runner is None or live.call.ended.is_set():
            return None
        if not live.call.answered:  # a ringing call has no audio to fork yet
            return None
        fork = live.runner.forks.start(
            Stream(
                url=new_stream.url,
                name=new_stream.name,
                track=new_stream.track,
                status_callback=new_stream.status_callback,
                status_callback_method=new_stream.status_callback_method,
                parameters=new_stream.parameters,
            )
        )
        return _stream_info(fork)

    async def stop_stream(self, account_sid: str, sid: str, sid_or_name: str):
        live = self._find(account_sid, sid)
        if live is None or live.runner is None:
            return None
        fork = live.runner.forks.find(sid_or_name)
        if fork is None:
            raise LookupError(sid_or_name)
        return _stream_info(await live.runner.forks.stop(fork))


def _stream_info(fork) -> StreamInfo:
    return StreamInfo(fork.sid, fork.name, fork.status, fork.date_updated)


async def _refuse_spent(call) -> None:
    """An inbound call to an account whose balance is spent: 403, never answered."""
    call.reject(403)
