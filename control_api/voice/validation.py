"""Validation calls: proving that an account answers a number before it may show it
as a caller ID (``POST OutgoingCallerIds.json``, Twilio's ValidationRequest).

The node calls the number through the dialer REST calls use (a call of the account,
``outbound-api``, with its record and status), waits ``CallDelay`` seconds once it is
answered, dials ``Extension``, then says the six-digit validation code and asks for
it back. The callee keys it in (RFC 4733 or in-band DTMF); three tries. On success
the number becomes the account's caller ID (``store.caller_ids``). Either way the
request's ``StatusCallback`` hears ``VerificationStatus`` (``success`` or ``failed``)
and, on success, ``OutgoingCallerIdSid``, signed, through the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from control_api.calls.call import new_call_sid
from control_api.calls.dialer import DialError, DialRefused
from control_api.store.e164 import format_number
from control_api.voice.outbound import ringing
from control_api.voice.port import Unroutable
from control_api.voice.twiml_call import call_lifecycle
from media.player import play, send_digits

if TYPE_CHECKING:
    from control_api.calls.leg import PlacedLeg
    from control_api.calls.outbound_call import Destination
    from control_api.voice.lifecycle import CallLifecycle
    from control_api.voice.runtime import VoiceRuntime

__all__ = [
    "CODE_DIGITS",
    "CallerIdValidations",
    "NewValidation",
    "ValidationCalls",
    "new_validation_code",
    "prompt_text",
    "validation_callback_params",
]

log = logging.getLogger("callswitch.voice")

CODE_DIGITS = 6
TRIES = 3
DIGIT_TIMEOUT_S = 10.0  # a pause between keys this long ends a try
RING_TIMEOUT_S = 60
CALLER = "callswitch"  # who the validation call is from: no number of the account's
API_VERSION = "2010-04-01"


def new_validation_code() -> str:
    """Six random digits."""
    return "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))


def prompt_text(code: str) -> str:
    """What the callee hears: the code, digit by digit, and what to do with it."""
    spoken = ", ".join(code)
    return f"This is a caller ID validation call. Your code is {spoken}. Please enter it now."


@dataclass(frozen=True, slots=True)
class NewValidation:
    """The checked parameters of ``POST OutgoingCallerIds.json`` and the code to ask for."""

    phone_number: str  # E.164
    code: str
    friendly_name: str | None = None
    call_delay: int = 0
    extension: str | None = None
    status_callback: str | None = None
    status_callback_method: str = "POST"


class CallerIdValidations(Protocol):
    """What the REST API asks of the voice runtime to validate a caller ID."""

    async def start(self, account_sid: str, new: NewValidation) -> str:
        """Place the validation call; its call SID. Raises ``Unroutable`` when the
        number cannot be called from here."""
        ...


def validation_callback_params(
    account_sid: str, call_sid: str, phone_number: str, caller_id_sid: str | None
) -> list[tuple[str, str]]:
    """The status callback of a validation request."""
    params = [
        ("AccountSid", account_sid),
        ("CallSid", call_sid),
        ("To", phone_number),
        ("Called", phone_number),
        ("VerificationStatus", "success" if caller_id_sid else "failed"),
        ("ApiVersion", API_VERSION),
    ]
    if caller_id_sid:
        params.append(("OutgoingCallerIdSid", caller_id_sid))
    return params


class ValidationCalls:
    """Validation calls placed by this node's voice runtime."""

    def __init__(self, runtime: VoiceRuntime) -> None:
        self.runtime = runtime

    async def start(self, account_sid: str, new: NewValidation) -> str:
        context = self.runtime.context
        dialer = context.dialer
        if dialer is None:
            raise Unroutable("this node places no calls")
        try:
            destinations = await dialer.resolve(account_sid, new.phone_number)
        except DialRefused as exc:
            raise Unroutable(
                f"Not authorized to call {new.phone_number}: {exc}", refused=True
            ) from None
        except DialError as exc:
            raise Unroutable(str(exc)) from None
        if not destinations:
            raise Unroutable(f"{new.phone_number} cannot be called from here")
        sid = new_call_sid()
        lifecycle = call_lifecycle(
            context,
            sid=sid,
            account_sid=account_sid,
            to=new.phone_number,
            from_=CALLER,
            direction="outbound-api",
            status_callback=None,
            status_callback_method=None,
            events=frozenset(),
            insert=False,
        )
        await context.store.insert_call(lifecycle.record)
        context.tasks.spawn(self._run(account_sid, new, sid, lifecycle, destinations))
        return sid

    async def _run(
        self,
        account_sid: str,
        new: NewValidation,
        sid: str,
        lifecycle: CallLifecycle,
        destinations: list[Destination],
    ) -> None:
        context = self.runtime.context
        if new.call_delay:
            await asyncio.sleep(new.call_delay)
        assert context.dialer is not None  # start checked
        calls: list[PlacedLeg] = [
            context.dialer.call(each, from_user=CALLER, timeout=RING_TIMEOUT_S, sid=sid)
            for each in destinations
        ]
        verified = False
        try:
            async with ringing(self.runtime, account_sid, calls, lifecycle) as winner:
                if winner is not None:
                    lifecycle.answered()
                    verified = await self._ask(winner, new)
                    winner.hangup()
                    lifecycle.finished("completed", winner.duration)
        except Exception:
            log.exception("validation.failed", extra={"call_sid": sid})
        await self._report(account_sid, new, sid, verified)

    async def _ask(self, call: PlacedLeg, new: NewValidation) -> bool:
        """Say the code and read it back, up to ``TRIES`` times; whether it was keyed."""
        leg = call.leg
        if leg is None:
            return False
        synthesize = self.runtime.context.synthesize
        digits: asyncio.Queue[str] = asyncio.Queue()
        if new.extension:
            await send_digits(leg, new.extension)
        leg.on_dtmf = digits.put_nowait
        try:
            prompt = await synthesize(prompt_text(new.code), "alice", "en-US")
            for _ in range(TRIES):
                if call.ended.is_set():
                    return False
                await _until_ended(call, play(leg, prompt))  # type: ignore[arg-type]
                if await _until_ended(call, _read(digits)) == new.code:
                    thanks = await synthesize("Thank you. Your number is verified.", "alice", "")
                    await _until_ended(call, play(leg, thanks))  # type: ignore[arg-type]
                    return True
            return False
        finally:
            leg.on_dtmf = _ignore

    async def _report(self, account_sid: str, new: NewValidation, sid: str, verified: bool) -> None:
        context = self.runtime.context
        caller_id = None
        if verified:
            name = new.friendly_name or format_number(new.phone_number)
            caller_id = await context.store.caller_ids.verified(account_sid, new.phone_number, name)
        log.info(
            "validation.finished",
            extra={"call_sid": sid, "verified": verified, "account_sid": account_sid},
        )
        if new.status_callback:
            await context.outbox.enqueue(
                account_sid=account_sid,
                url=new.status_callback,
                method=new.status_callback_method,
                params=validation_callback_params(
                    account_sid, sid, new.phone_number, caller_id.sid if caller_id else None
                ),
                call_sid=sid,
            )


async def _read(digits: asyncio.Queue[str]) -> str:
    """The keys pressed until ``CODE_DIGITS`` of them, '#', or a pause."""
    keyed = ""
    while len(keyed) < CODE_DIGITS:
        try:
            digit = await asyncio.wait_for(digits.get(), DIGIT_TIMEOUT_S)
        except TimeoutError:
            break
        if digit == "#":
            break
        keyed += digit
    return keyed


async def _until_ended(call: PlacedLeg, work) -> str | None:
    """``work``'s result, or None once the call ends first (``work`` cancelled)."""
    task = asyncio.ensure_future(work)
    ended = asyncio.ensure_future(call.ended.wait())
    try:
        await asyncio.wait([task, ended], return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
    if not task.done():
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return None
    result: str | None = task.result()
    return result


def _ignore(digit: str) -> None:
    pass
