"""The paths every call source shares: run a call's own TwiML, follow a child call.

A call to one of our numbers (inbound.py) and a call a browser tab placed
(browser.py) both run the TwiML of an application while their record follows
them (ringing, in-progress, a final status); :func:`run_call_twiml` is that path,
once. Every party ``<Dial>`` rings, a phone or a tab, is a child call with its own
record (``outbound-dial``); :func:`follow_child` writes it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from control_api.voice.lifecycle import CallLifecycle, base_params, new_record

if TYPE_CHECKING:
    from control_api.calls.leg import CallLeg, PlacedLeg
    from control_api.voice.context import VoiceContext
    from control_api.voice.inbound import VoiceApps
    from control_api.voice.runner import Document

__all__ = ["document_of", "follow_child", "incoming_lifecycle", "run_call_twiml"]


def document_of(application) -> Document:
    """The first TwiML of a number or an application: its VoiceUrl, with its fallback."""
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
    """The record (``inbound``, ringing) and callbacks of a call that runs its own TwiML."""
    return CallLifecycle(
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


async def run_call_twiml(
    voice: VoiceApps,
    call: CallLeg,
    lifecycle: CallLifecycle,
    document: Document,
    *,
    account_sid: str,
    token: str,
    final_status: Callable[[Any], str],
    answer_at_once: bool = False,
    on_final: Callable[[str], None] | None = None,
) -> None:
    """Run ``call``'s TwiML from ``document`` until it ends, live in the call table
    meanwhile; then write its final status (``final_status(call)``) and price it.

    ``answer_at_once``: the call's media is up already (a browser tab's own call),
    so it is answered as its TwiML starts instead of by its first verb."""
    lifecycle.initiated()
    lifecycle.callback("ringing")
    call.on_answered.append(lambda _: lifecycle.answered())
    runner = voice.runner_for(call, account_sid, token, lifecycle)
    voice.live_calls.track(call, runner, account_sid)
    try:
        runner.start(document)
        if answer_at_once:
            await call.answer()
        await runner.wait()
    finally:
        voice.live_calls.untrack(call.sid)
        if not call.ended.is_set():
            call.hangup()
        status = final_status(call)
        lifecycle.finished(status, call.duration)
        with contextlib.suppress(Exception):
            await lifecycle.flush()
        voice.live_calls.settled(call.sid)
        if on_final is not None:
            on_final(status)
        call.log("call.completed", status=status, errors=len(runner.errors))


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
    lifecycle = CallLifecycle(
        context.store,
        context.outbox,
        new_record(
            sid=call.sid,
            account_sid=account_sid,
            to=to,
            from_=caller_id,
            direction="outbound-dial",
            status="queued",
            parent_call_sid=parent_sid,
        ),
        base_params(
            call_sid=call.sid,
            account_sid=account_sid,
            from_=caller_id,
            to=to,
            direction="outbound-dial",
            parent_call_sid=parent_sid,
        ),
        status_callback=getattr(noun, "status_callback", None),
        status_callback_method=getattr(noun, "status_callback_method", "POST"),
        events=frozenset(getattr(noun, "status_callback_event", ("completed",))),
        billing=context.billing,
    )
    lifecycle.initiated()
    call.on_ringing.append(lambda _: lifecycle.ringing())
    call.on_answered.append(lambda _: lifecycle.answered())

    async def finish() -> None:
        await call.ended.wait()
        lifecycle.finished(call.status, call.duration)
        await lifecycle.flush()

    context.tasks.spawn(finish())
    return lifecycle
