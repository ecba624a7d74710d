"""``<Dial>``: ring other parties, bridge the first to answer, report how it went.

Every noun (or the plain number of the text content) is resolved to one or
more destinations and rung at once (``sequential="true"``: noun after noun, each
for the ``timeout``); the first to answer, and to accept the call when its noun
has a whisper ``url`` (whisper.py), wins and the others are cancelled. While they
ring, the caller hears the ringback of ``ringTone`` (media/ring_tones.py; or, with
``answerOnBridge``, is not answered until the callee is). The two legs are
then bridged (media/bridge.py) until either hangs up, ``timeLimit`` passes or
the caller presses ``*`` with ``hangupOnStar``. The ``action`` URL gets
``DialCallStatus``, ``DialCallSid``, ``DialCallDuration`` and ``DialBridged``
(reference §3); without one, the TwiML goes on after ``<Dial>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import numpy as np

from control_api.calls.dialer import DialError
from control_api.calls.engine_bridge import hand_over
from control_api.calls.leg import CallLeg, PlacedLeg
from control_api.calls.outbound_call import failure_status
from control_api.twiml.verbs import Client, Conference, Dial, Number, Queue, Sip
from control_api.voice.children import child_call, client_children
from control_api.voice.queue import QueueDialOutcome, dial_queue
from control_api.voice.recording import CallRecording
from control_api.voice.refer_policy import peer_address
from control_api.voice.refer_url import ask_refer_url
from control_api.voice.transfer import REFERRER_GRACE_S, TransferWatch, blind_transfer
from control_api.voice.whisper import whisper
from media.bridge import Bridge
from media.leg import Leg
from media.player import play, send_digits
from media.ring_tones import RING_TONES, ring_tone

if TYPE_CHECKING:
    from control_api.calls.outbound_call import OutboundCall
    from control_api.voice.context import VoiceContext
    from control_api.voice.runner import Document, TwimlRunner

__all__ = ["Caller", "DialOutcome", "dial", "ring_first", "ringback"]

log = logging.getLogger("callswitch.twiml")

CANCEL_GRACE_S = 5.0  # how long losing calls get to take their CANCEL

P = TypeVar("P", bound=PlacedLeg)


@dataclass(slots=True)
class DialOutcome:
    status: str  # DialCallStatus
    child: PlacedLeg | None
    bridged: bool
    recording: CallRecording | None = None
    then: Document | None = None  # a referUrl's answer: the caller runs it next

    def params(self) -> list[tuple[str, str]]:
        child = self.child
        fields = [("DialCallStatus", self.status), ("DialBridged", str(self.bridged).lower())]
        if child is not None:
            fields += [
                ("DialCallSid", child.sid),
                ("DialCallDuration", str(round(child.duration))),
            ]
        if self.recording is not None:
            fields += self.recording.params()
        return fields


Target = Number | Sip | Client | None  # the noun of a destination (None: the text)


def _targets(verb: Dial) -> list[tuple[str, Target]]:
    if verb.number_text and verb.number_text.strip():
        return [(verb.number_text.strip(), None)]
    targets: list[tuple[str, Target]] = []
    for noun in verb.nouns:
        if isinstance(noun, Number):
            targets.append((noun.number, noun))
        elif isinstance(noun, Sip):
            targets.append((noun.uri, noun))
        elif isinstance(noun, Client):
            targets.append((f"client:{noun.identity}", noun))
    return targets


def ringback() -> np.ndarray:
    """North American ringback (ITU-T E.180: 440 + 480 Hz, 2 s on, 4 s off), 8 kHz int16."""
    return ring_tone("us")


async def dial(runner: TwimlRunner, verb: Dial) -> DialOutcome | QueueDialOutcome:
    """Run one ``<Dial>`` for the runner's call and say how it ended."""
    context = runner.services.context
    assert context is not None and context.dialer is not None  # the runner checked
    if any(isinstance(noun, Conference) for noun in verb.nouns):
        conference = next(n for n in verb.nouns if isinstance(n, Conference))
        assert context.conferences is not None  # the composition root always builds them
        return await context.conferences.join(runner, conference)
    if any(isinstance(noun, Queue) for noun in verb.nouns):  # control_api/voice/queue.py
        return await dial_queue(runner, verb)
    parent = runner.call
    children, winner = await _ring(context, runner, verb)
    if not children:
        return DialOutcome("failed", None, False)
    if winner is None:
        status = "canceled" if parent.ended.is_set() else _summary(children)
        return DialOutcome(status, children[0][0], False)
    noun = next(n for c, n in children if c is winner)
    if isinstance(noun, Number) and noun.send_digits:
        await send_digits(_media(winner), noun.send_digits)
    if not await parent.answer():  # answerOnBridge: the caller is answered only now
        winner.hangup()
        return DialOutcome("canceled", winner, False)
    return await _bridge(context, runner, winner, verb)


