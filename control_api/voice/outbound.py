"""Calls placed by REST (``POST Calls.json``, ``outbound-api``).

A REST call is stored as ``queued`` and answered to the client at once; then it
is placed, rings (every destination and browser tab of its ``To`` at once, the
first to answer wins) and, once answered, runs its TwiML (``Url`` or ``Twiml``)
on the path every call source shares (twiml_call.py), with its ``SendDigits``,
``TimeLimit`` and ``Record``. Its record and status callbacks follow the
lifecycle of reference §2: initiated, ringing, in-progress (the ``answered``
event) and a final status, each callback only when its StatusCallbackEvent was
asked for.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from control_api.calls.call import new_call_sid
from control_api.calls.dialer import DialError, DialRefused
from control_api.voice import machine_detection
from control_api.voice.children import from_user
from control_api.voice.dial import ring_first
from control_api.voice.port import NewCall, Unroutable
from control_api.voice.recording import CallRecording
from control_api.voice.runner import Document
from control_api.voice.twiml_call import call_lifecycle, report_problem, run_call_twiml
from media.taps import add_tap

if TYPE_CHECKING:
    from control_api.calls.leg import PlacedLeg
    from control_api.calls.outbound_call import Destination
    from control_api.store import CallRecord
    from control_api.voice.context import VoiceContext
    from control_api.voice.lifecycle import CallLifecycle
    from control_api.voice.runtime import VoiceRuntime

__all__ = ["place_call", "ringing", "unanswered_status"]

log = logging.getLogger("callswitch.voice")


async def place_call(runtime: VoiceRuntime, account_sid: str, new: NewCall) -> CallRecord | None:
    """``POST Calls.json``: store the call as queued, place it in the background;
    None when this node places no calls (it has no dialer)."""
    context = runtime.context
    dialer = context.dialer
    if dialer is None:
        return None
    destinations = await _destinations(context, account_sid, new)
    sid = new_call_sid()
    browsers = context.browsers
    tabs = (
        browsers.calls_to(account_sid, new.to, from_=new.from_, timeout=new.timeout, sid=sid)
        if browsers is not None
        else []
    )
    if not destinations and not tabs:
        raise Unroutable(f"{new.to} is not registered")
    token = await context.token_of(account_sid)
    lifecycle = call_lifecycle(
        context,
        sid=sid,
        account_sid=account_sid,
        to=new.to,
        from_=new.from_,
        direction="outbound-api",
        status_callback=new.status_callback,
        status_callback_method=new.status_callback_method,
        events=new.status_callback_events,
        insert=False,
    )
    record = lifecycle.record
    await context.store.insert_call(record)  # before the answer: a GET finds it at once
    caller = from_user(new.caller_id or new.from_)  # a trunk's caller_id replaces it
    calls: list[PlacedLeg] = [
        dialer.call(
            destination, from_user=caller, timeout=new.timeout, sid=sid, trunk_caller_id=True
        )
        for destination in destinations
    ]
    calls += tabs
    assert token is not None  # the account placing it was just authenticated: it has one
    context.tasks.spawn(_run_placed(runtime, account_sid, token, new, calls, lifecycle))
    return record


async def _destinations(context: VoiceContext, account_sid: str, new: NewCall) -> list[Destination]:
    """Where ``new.to`` is dialled (none for a browser client); Unroutable when nowhere
    or when a dial guard refuses it."""
    assert context.dialer is not None  # place_call asked
    try:
        return await context.dialer.resolve(
            account_sid,
            new.to,
            username=new.sip_auth_username,
            password=new.sip_auth_password,
            source_ip=new.source_ip,
        )
    except DialRefused as exc:
        raise Unroutable(f"Not authorized to call {new.to}: {exc}", refused=True) from None
    except DialError as exc:
        raise Unroutable(str(exc)) from None


async def _run_placed(
    runtime: VoiceRuntime,
    account_sid: str,
    token: str,
    new: NewCall,
    calls: Sequence[PlacedLeg],
    lifecycle: CallLifecycle,
) -> None:
    """Ring ``calls`` (one SID) until one answers, then run its TwiML."""
    async with ringing(runtime, account_sid, calls, lifecycle) as winner:
        if winner is None:
            return
        amd = new.machine_detection
        if amd is not None:
            detection = machine_detection.run(runtime.context, winner, lifecycle, amd)
            if amd.asynchronous:
                runtime.context.tasks.spawn(detection)
            else:  # the TwiML waits for the decision, and its first request carries it
                await detection
        await run_call_twiml(
            runtime,
            winner,
            lifecycle,
            Document(
                new.url,
                new.method,
                twiml=new.twiml,
                fallback_url=new.fallback_url,
                fallback_method=new.fallback_method,
            ),
            account_sid=account_sid,
            token=token,
            final_status=lambda _: "completed",  # it answered
            send_digits=new.send_digits,
            time_limit=new.time_limit,
            recording=_record(runtime.context, account_sid, winner, new) if new.record else None,
        )


@contextlib.asynccontextmanager
async def ringing(
    runtime: VoiceRuntime,
    account_sid: str,
    calls: Sequence[PlacedLeg],
    lifecycle: CallLifecycle,
) -> AsyncIterator[PlacedLeg | None]:
    """Ring ``calls`` (the destinations of one call we place, one SID) until one
    answers: the one that did, live in the call table, or None when nobody did and the
    call has its final status. A REST cancel meanwhile reaches every one. On leaving,
    every leg still up is hung up and the call's record written."""
    table = runtime.live_calls
    sid = lifecycle.sid
    lifecycle.initiated()
    table.track(calls[0], None, account_sid, ringing=calls)
    for each in calls:
        each.on_ringing.append(lambda _: _once_ringing(lifecycle))
    try:
        winner = await ring_first(calls)
        if winner is None:
            for each in calls:
                report_problem(runtime.context, account_sid, each)
            lifecycle.finished(unanswered_status(calls), 0)
        else:
            table.track(winner, None, account_sid)
        yield winner
    finally:
        table.untrack(sid)
        for each in calls:
            if not each.ended.is_set():
                each.hangup()
        await lifecycle.flush()
        table.settled(sid)


def unanswered_status(calls: Sequence[PlacedLeg]) -> str:
    """The final status of a REST call none of whose destinations answered: canceled
    when it was canceled, else the first destination's failure (busy, no-answer...)."""
    if any(call.canceled for call in calls):
        return "canceled"
    return next((c.status for c in calls if c.status != "canceled"), calls[0].status)


def _record(
    context: VoiceContext, account_sid: str, call: PlacedLeg, new: NewCall
) -> CallRecording:
    """``Record=true``: both directions of the whole call, mixed, from the answer on."""
    leg = call.leg
    assert leg is not None  # recorded from the answer on: its leg is bound
    recording = CallRecording(
        context,
        account_sid=account_sid,
        call_sid=call.sid,
        source="OutboundAPI",
        channels=2,
        mix_to_mono=True,
        status_callback=new.recording_status_callback,
        clock=call.media.clock,
    )
    add_tap(leg, recording.tap)
    return recording


def _once_ringing(lifecycle: CallLifecycle) -> None:
    if lifecycle.status in ("queued", "initiated"):
        lifecycle.ringing()
