"""``<Enqueue>`` and ``<Dial><Queue>``: callers wait in a named queue until an agent
takes the front one, or they leave.

A caller's ``<Enqueue>name</Enqueue>`` finds (or makes) the account's queue of that
name, joins this node's line of it (control_api/call_queue.py) and its Members row,
and waits: the ``waitUrl`` document runs in a loop (fetched each round with
``QueuePosition``, ``QueueSid``, ``QueueTime``, ``AvgQueueTime``,
``CurrentQueueSize``, ``MaxQueueSize``; ``<Say>``, ``<Play>``, ``<Pause>``,
``<Redirect>``, ``<Hangup>`` and ``<Leave>`` run there), or without one the local
hold music (media/hold_music.py). An agent's ``<Dial><Queue>name</Queue>`` takes the
front caller, plays the queue's ``url`` document to that caller (with ``QueueSid``,
``QueueTime``, ``DequeingCallSid``), then bridges the two until either hangs up.
The caller's ``action`` is then requested with ``QueueResult`` (see
:class:`~control_api.call_queue.QueueResult`), ``QueueSid`` and ``QueueTime``; a
REST redirect of a waiting caller (``POST Queues/{QU}/Members/{CA}`` or a Calls
update) cancels the wait and reports ``redirected`` in the background.

Members wait on the node that holds their call, where their media is: an agent's
``<Dial><Queue>`` takes the front caller among those on its own node.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin

from control_api.call_queue import (
    DEFAULT_MAX_SIZE,
    MAX_QUEUE_NAME,
    QueueFull,
    QueueLine,
    QueueResult,
    Waiting,
    wait_seconds,
)
from control_api.calls.engine_bridge import hand_over
from control_api.calls.waiting import until_any
from control_api.store import QueueMember
from control_api.twiml.parser import TwimlError, parse_voice_twiml
from control_api.twiml.verbs import Dial, Enqueue, Hangup, Leave, Pause, Play, Queue, Redirect, Say
from control_api.webhooks import WebhookError
from media.bridge import Bridge
from media.hold_music import hold_music
from media.player import play

if TYPE_CHECKING:
    from control_api.voice.context import VoiceContext
    from control_api.voice.runner import TwimlRunner

__all__ = ["CallQueues", "QueueDialOutcome", "dial_queue", "enqueue", "run_wait_document"]

log = logging.getLogger("callswitch.voice")

MAX_WAIT_DOCUMENTS = 10  # <Redirect>s followed within one round of a wait document
MIN_ROUND_S = 1.0  # a wait document that plays nothing is fetched at most once a second
CALLER_READY_S = 60.0  # how long an agent waits for the whisper to the caller to finish


def _context(runner: TwimlRunner) -> VoiceContext:
    context = runner.services.context
    assert context is not None  # the runner dispatches queue verbs only with a context
    return context


def _loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


@dataclass(eq=False)
class _Claim:
    """An agent taking a caller: the caller hears the whisper, then says ready."""

    agent: Any  # the agent's call (a CallLeg)
    whisper: tuple[str, str] | None  # the <Queue url>, method
    ready: asyncio.Future[bool] = field(default_factory=lambda: _loop().create_future())
    over: asyncio.Event = field(default_factory=asyncio.Event)  # the agent is done
    caller_left: asyncio.Event = field(default_factory=asyncio.Event)  # redirected, or gone
    bridged: bool = False


@dataclass(eq=False)
class _Entry:
    """A caller waiting on this node."""

    runner: TwimlRunner
    queue_sid: str
    waiting: Waiting
    claims: asyncio.Queue[_Claim] = field(default_factory=asyncio.Queue)
    claim: _Claim | None = None  # the agent that took it, once taken
    left_at: float | None = None  # when it left the line (QueueTime ends there)
    # Cancelled (a REST redirect) while its call was up: marked where the cancel lands,
    # before any clean-up awaits (the new TwiML may hang up meanwhile).
    redirected: bool = False


class CallQueues:
    """This node's queue lines and the callers waiting in them (one per node, in the
    voice context)."""

    def __init__(self, clock=time.time) -> None:
        self.clock = clock  # wall-clock seconds: date_enqueued is stored
        self.lines: dict[str, QueueLine] = {}
        self._entries: dict[str, _Entry] = {}  # by call sid
        self._arrivals: dict[str, asyncio.Event] = {}  # set when a caller joins

    def line(self, queue_sid: str, max_size: int = DEFAULT_MAX_SIZE) -> QueueLine:
        found = self.lines.get(queue_sid)
        if found is None:
            found = self.lines[queue_sid] = QueueLine(max_size)
        return found

    def join(self, entry: _Entry, max_size: int, limit: int | None) -> int:
        """Put a caller in its line; its position. ``QueueFull`` past ``limit`` callers
        (``maxQueueSize``) or the queue's ``max_size``."""
        line = self.line(entry.queue_sid)
        line.max_size = max_size
        if limit is not None and len(line) >= limit:
            raise QueueFull(f"the queue holds {limit} callers")
        position = line.join(entry.waiting.call_sid, entry.waiting.enqueued_at)
        self._entries[entry.waiting.call_sid] = entry
        self._arrivals.pop(entry.queue_sid, asyncio.Event()).set()
        return position

    def leave(self, entry: _Entry) -> bool:
        """Take a caller out of its line (wherever it stands); False if it was not in."""
        self._entries.pop(entry.waiting.call_sid, None)
        line = self.lines.get(entry.queue_sid)
        gone = line is not None and line.leave(entry.waiting.call_sid) is not None
        if line is not None and not line:
            del self.lines[entry.queue_sid]
        return gone

    def take_front(self, queue_sid: str) -> _Entry | None:
        line = self.lines.get(queue_sid)
        front = line.take_front() if line is not None else None
        if line is not None and not line:
            del self.lines[queue_sid]
        return self._entries.pop(front.call_sid, None) if front is not None else None

    def put_back(self, entry: _Entry) -> None:
        """A caller an agent took but could not bridge goes back to the front."""
        line = self.line(entry.queue_sid)
        line.put_back(entry.waiting)
        self._entries[entry.waiting.call_sid] = entry
        self._arrivals.pop(entry.queue_sid, asyncio.Event()).set()

    def arrival(self, queue_sid: str) -> asyncio.Event:
        """Set when the next caller joins ``queue_sid`` on this node."""
        return self._arrivals.setdefault(queue_sid, asyncio.Event())

    def wait_params(self, entry: _Entry) -> list[tuple[str, str]]:
        line = self.line(entry.queue_sid)
        return line.wait_params(entry.waiting.call_sid, entry.queue_sid, self.clock())


