"""Inbound calls to phone numbers: Calls records, webhooks and status callbacks.

A call whose Request-URI user is one of our numbers runs the TwiML of that
number's ``VoiceUrl``. Its record in the store follows it (ringing,
in-progress, then a final status with duration), and each change is posted to
the number's ``StatusCallback`` through the durable outbox.
"""

from __future__ import annotations

import functools
import logging
import re

from control_api.calls.call import Call
from control_api.twiml.verbs import Dial
from control_api.voice import outbound
from control_api.voice.browser import run_browser_call
from control_api.voice.conference import Conferences
from control_api.voice.context import VoiceContext
from control_api.voice.lifecycle import CallLifecycle, base_params
from control_api.voice.live import LiveCallTable
from control_api.voice.recording import CallRecording
from control_api.voice.runner import TwimlRunner, VoiceServices
from control_api.voice.twiml_call import document_of, incoming_lifecycle, run_call_twiml
from sip.invite import EndReason

__all__ = ["VoiceApps"]

log = logging.getLogger("callswitch.voice")

PHONE = re.compile(r"\+?\d{3,15}")


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


class VoiceApps:
    """The voice runtime: routes calls to our numbers, makes each call's TwiML runner,
    and serves ``<Dial>`` (child calls, recordings, conferences). Its calls in progress
    are in ``live_calls``; the REST API reaches them through :class:`LocalLiveCalls`."""

    def __init__(self, context: VoiceContext) -> None:
        self.context = context
        self.live_calls = LiveCallTable()  # this node's calls in progress
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
        conferences = self.context.conferences
        assert conferences is not None  # the composition root always builds them
        return await conferences.join(runner, conference)


async def _refuse_spent(call) -> None:
    """An inbound call to an account whose balance is spent: 403, never answered."""
    call.reject(403)
