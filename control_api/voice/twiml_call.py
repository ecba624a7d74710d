"""The paths every call source shares: run a call's own TwiML, follow a child call.

A call to one of our numbers (inbound.py), a call a browser tab placed
(browser.py) and a call placed by REST once answered (outbound.py) each run the
TwiML of an application while their record follows them (ringing, in-progress, a
final status); :func:`run_call_twiml` is that path, once. Every party ``<Dial>``
rings, a phone or a tab, is a child call with its own record (``outbound-dial``);
:func:`follow_child` writes it. A call we place, by REST or as a child, starts
its record with :func:`call_lifecycle`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from control_api.voice import machine_detection
from control_api.voice.lifecycle import CallLifecycle, base_params, new_record
from media.player import send_digits as play_digits
from media.taps import remove_tap

if TYPE_CHECKING:
    from control_api.calls.leg import CallLeg, PlacedLeg
    from control_api.store import Application, PhoneNumber, SipDomain
    from control_api.voice.context import VoiceContext
    from control_api.voice.recording import CallRecording
    from control_api.voice.runner import Document
    from control_api.voice.runtime import VoiceRuntime

__all__ = [
    "call_lifecycle",
    "document_of",
    "follow_child",
    "incoming_lifecycle",
    "report_problem",
    "run_call_twiml",
    "run_offered_call",
]

HANGUP_GRACE_S = 5.0  # how long a call we hung up is given to end before its record does


def document_of(application: Application | PhoneNumber | SipDomain) -> Document:
    """The first TwiML of a number or an Application (AP…): its VoiceUrl, with its fallback."""
    from control_api.voice.runner import Document  # the runner imports <Dial>, which us

    return Document(
        application.voice_url,
        application.voice_method or "POST",
        fallback_url=application.voice_fallback_url,
        fallback_method=application.voice_fallback_method or "POST",
    )


def incoming_lifecycle(
    context: VoiceContext,
    *,
    call_sid: str,
    account_sid: str,
    to: str,
    from_: str,
    base: list[tuple[str, str]],
    status_callback: str | None,
    status_callback_method: str | None,
    **record: Any,
) -> CallLifecycle:
    """The record (``inbound``, ringing) and callbacks of a call offered to us that runs
    its own TwiML; its first callbacks (initiated, ringing) are queued at once."""
    lifecycle = CallLifecycle(
        context.store,
        context.outbox,
        new_record(
            sid=call_sid,
            account_sid=account_sid,
            to=to,
            from_=from_,
            direction="inbound",
            status="ringing",
            **record,
        ),
        base,
        status_callback=status_callback,
        status_callback_method=status_callback_method or "POST",
        billing=context.billing,
    )
    lifecycle.initiated()
    lifecycle.callback("ringing")
    return lifecycle


async def run_offered_call(
    runtime: VoiceRuntime,
    call: CallLeg,
    application: Application | PhoneNumber | SipDomain,
    *,
    token: str,
    caller: str,
    to: str,
    params: list[tuple[str, str]],
    final_status: Callable[[Any], str],
    answer_at_once: bool = False,
    on_final: Callable[[str], None] | None = None,
    forwarded_from: str = "",
    caller_name: str = "",
    **record: Any,
) -> None:
    """A call offered to us (to one of our numbers, or placed by a browser tab) runs
    ``application``'s TwiML: its record (``inbound``, with the extra columns of
    ``record``) and webhooks (every call's parameters, then ``params``) follow it;
    ``forwarded_from`` and ``caller_name`` are what the carrier said of the caller."""
    account_sid = application.account_sid
    base = base_params(
        call_sid=call.sid,
        account_sid=account_sid,
        from_=caller,
        to=to,
        direction="inbound",
        forwarded_from=forwarded_from,
        caller_name=caller_name,
    )
    # The record and the callbacks are written in order but off the call's path:
    # the caller hears the application while the store catches up.
    lifecycle = incoming_lifecycle(
        runtime.context,
        call_sid=call.sid,
        account_sid=account_sid,
        to=to,
        from_=caller,
        base=[*base, *params],
        status_callback=application.status_callback,
        status_callback_method=application.status_callback_method,
        forwarded_from=forwarded_from,
        caller_name=caller_name,
        **record,
    )
    await run_call_twiml(
        runtime,
        call,
        lifecycle,
        document_of(application),
        account_sid=account_sid,
        token=token,
        final_status=final_status,
        answer_at_once=answer_at_once,
        on_final=on_final,
    )


async def run_call_twiml(
    runtime: VoiceRuntime,
    call: CallLeg,
    lifecycle: CallLifecycle,
    document: Document,
    *,
    account_sid: str,
    token: str,
    final_status: Callable[[Any], str],
    answer_at_once: bool = False,
    on_final: Callable[[str], None] | None = None,
    time_limit: float | None = None,
    send_digits: str | None = None,
    recording: CallRecording | None = None,
) -> None:
    """Run ``call``'s TwiML from ``document`` until it ends, live in the call table
    meanwhile; then write its final status (``final_status(call)``) and price it.

    ``answer_at_once``: the call's media is up already (a browser tab's own call),
    so it is answered as its TwiML starts instead of by its first verb. A call
    answered already (placed by REST) may have ``send_digits`` played first, is hung
    up after ``time_limit`` seconds, and its ``recording`` (``Record=true``) is
    finished with it, its parameters on the final status callback."""
    if call.answered:
        lifecycle.answered()
    else:
        call.on_answered.append(lambda _: lifecycle.answered())
    table = runtime.live_calls
    runner = runtime.runner_for(call, account_sid, token, lifecycle)
    try:
        if send_digits and call.leg is not None:
            await play_digits(call.leg, send_digits)
        table.track(call, runner, account_sid)
        runner.start(document)
        if answer_at_once:
            await call.answer()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(runner.wait(), time_limit)
    finally:
        table.untrack(call.sid)
        await _end(call)
        extra = await _finished(call, recording)
        status = final_status(call)
        lifecycle.finished(status, call.duration, **extra)
        with contextlib.suppress(Exception):
            await lifecycle.flush()
        table.settled(call.sid)
        if on_final is not None:
            on_final(status)
        call.log("call.completed", status=status, errors=len(runner.errors))


async def _end(call: CallLeg) -> None:
    """Hang up a call its TwiML left up; one answered is given its BYE's time to end."""
    if call.ended.is_set():
        return
    call.hangup()
    if call.answered:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.ended.wait(), HANGUP_GRACE_S)