# -- the caller: <Enqueue>


async def enqueue(runner: TwimlRunner, verb: Enqueue, document_url: str | None) -> list:
    """Wait in queue ``verb.name`` until bridged or out; the action's parameters."""
    context = _context(runner)
    queues: CallQueues = context.queues
    name = verb.name.strip()
    if not name or len(name) > MAX_QUEUE_NAME:
        return [("QueueResult", QueueResult.ERROR.value)]
    try:
        queue = await context.store.queues.named_or_created(
            runner.account_sid, name, DEFAULT_MAX_SIZE
        )
    except Exception:
        log.exception("queue.store_failed", extra={"call_sid": runner.call.sid})
        return [("QueueResult", QueueResult.SYSTEM_ERROR.value)]
    now = queues.clock()
    entry = _Entry(runner, queue.sid, Waiting(runner.call.sid, now))
    try:
        position = queues.join(entry, queue.max_size, verb.max_queue_size)
    except QueueFull:
        return [("QueueResult", QueueResult.QUEUE_FULL.value)]
    runner.call.log("queue.joined", queue_sid=queue.sid, position=position)
    members = context.store.queue_members
    member = QueueMember(
        queue.sid, runner.call.sid, runner.account_sid, datetime.fromtimestamp(now, UTC)
    )
    result = QueueResult.SYSTEM_ERROR
    try:
        await members.add(member)
        result = await _wait(runner, verb, entry, document_url)
    except asyncio.CancelledError:
        if entry.redirected:  # a REST redirect: report it, off the call's path
            bridged = entry.claim is not None and entry.claim.bridged
            result = QueueResult.REDIRECTED_FROM_BRIDGED if bridged else QueueResult.REDIRECTED
            if verb.action:
                extra = _result(result, entry, queues.clock())
                action = urljoin(document_url or "", verb.action)
                params = runner.params() + extra
                context.tasks.spawn(_request(runner, action, verb.method, params))
        raise
    finally:
        if entry.claim is not None:
            entry.claim.caller_left.set()
        while not entry.claims.empty():  # taken just as it left: the agent moves on
            unheard = entry.claims.get_nowait()
            if not unheard.ready.done():
                unheard.ready.set_result(False)
        queues.leave(entry)
        context.tasks.spawn(members.remove(queue.sid, runner.call.sid))
        runner.call.log("queue.left", queue_sid=queue.sid, result=result.value)
    return _result(result, entry, queues.clock())