async def _ring(
    context: VoiceContext, runner: TwimlRunner, verb: Dial
) -> tuple[list[tuple[PlacedLeg, Target]], PlacedLeg | None]:
    """Ring the nouns (at once, or one after another with ``sequential``) while the
    caller hears the ``ringTone``: every child call placed, and the one that won."""
    tone = _ring_tone(runner, verb)
    targets = _targets(verb)
    groups = [[target] for target in targets] if verb.sequential else [targets]
    children: list[tuple[PlacedLeg, Target]] = []
    for group in groups:
        if runner.call.ended.is_set():
            break
        ringing = await _children(context, runner, verb, group)
        children += ringing
        accept = _screening(runner, ringing)
        calls = [call for call, _ in ringing]
        winner = await ring_first(calls, runner.call, tone=tone, accept=accept)
        if winner is not None:
            return children, winner
    return children, None


def _screening(
    runner: TwimlRunner, ringing: list[tuple[PlacedLeg, Target]]
) -> Callable[[PlacedLeg], Awaitable[bool]]:
    """Whether a call that answered takes the call: its noun's whisper says, if any."""
    nouns = {id(call): noun for call, noun in ringing}

    async def accept(call: PlacedLeg) -> bool:
        noun = nouns[id(call)]
        if noun is None or noun.url is None:
            return True
        return await whisper(runner, call, noun)

    return accept


async def _children(
    context: VoiceContext, runner: TwimlRunner, verb: Dial, targets: list[tuple[str, Target]]
) -> list[tuple[PlacedLeg, Target]]:
    """The child calls that ring ``targets`` (an unroutable one is a 13224 error)."""
    parent = runner.call
    assert context.dialer is not None
    children: list[tuple[PlacedLeg, Target]] = []
    for address, noun in targets:
        if isinstance(noun, Client):  # browser tabs of that identity ring too
            children += [(c, noun) for c in client_children(context, runner, address, noun, verb)]
        username = noun.username if isinstance(noun, Sip) else None
        password = noun.password if isinstance(noun, Sip) else None
        try:
            destinations = await context.dialer.resolve(
                runner.account_sid,
                address,
                username=username,
                password=password,
                source_ip=peer_address(parent),
            )
        except DialError as exc:
            runner.errors.append(f"13224 {exc}")
            log.warning("dial.unroutable", extra={"call_sid": parent.sid, "error": str(exc)})
            continue
        for destination in destinations:
            children.append((child_call(context, runner, destination, noun, verb), noun))
    return children


def _ring_tone(runner: TwimlRunner, verb: Dial) -> np.ndarray:
    """The ringback the caller hears: ``ringTone``'s, else the US one (an unknown
    value is Twilio's warning 13220)."""
    if verb.ring_tone and verb.ring_tone.strip().lower() not in RING_TONES:
        runner.errors.append(f"13220 Dial: Invalid ringTone value {verb.ring_tone!r}")
    return ring_tone(verb.ring_tone)