async def _finished(call: CallLeg, recording: CallRecording | None) -> dict[str, str]:
    """Close the call's recording, if any: what its final status callback adds."""
    if recording is None:
        return {}
    if call.leg is not None:
        remove_tap(call.leg, recording.tap)
    await recording.finish()
    return dict(recording.params())


def call_lifecycle(
    context: VoiceContext,
    *,
    sid: str,
    account_sid: str,
    to: str,
    from_: str,
    direction: str,
    parent_sid: str | None = None,
    status_callback: str | None,
    status_callback_method: str | None,
    events: frozenset[str] | None,
    insert: bool = True,
) -> CallLifecycle:
    """The record (``queued``) and callbacks of a call we place: by REST
    (``outbound-api``) or as a child of ``parent_sid`` (``outbound-dial``)."""
    who = {"account_sid": account_sid, "to": to, "from_": from_, "direction": direction}
    return CallLifecycle(
        context.store,
        context.outbox,
        new_record(sid=sid, status="queued", parent_call_sid=parent_sid, **who),
        base_params(call_sid=sid, parent_call_sid=parent_sid or "", **who),
        status_callback=status_callback,
        status_callback_method=status_callback_method or "POST",
        events=events,
        insert=insert,
        billing=context.billing,
    )


def follow_child(
    context: VoiceContext,
    call: PlacedLeg,
    *,
    account_sid: str,
    parent_sid: str,
    to: str,
    caller_id: str,
    noun=None,
) -> CallLifecycle:
    """The record of a party ``<Dial>`` rings (``outbound-dial``, child of
    ``parent_sid``) and the callbacks its noun asked for, until it ends and is priced."""
    lifecycle = call_lifecycle(
        context,
        sid=call.sid,
        account_sid=account_sid,
        to=to,
        from_=caller_id,
        direction="outbound-dial",
        parent_sid=parent_sid,
        status_callback=getattr(noun, "status_callback", None),
        status_callback_method=getattr(noun, "status_callback_method", "POST"),
        events=frozenset(getattr(noun, "status_callback_event", ("completed",))),
    )
    lifecycle.initiated()
    call.on_ringing.append(lambda _: lifecycle.ringing())
    call.on_answered.append(lambda _: lifecycle.answered())
    amd = machine_detection.request_of(noun)
    if amd is not None:

        def listen(_: object) -> None:
            context.tasks.spawn(machine_detection.run(context, call, lifecycle, amd))

        call.on_answered.append(listen)

    async def finish() -> None:
        await call.ended.wait()
        report_problem(context, account_sid, call)
        lifecycle.finished(call.status, call.duration)
        await lifecycle.flush()

    context.tasks.spawn(finish())
    return lifecycle


def report_problem(context: VoiceContext, account_sid: str, call: PlacedLeg) -> None:
    """What made a call we placed fail, when it is worth telling (``call.problem``: a
    trunk that refused the SRTP it requires...), as a notification of the call."""
    if call.problem is None or context.call_log is None:
        return
    code, text = call.problem
    context.call_log.problem(account_sid=account_sid, call_sid=call.sid, code=code, text=text)