async def _request(runner: TwimlRunner, url: str, method: str, params: list) -> None:
    """The action of a caller who left by a redirect: its TwiML is not run."""
    try:
        await runner.services.fetch_twiml(url, method, params)
    except WebhookError as exc:
        log.warning("queue.action_failed", extra={"call_sid": runner.call.sid, "error": str(exc)})


def _result(result: QueueResult, entry: _Entry, now: float) -> list[tuple[str, str]]:
    waited = wait_seconds(entry.waiting.enqueued_at, entry.left_at or now)
    return [
        ("QueueResult", result.value),
        ("QueueSid", entry.queue_sid),
        ("QueueTime", str(waited)),
    ]


async def _wait(
    runner: TwimlRunner, verb: Enqueue, entry: _Entry, document_url: str | None
) -> QueueResult:
    """Wait for an agent, the caller's <Leave> or its hang-up; once taken, hear the
    whisper and stay until the bridge ends."""
    call = runner.call
    queues: CallQueues = _context(runner).queues
    while True:
        waiting = asyncio.ensure_future(_wait_experience(runner, verb, entry, document_url))
        taken = asyncio.ensure_future(entry.claims.get())
        gone = asyncio.ensure_future(call.ended.wait())
        try:
            await asyncio.wait([waiting, taken, gone], return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            entry.redirected = not call.ended.is_set()
            raise
        finally:
            for task in (waiting, taken, gone):
                task.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
        if taken.done() and not taken.cancelled():
            entry.claim = claim = taken.result()
            if await _taken(runner, entry, claim):
                return QueueResult.BRIDGED
            if call.ended.is_set():
                return QueueResult.HANGUP
            entry.claim = None
            continue  # the agent left before the bridge: back at the front, waiting again
        if call.ended.is_set():
            return QueueResult.HANGUP
        if (
            waiting.done()
            and not waiting.cancelled()
            and waiting.exception() is None
            and waiting.result()
        ):
            queues.leave(entry)
            return QueueResult.LEAVE
        return QueueResult.ERROR


async def _taken(runner: TwimlRunner, entry: _Entry, claim: _Claim) -> bool:
    """The caller, out of the line: the whisper, then the bridge until it ends. False
    when the agent is gone before the bridge (the caller is back at the front)."""
    call = runner.call
    context = _context(runner)
    entry.left_at = context.queues.clock()
    context.tasks.spawn(context.store.queue_members.remove(entry.queue_sid, call.sid))
    try:
        return await _hear_whisper_and_talk(runner, entry, claim)
    except asyncio.CancelledError:
        entry.redirected = not call.ended.is_set()
        raise


async def _hear_whisper_and_talk(runner: TwimlRunner, entry: _Entry, claim: _Claim) -> bool:
    call = runner.call
    context = _context(runner)
    queues: CallQueues = context.queues
    members = context.store.queue_members
    try:
        if claim.whisper is not None:
            url, method = claim.whisper
            extra = [
                ("QueueSid", entry.queue_sid),
                ("QueueTime", str(wait_seconds(entry.waiting.enqueued_at, queues.clock()))),
                ("DequeingCallSid", claim.agent.sid),
            ]
            try:
                await run_wait_document(runner, url, method, extra, whisper=True)
            except (WebhookError, TwimlError) as exc:  # the bridge goes ahead without it
                runner.errors.append(f"11200 {exc}")
                log.warning("queue.whisper_failed", extra={"call_sid": call.sid})
        claim.ready.set_result(not call.ended.is_set())
    finally:
        if not claim.ready.done():  # cancelled, or the whisper failed
            claim.ready.set_result(False)
    await until_any(call.ended, claim.over)
    if not claim.bridged and not call.ended.is_set():
        entry.left_at = None
        queues.put_back(entry)
        joined = datetime.fromtimestamp(entry.waiting.enqueued_at, UTC)
        member = QueueMember(entry.queue_sid, call.sid, runner.account_sid, joined)
        context.tasks.spawn(members.add(member))
        return False
    return claim.bridged


async def _wait_experience(
    runner: TwimlRunner, verb: Enqueue, entry: _Entry, document_url: str | None
) -> bool:
    """What the caller hears while waiting; True on ``<Leave>``, else runs until the
    caller is taken (cancelled) or hangs up."""
    call = runner.call
    queues: CallQueues = _context(runner).queues
    if verb.wait_url:
        url = urljoin(document_url or "", verb.wait_url)
        loop = asyncio.get_running_loop()
        while not call.ended.is_set():
            started = loop.time()
            try:
                left = await run_wait_document(
                    runner, url, verb.wait_url_method, queues.wait_params(entry)
                )
            except (WebhookError, TwimlError) as exc:
                runner.errors.append(f"11200 {exc}")
                log.warning("queue.wait_url_failed", extra={"call_sid": call.sid})
                break  # the hold music from here on
            if left:
                return True
            with contextlib.suppress(TimeoutError):
                remaining = MIN_ROUND_S - (loop.time() - started)
                if remaining > 0:
                    await asyncio.wait_for(call.ended.wait(), remaining)
    if call.leg is not None and not call.ended.is_set():
        music = asyncio.ensure_future(play(call.leg, hold_music(), loop=0))
        try:
            await call.ended.wait()
        finally:
            music.cancel()
            await asyncio.gather(music, return_exceptions=True)
    # Python 3.11's wait_for may swallow a cancel that meets the call's end: wait for
    # the end, not for a cancel.
    await call.ended.wait()
    return False


async def run_wait_document(
    runner: TwimlRunner, url: str, method: str, extra: list, *, whisper: bool = False
) -> bool:
    """Run a wait (or whisper) document, following its ``<Redirect>``s; True on
    ``<Leave>``. Verbs other than these are skipped with a warning."""
    for _ in range(MAX_WAIT_DOCUMENTS):
        text = await runner.services.fetch_twiml(url, method, runner.params() + extra)
        next_url: tuple[str, str] | None = None
        for verb in parse_voice_twiml(text).verbs:
            if runner.call.ended.is_set():
                return False
            if isinstance(verb, Say):
                await runner._say(verb)
            elif isinstance(verb, Play):
                await runner._play(verb)
            elif isinstance(verb, Pause):
                await runner._sleep(verb.length)
            elif isinstance(verb, Redirect):
                next_url = (urljoin(url, verb.url or url), verb.method)
                break
            elif isinstance(verb, Leave) and not whisper:
                return True
            elif isinstance(verb, Hangup) and not whisper:
                runner.call.hangup()
                return False
            else:
                log.warning(
                    "queue.verb_skipped",
                    extra={"call_sid": runner.call.sid, "verb": type(verb).__name__},
                )
        if next_url is None:
            return False
        url, method = next_url
    return False


# -- the agent: <Dial><Queue>


@dataclass(slots=True)
class QueueDialOutcome:
    """How a ``<Dial><Queue>`` ended: ``<Dial action>``'s parameters."""

    status: str  # DialCallStatus
    bridged: bool = False
    queue_sid: str | None = None
    caller_sid: str | None = None
    queue_time: int = 0
    duration: float = 0.0

    def params(self) -> list[tuple[str, str]]:
        fields = [("DialCallStatus", self.status), ("DialBridged", str(self.bridged).lower())]
        if self.queue_sid is not None:
            fields.append(("QueueSid", self.queue_sid))
        if self.caller_sid is not None:
            fields += [
                ("DialCallSid", self.caller_sid),
                ("DialCallDuration", str(round(self.duration))),
                ("QueueTime", str(self.queue_time)),
            ]
        return fields


async def dial_queue(runner: TwimlRunner, verb: Dial) -> QueueDialOutcome:
    """Bridge the runner's call (the agent) to the front caller of the queue."""
    noun = next(n for n in verb.nouns if isinstance(n, Queue))
    context = _context(runner)
    queues: CallQueues = context.queues
    agent = runner.call
    queue = await context.store.queues.named(runner.account_sid, noun.name.strip())
    if queue is None:  # Twilio: an error status to the action
        runner.errors.append(f"13xxx no queue named {noun.name!r}")
        return QueueDialOutcome("failed")
    if not await agent.answer():
        return QueueDialOutcome("canceled", queue_sid=queue.sid)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + verb.timeout
    whisper = (urljoin(runner.document_url or "", noun.url), noun.method) if noun.url else None
    while not agent.ended.is_set():
        entry = queues.take_front(queue.sid)
        if entry is None:
            if not await _await_caller(agent, queues.arrival(queue.sid), deadline - loop.time()):
                status = "canceled" if agent.ended.is_set() else "no-answer"
                return QueueDialOutcome(status, queue_sid=queue.sid)
            continue
        claim = _Claim(agent, whisper)
        entry.claims.put_nowait(claim)
        try:
            ready = await _caller_ready(agent, claim)
            if not ready:
                continue  # that caller hung up or was redirected: the next one
            caller = entry.runner.call
            queue_time = wait_seconds(entry.waiting.enqueued_at, queues.clock())
            duration = await _bridge(runner, agent, caller, verb, claim)
            return QueueDialOutcome("completed", True, queue.sid, caller.sid, queue_time, duration)
        finally:
            claim.over.set()
    return QueueDialOutcome("canceled", queue_sid=queue.sid)


async def _await_caller(agent, arrival: asyncio.Event, timeout: float) -> bool:
    """Wait (hearing ringback) for a caller to join; False on timeout or hang-up."""
    from control_api.voice.dial import ringback

    if timeout <= 0:
        return False
    tone = asyncio.ensure_future(play(agent.leg, ringback(), loop=0)) if agent.leg else None
    joined = asyncio.ensure_future(arrival.wait())
    gone = asyncio.ensure_future(agent.ended.wait())
    try:
        await asyncio.wait([joined, gone], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        return joined.done() and not agent.ended.is_set()
    finally:
        for task in (joined, gone, tone):
            if task is not None:
                task.cancel()
        if tone is not None:
            await asyncio.gather(tone, return_exceptions=True)


async def _caller_ready(agent, claim: _Claim) -> bool:
    gone = asyncio.ensure_future(agent.ended.wait())
    try:
        await asyncio.wait(
            [claim.ready, gone], timeout=CALLER_READY_S, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        gone.cancel()
    return claim.ready.done() and claim.ready.result() and not agent.ended.is_set()


async def _bridge(runner: TwimlRunner, agent, caller, verb: Dial, claim: _Claim) -> float:
    """Agent and caller talk until either hangs up, ``timeLimit`` or the agent's ``*``
    with ``hangupOnStar``; how long they talked. With ``--rtpengine`` two SIP parties
    talk through rtpengine (control_api/calls/engine_bridge.py), the in-process bridge
    running underneath until they are there (and staying when rtpengine cannot take
    them); both are moved back before either's TwiML goes on."""
    loop = asyncio.get_running_loop()
    star = loop.create_future()
    bridge = Bridge(agent.leg, caller.leg)
    on_dtmf = None
    if verb.hangup_on_star:

        def on_dtmf(side: int, digit: str) -> None:
            if side == 0 and digit == "*" and not star.done():
                star.set_result(True)

        bridge.on_dtmf = on_dtmf
    claim.bridged = True
    bridge.start()
    started = loop.time()
    engine = None
    waits: list[asyncio.Future[Any]] = []
    try:
        engine = await hand_over(_context(runner).rtpengines, agent, caller, on_dtmf=on_dtmf)
        if engine is not None:  # a fork started or stopped mid-bridge: rtpengine's copies
            bridge.on_replanned = engine.listeners_changed
            engine.listeners_changed()
        runner.bridged = (agent, caller)
        agent.log("queue.bridged", caller=caller.sid, mode="rtpengine" if engine else bridge.mode)
        waits = [
            asyncio.ensure_future(agent.ended.wait()),
            asyncio.ensure_future(caller.ended.wait()),
            asyncio.ensure_future(claim.caller_left.wait()),
        ]
        limit = verb.time_limit
        timeout = max(0.0, started + limit - loop.time()) if limit else None
        await asyncio.wait([*waits, star], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waits:
            waiter.cancel()
        star.cancel()
        bridge.stop()
        runner.bridged = None
        if engine is not None:  # both TwiMLs go on: whoever is still up comes back
            await engine.stop([agent, caller])
    return loop.time() - started