class Caller(Protocol):
    """The party a ring is for: it hears ringback once answered (else is told the
    callee rings), and its hang-up ends the ringing."""

    ended: asyncio.Event

    @property
    def answered(self) -> bool: ...

    @property
    def leg(self) -> Leg | None: ...

    def ring(self) -> None: ...


async def ring_first(
    calls: Sequence[P],
    caller: Caller | None = None,
    *,
    tone: np.ndarray | None = None,
    accept: Callable[[P], Awaitable[bool]] | None = None,
) -> P | None:
    """Ring every call at once; the first to answer (and, with ``accept``, to accept
    the call: a whisper) wins, the rest are cancelled or hung up.

    Each call rings for its own timeout (the dialer gave it one). Without a ``caller``
    (a call the REST API places) nobody hears ringback and nobody hangs up meanwhile;
    an answered caller hears ``tone`` (default: the US ringback) until a call wins.
    """
    ringing_tone = None
    if caller is not None and caller.answered and caller.leg is not None:
        samples = tone if tone is not None else ringback()
        ringing_tone = asyncio.ensure_future(play(caller.leg, samples, loop=0))
    elif caller is not None and not caller.answered:
        caller.ring()
    attempts: dict[asyncio.Future[Any], P] = {
        asyncio.ensure_future(_attempt(call, accept)): call for call in calls
    }
    caller_gone: asyncio.Future[Any] = asyncio.ensure_future(
        caller.ended.wait() if caller is not None else asyncio.Event().wait()
    )
    winner: P | None = None
    try:
        pending = set(attempts)
        while pending and winner is None:
            done, pending = await asyncio.wait(
                pending | {caller_gone}, return_when=asyncio.FIRST_COMPLETED
            )
            if caller_gone in done:
                break
            pending.discard(caller_gone)
            for attempt in done:
                if attempt.result() and winner is None:
                    winner = attempts[attempt]
    finally:
        caller_gone.cancel()
        if ringing_tone is not None:
            ringing_tone.cancel()
            await asyncio.gather(ringing_tone, return_exceptions=True)
        for attempt in attempts:  # a whisper still running stops here
            attempt.cancel()
        await asyncio.gather(*attempts, return_exceptions=True)
        await _cancel_losers([call for call in calls if call is not winner])
    if winner is not None and caller is not None and caller.ended.is_set():
        winner.hangup()
        return None
    return winner


async def _attempt(call: P, accept: Callable[[P], Awaitable[bool]] | None) -> bool:
    """Ring ``call``: True once it answered and accepted; one that refused is hung up."""
    if not await call.connect():
        return False
    if accept is None or await accept(call):
        return not call.ended.is_set()
    if not call.ended.is_set():
        call.hangup()
    return False


async def _cancel_losers(losers: Sequence[PlacedLeg]) -> None:
    """Stop the calls that lost: cancel those ringing, hang up those answered (in
    their whisper when another one won)."""
    for call in losers:
        if call.answered:
            call.hangup()
        else:
            call.cancel()
    if losers:
        await asyncio.wait(
            [asyncio.ensure_future(call.ended.wait()) for call in losers],
            timeout=CANCEL_GRACE_S,
        )


def _media(call: CallLeg) -> Leg:
    leg = call.leg
    assert leg is not None  # bridged only once answered: its media flows
    return leg


