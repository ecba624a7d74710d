"""Calls we place: by REST (``outbound-api``) and by ``<Dial>`` (``outbound-dial``).

A REST call is stored as ``queued`` and answered to the client at once; then
it is placed, rings, and once answered runs its TwiML (``Url`` or ``Twiml``)
like an inbound call does. Its record and status callbacks follow the
lifecycle of reference §2: initiated, ringing, in-progress (the ``answered``
event) and a final status, each callback only when its StatusCallbackEvent
was asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from control_api.calls.call import new_call_sid
from control_api.calls.dialer import DialError, DialRefused
from control_api.calls.outbound_call import Destination, OutboundCall
from control_api.twiml.verbs import Client, Dial, Number, Sip
from control_api.voice.dial import ring_first
from control_api.voice.lifecycle import CallLifecycle, base_params, new_record
from control_api.voice.port import NewCall, Unroutable
from control_api.voice.recording import CallRecording
from control_api.voice.runner import Document
from control_api.voice.twiml_call import follow_child
from media.player import send_digits
from media.taps import add_tap, remove_tap

if TYPE_CHECKING:
    from control_api.voice.inbound import VoiceApps
    from control_api.voice.runner import TwimlRunner

__all__ = ["child_call", "from_user", "place_call"]

log = logging.getLogger("callswitch.voice")


def from_user(address: str) -> str:
    """The user part for our From header: +1555… stays, ``client:alice`` → alice."""
    scheme, colon, rest = address.partition(":")
    if colon and scheme.lower() == "client":
        return rest
    if colon and scheme.lower() in ("sip", "sips"):
        return rest.split("@", 1)[0] or "callswitch"
    return address


async def place_call(voice: VoiceApps, account_sid: str, new: NewCall):
    """``POST Calls.json``: store the call as queued, place it in the background."""
    context = voice.context
    dialer = context.dialer
    if dialer is None:
        return None
    try:
        destinations = await dialer.resolve(
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
    record = new_record(
        sid=sid,
        account_sid=account_sid,
        to=new.to,
        from_=new.from_,
        direction="outbound-api",
        status="queued",
    )
    lifecycle = CallLifecycle(
        context.store,
        context.outbox,
        record,
        base_params(
            call_sid=record.sid,
            account_sid=account_sid,
            from_=new.from_,
            to=new.to,
            direction="outbound-api",
        ),
        status_callback=new.status_callback,
        status_callback_method=new.status_callback_method,
        events=new.status_callback_events,
        insert=False,
        billing=context.billing,
    )
    await context.store.insert_call(record)  # before the answer: a GET finds it at once
    caller_id = new.caller_id or new.from_
    trunk = destinations[0].trunk if destinations else None
    if trunk is not None and trunk.caller_id:
        caller_id = trunk.caller_id
    calls = [
        dialer.call(
            destination,
            from_user=from_user(caller_id),
            timeout=new.timeout,
            sid=record.sid,
        )
        for destination in destinations
    ] + tabs
    context.tasks.spawn(_run_placed(voice, account_sid, token, new, calls, lifecycle))
    return record


async def _run_placed(
    voice: VoiceApps,
    account_sid: str,
    token: str | None,
    new: NewCall,
    calls: list,
    lifecycle: CallLifecycle,
) -> None:
    lifecycle.initiated()
    call = calls[0]
    voice.live_calls.track(call, None, account_sid)
    for each in calls:
        each.on_ringing.append(lambda _: _once_ringing(lifecycle))
    try:
        winner = await ring_first(_NoParent(), Dial(timeout=new.timeout), calls)
        if winner is None:
            status = next((c.status for c in calls if c.status != "canceled"), calls[0].status)
            if any(c.canceled for c in calls):
                status = "canceled"
            lifecycle.finished(status, 0)
            return
        call = winner
        leg = call.leg
        assert leg is not None  # ring_first returns a call that answered: its leg is bound
        voice.live_calls.track(call, None, account_sid)
        lifecycle.answered()
        recording = _record_call(voice, account_sid, call, new) if new.record else None
        if new.send_digits:
            await send_digits(leg, new.send_digits)
        assert token is not None  # the account placing it was just authenticated: it has one
        runner = voice.runner_for(call, account_sid, token, lifecycle)
        voice.live_calls.track(call, runner, account_sid)
        runner.start(
            Document(
                new.url,
                new.method,
                twiml=new.twiml,
                fallback_url=new.fallback_url,
                fallback_method=new.fallback_method,
            )
        )
        limit = asyncio.ensure_future(asyncio.sleep(new.time_limit))
        work = asyncio.ensure_future(runner.wait())
        await asyncio.wait([limit, work], return_when=asyncio.FIRST_COMPLETED)
        limit.cancel()
        if not work.done():
            work.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await work
        if not call.ended.is_set():
            call.hangup()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.ended.wait(), 5.0)
        extra = {}
        if recording is not None:
            remove_tap(leg, recording.tap)
            await recording.finish()
            extra = dict(recording.params())
        lifecycle.finished("completed", call.duration, **extra)
        call.log("call.completed", status="completed", errors=len(runner.errors))
    finally:
        voice.live_calls.untrack(call.sid)
        for each in calls:
            if not each.ended.is_set():
                each.hangup()
        await lifecycle.flush()
        voice.live_calls.settled(call.sid)


def _record_call(
    voice: VoiceApps, account_sid: str, call: OutboundCall, new: NewCall
) -> CallRecording:
    """``Record=true``: both directions of the whole call, mixed, from the answer on."""
    leg = call.leg
    assert leg is not None  # recorded from the answer on: its leg is bound
    recording = CallRecording(
        voice.context,
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


class _NoParent:
    """The 'caller' of a REST call: nobody to play ringback to, never hangs up."""

    answered = True
    leg = None

    def __init__(self) -> None:
        self.ended = asyncio.Event()


def child_call(
    voice: VoiceApps,
    runner: TwimlRunner,
    destination: Destination,
    noun: Number | Sip | Client | None,
    verb: Dial,
) -> OutboundCall:
    """One party ``<Dial>`` rings, with its own Calls record (``outbound-dial``)."""
    parent = runner.call
    params = dict(runner.params())
    caller_id = verb.caller_id or params.get("From") or "anonymous"
    trunk = destination.trunk
    if trunk is not None and trunk.caller_id and not verb.caller_id:
        caller_id = trunk.caller_id
    context = voice.context
    assert context.dialer is not None  # <Dial> and transfers ring only with a dialer
    call = context.dialer.call(
        destination,
        from_user=from_user(caller_id),
        timeout=verb.timeout,
    )
    call.direction = "outbound-dial"
    follow_child(
        context,
        call,
        account_sid=runner.account_sid,
        parent_sid=parent.sid,
        to=destination.label,
        caller_id=caller_id,
        noun=noun,
    )
    return call
