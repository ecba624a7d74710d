"""Inbound calls to phone numbers: Calls records, webhooks and status callbacks.

A call whose Request-URI user is one of our numbers runs the TwiML of that
number's ``VoiceUrl``; a call from a trunk (control_api/calls/inbound_trunk.py)
runs the TwiML of the number it dialled, where the trunk's ``did`` says (the
Request-URI, ``To`` or a header, read with the trunk's national rules), and shows
that number as ``To``/``Called``. Its caller (``From``/``Caller``, ``CallerName``,
``ForwardedFrom``) is what the carrier asserted, read with the rules of the trunk
it came from (caller_identity.py). Its record in the store follows it (ringing,
in-progress, then a final status with duration), and each change is posted to
the number's ``StatusCallback`` through the durable outbox.
"""

from __future__ import annotations

import functools
import logging
import re

from control_api.calls.call import Call
from control_api.calls.caller_identity import caller_identity
from control_api.calls.inbound_trunk import InboundTrunks, dialled_number, number_in
from control_api.calls.numbers import carrier_number
from control_api.calls.trunks import Trunk
from control_api.voice.context import is_our_number
from control_api.voice.runtime import VoiceRuntime
from control_api.voice.twiml_call import run_offered_call
from sip.invite import EndReason, InviteSession

__all__ = ["VoiceApps", "caller_address", "final_status", "sip_params"]

log = logging.getLogger("callswitch.voice")

PHONE = re.compile(r"\+?\d{3,15}")


def caller_address(call: Call, trunk: Trunk | None = None) -> str:
    """The caller as Twilio shows it: E.164 for a number, else the SIP URI; the
    asserted identity when there is one, Twilio's anonymous digits when withheld
    (control_api/calls/caller_identity.py)."""
    return caller_identity(call.session.request.headers, trunk).caller


def sip_params(session: InviteSession) -> list[tuple[str, str]]:
    """The webhook parameters of a call that came in over SIP: ``SipCallId`` and each
    ``X-`` header as ``SipHeader_X-…``."""
    return [
        ("SipCallId", session.call_id),
        *[
            (f"SipHeader_{name}", value)
            for name, value in session.request.headers
            if name.lower().startswith("x-")
        ],
    ]


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
    """Routes calls to our numbers: each runs its number's TwiML on the runtime."""

    def __init__(self, runtime: VoiceRuntime, trunks: InboundTrunks | None = None) -> None:
        self.runtime = runtime
        self.context = runtime.context
        self.trunks = trunks

    async def app_for_invite(self, session: InviteSession):
        """The app for an INVITE: a trunk's call by the number its trunk's ``did``
        names, any other by its Request-URI user; None when it is for no number."""
        trunk = self.trunks.trunk_of(session.request, session.flow) if self.trunks else None
        if trunk is None:
            return await self.app_for(session.user)
        candidate = number_in(str(session.request.request_uri))
        ours = set()
        if candidate is not None and await is_our_number(self.context.numbers, candidate):
            ours.add(candidate)
        written = dialled_number(trunk, session.request, ours.__contains__)
        did = carrier_number(written, trunk) if written is not None else None
        log.info(
            "call.from_trunk",
            extra={"call_id": session.call_id, "trunk": trunk.name, "did": did},
        )
        return await self.app_for(did) if did is not None else None

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
        session = call.session
        trunk = self.trunks.trunk_of(session.request, session.flow) if self.trunks else None
        who = caller_identity(session.request.headers, trunk)
        await run_offered_call(
            self.runtime,
            call,
            number,
            token=token,
            caller=who.caller,
            forwarded_from=who.forwarded_from,
            # As on Twilio, only a number with VoiceCallerIdLookup gets CallerName.
            caller_name=who.caller_name if number.voice_caller_id_lookup else "",
            to=number.phone_number,
            params=sip_params(session),
            final_status=final_status,
            phone_number_sid=number.sid,
            sip_call_id=session.call_id,
        )


async def _refuse_spent(call) -> None:
    """An inbound call to an account whose balance is spent: 403, never answered."""
    call.reject(403)