def _recorder(context: VoiceContext, runner: TwimlRunner, verb: Dial) -> CallRecording | None:
    """The recording of a ``<Dial record=...>``, from the callee's answer on."""
    if not verb.record.startswith("record-from"):
        return None
    return CallRecording(
        context,
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


async def _bridge(
    context: VoiceContext, runner: TwimlRunner, child: PlacedLeg, verb: Dial
) -> DialOutcome:
    """Bridge until a party hangs up, ``timeLimit`` or ``*``; a REFER from either
    party re-bridges the other one to the transfer target (transfer.py), or, from
    the callee with ``referUrl``, ends the bridge with the URL's answer (refer_url.py)."""
    parent = runner.call
    recorder = _recorder(context, runner, verb)
    loop = asyncio.get_running_loop()
    star: asyncio.Future[bool] = loop.create_future()
    deadline = loop.time() + verb.time_limit if verb.time_limit else None
    transfers = TransferWatch(context.dialer, runner.account_sid, context.refused)
    transfers.watch(parent)
    transfers.watch(child)
    a: CallLeg = parent
    b: CallLeg = child
    placed: list[OutboundCall] = []  # the calls transfers placed
    then: Document | None = None
    referrer: CallLeg | None = None

    def on_dtmf(side: int, digit: str) -> None:
        if side == 0 and digit == "*" and not star.done():
            star.set_result(True)

    try:
        while not (a.ended.is_set() or b.ended.is_set() or star.done()):
            tap = recorder.tap if recorder else None
            bridge = Bridge(_media(a), _media(b), tap=tap)
            digits = on_dtmf if verb.hangup_on_star and a is parent else None
            if digits is not None:
                bridge.on_dtmf = digits
            bridge.start()
            try:  # two SIP parties on RTP or SDES-SRTP go to rtpengine (--rtpengine); the
                # recording and hangupOnStar hear them from its copies and its DTMF log
                engine = await hand_over(context.rtpengines, a, b, tap=tap, on_dtmf=digits)
            except asyncio.CancelledError:  # a redirect while the parties moved
                bridge.stop()  # (hand_over brought them back)
                raise
            if engine is not None:  # a fork started or stopped mid-bridge: rtpengine's copies
                bridge.on_replanned = engine.listeners_changed
                engine.listeners_changed()  # (one that started while the parties moved)
            runner.bridged = (a, b)  # who talks to whom now (the console shows both legs)
            parent.log("dial.bridged", child=b.sid, mode="rtpengine" if engine else bridge.mode)
            transfer = asyncio.ensure_future(transfers.requests.get())
            waits: list[asyncio.Future[Any]] = [
                asyncio.ensure_future(a.ended.wait()),
                asyncio.ensure_future(b.ended.wait()),
                transfer,
            ]
            timeout = None if deadline is None else max(0.0, deadline - loop.time())
            request = None
            try:
                await asyncio.wait(
                    [*waits, star], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if transfer.done():
                    request = transfer.result()
            finally:
                for waiter in waits:
                    waiter.cancel()
                bridge.stop()
                runner.bridged = None
                if engine is not None:  # a transfer keeps both; else the caller goes on
                    keep = [a, b] if request is not None else [parent]
                    await engine.stop([c for c in (a, b) if c in keep])
            if request is None:
                break  # a hang-up, the time limit or the star key
            if verb.refer_url and request.referrer is not parent:
                then = await ask_refer_url(runner, verb, request)
                transfers.busy = False
                if then is None:
                    continue  # the URL failed: the bridge goes on
                referrer = request.referrer
                break
            other = b if request.referrer is a else a
            new = await blind_transfer(runner, verb, request, other)
            transfers.busy = False
            if new is not None:
                placed.append(new)
                transfers.watch(new)
                a, b = other, new
    finally:
        transfers.close()
        if referrer is not None:  # told 200: it should hang up itself
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(referrer.ended.wait(), REFERRER_GRACE_S)
        for call in [child, *placed]:
            if not call.ended.is_set():
                call.hangup()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(call.ended.wait(), CANCEL_GRACE_S)
        if recorder is not None:
            await recorder.finish()
    return DialOutcome("completed", child, True, recorder, then)


def _summary(children: list[tuple[PlacedLeg, Target]]) -> str:
    """One DialCallStatus for several calls that all failed; one that answered but
    was refused by its whisper counts as not answered."""
    statuses = ["no-answer" if child.answered else child.status for child, _ in children]
    for status in ("no-answer", "busy", "failed"):
        if status in statuses:
            return status
    return failure_status(None)
