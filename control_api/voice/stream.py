"""``<Connect><Stream>``: the call's audio both ways over a Media Streams WebSocket.

The call talks to the application at ``url`` (reference §6) until the socket
closes or the caller hangs up; then the TwiML goes on with the next verb (or at
``<Connect action>``). A URL that refuses, times out or breaks mid-call ends
the stream with an error, logged and reported to ``statusCallback``; the call
itself carries on. Status callbacks carry ``StreamEvent`` stream-started,
stream-stopped or stream-error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from control_api.sids import new_sid, utcnow
from control_api.twiml.verbs import Connect, Stream
from media.stream_client import ForkStreamClient, MediaStreamClient, StreamConnectError
from media.streams import TRACKS, MediaStream

if TYPE_CHECKING:
    from control_api.voice.runner import TwimlRunner

__all__ = [
    "MAX_FORKS",
    "STREAMS",
    "CallForks",
    "Fork",
    "StreamOutcome",
    "StreamStats",
    "connect_stream",
]

MAX_FORKS = 4  # Twilio's limit of streams on one call
STOP_WAIT_S = 3.0  # how long a stop waits for the stream's stop message to leave

log = logging.getLogger("callswitch.voice")


@dataclass(slots=True)
class StreamStats:
    """The Media Streams of this process, for metrics: those running now, and the
    totals of those that ended."""

    live: set = field(default_factory=set)  # the clients streaming now
    started: int = 0
    failed: int = 0  # refused, timed out or broken
    dropped: int = 0  # media messages dropped by streams that ended (slow applications)
    inbound_dropped: int = 0  # application audio frames dropped beyond the playout bound
    read_pauses: int = 0  # reading paused: playout queue full or message budget spent

    def running(self, client) -> None:
        self.live.add(client)
        self.started += 1

    def ended(self, client, error: str | None) -> None:
        self.live.discard(client)
        self.dropped += client.dropped
        self.inbound_dropped += client.media_dropped
        self.read_pauses += client.held_back + client.throttled
        self.failed += error is not None

    @property
    def dropped_total(self) -> int:
        return self.dropped + sum(client.dropped for client in self.live)

    @property
    def inbound_dropped_total(self) -> int:
        return self.inbound_dropped + sum(client.media_dropped for client in self.live)

    @property
    def read_pauses_total(self) -> int:
        live = sum(client.held_back + client.throttled for client in self.live)
        return self.read_pauses + live


STREAMS = StreamStats()


@dataclass(slots=True)
class StreamOutcome:
    """How a ``<Connect><Stream>`` ended: ``error`` is None when it ended normally."""

    stream_sid: str
    error: str | None = None
    dropped: int = 0


async def connect_stream(runner: TwimlRunner, verb: Connect) -> StreamOutcome:
    """Run the stream of ``verb`` on the runner's (answered) call until it ends."""
    call = runner.call
    stream = verb.stream
    protocol = MediaStream(
        runner.account_sid,
        call.sid,
        new_sid("MZ"),
        custom_parameters=dict(stream.parameters),
        tracks=("inbound",),
    )
    outcome = StreamOutcome(protocol.stream_sid)
    if call.leg is None or call.ended.is_set():
        return outcome
    client = MediaStreamClient(
        call.leg,
        stream.url or "",
        protocol,
        resolve=_fetch_guard(runner),
    )
    try:
        await client.connect()
    except StreamConnectError as exc:
        outcome.error = str(exc)
        STREAMS.failed += 1
    else:
        STREAMS.running(client)
        call.log("stream.started", stream_sid=protocol.stream_sid)
        try:
            await _status(runner, stream, protocol, "stream-started")
            outcome.error = await client.run(call.ended)
        finally:
            STREAMS.ended(client, outcome.error)
        outcome.dropped = client.dropped
    if outcome.error is not None:
        runner.errors.append(f"31920 {outcome.error}")
        log.warning(
            "stream.error",
            extra={"call_sid": call.sid, "stream_sid": protocol.stream_sid, "error": outcome.error},
        )
        await _status(runner, stream, protocol, "stream-error", outcome.error)
    else:
        call.log("stream.stopped", stream_sid=protocol.stream_sid, dropped=outcome.dropped)
        await _status(runner, stream, protocol, "stream-stopped")
    return outcome


def _fetch_guard(runner: TwimlRunner):
    """--fetch-deny for the stream's WebSocket (none for a runner without a runtime)."""
    context = runner.services.context
    return context.fetch_guard if context is not None else None


async def _status(
    runner: TwimlRunner, stream: Stream, protocol: MediaStream, event: str, error: str = ""
) -> None:
    context = runner.services.context
    if not stream.status_callback or context is None:
        return
    params = [
        ("AccountSid", runner.account_sid),
        ("CallSid", runner.call.sid),
        ("StreamSid", protocol.stream_sid),
        ("StreamName", stream.name or protocol.stream_sid),
        ("StreamEvent", event),
        ("Timestamp", utcnow().isoformat(timespec="milliseconds").replace("+00:00", "Z")),
    ]
    if error:
        params.append(("StreamError", error))
    await context.outbox.enqueue(
        account_sid=runner.account_sid,
        url=stream.status_callback,
        method=stream.status_callback_method or "POST",
        params=params,
        call_sid=runner.call.sid,
    )


# -- <Start><Stream> and the Streams resource: forks running beside the TwiML -----------------


@dataclass(slots=True)
class Fork:
    """One one-way stream of a call: ``status`` is in-progress, then stopped."""

    stream: Stream
    protocol: MediaStream
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    status: str = "in-progress"
    date_updated: datetime = field(default_factory=utcnow)
    task: asyncio.Task | None = None

    @property
    def sid(self) -> str:
        return self.protocol.stream_sid

    @property
    def name(self) -> str | None:
        return self.stream.name


class CallForks:
    """The forks of one call's audio (``<Start><Stream>``, ``POST …/Streams.json``).

    Each runs in a task of its own until it is stopped (``<Stop><Stream>``, the REST
    ``Status=stopped``), the application closes the socket, or the call ends; the
    TwiML goes on meanwhile. Kept in memory only, for as long as the call lives.
    """

    def __init__(self, runner: TwimlRunner) -> None:
        # Weak: the runner holds us, and a cycle would keep each ended call's runner,
        # leg and call until a full collection, which the server runs rarely.
        self._runner = weakref.ref(runner)
        self.forks: list[Fork] = []

    @property
    def runner(self) -> TwimlRunner:
        runner = self._runner()
        if runner is None:
            raise RuntimeError("the call's TwiML runner is gone")
        return runner

    def find(self, sid_or_name: str) -> Fork | None:
        """The running or stopped fork with that MZ sid or name (the newest of a name)."""
        for fork in reversed(self.forks):
            if sid_or_name in (fork.sid, fork.name) or sid_or_name == fork.stream.url:
                return fork
        return None

    def start(self, stream: Stream) -> Fork:
        """Start a fork of the call's (answered) audio; ValueError when the name is
        taken by a running fork or ``MAX_FORKS`` run already."""
        running = [fork for fork in self.forks if fork.status == "in-progress"]
        if len(running) >= MAX_FORKS:
            raise ValueError(f"A call may have at most {MAX_FORKS} streams")
        if stream.name and any(fork.name == stream.name for fork in running):
            raise ValueError(f"A stream named {stream.name!r} is running on this call already")
        runner = self.runner
        protocol = MediaStream(
            runner.account_sid,
            runner.call.sid,
            new_sid("MZ"),
            custom_parameters=dict(stream.parameters),
            tracks=TRACKS.get(stream.track, ("inbound",)),
        )
        fork = Fork(stream, protocol)
        fork.task = asyncio.get_running_loop().create_task(self._run(fork))
        self.forks.append(fork)
        return fork

    async def stop(self, fork: Fork) -> Fork:
        """Stop ``fork`` and wait (a little) for its ``stop`` message to go out."""
        fork.stop_requested.set()
        if fork.task is not None and not fork.task.done():
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(fork.task), STOP_WAIT_S)
        self._stopped(fork)
        return fork

    def _stopped(self, fork: Fork) -> None:
        if fork.status != "stopped":
            fork.status = "stopped"
            fork.date_updated = utcnow()

    async def _run(self, fork: Fork) -> None:
        runner = self.runner
        call = runner.call
        error: str | None = None
        until = asyncio.Event()
        watchers = [
            asyncio.ensure_future(call.ended.wait()),
            asyncio.ensure_future(fork.stop_requested.wait()),
        ]
        for watcher in watchers:
            watcher.add_done_callback(lambda _: until.set())
        try:
            if call.leg is None or call.ended.is_set():
                error = "the call has no audio to stream"
            else:
                client = ForkStreamClient(
                    call.leg,
                    fork.stream.url or "",
                    fork.protocol,
                    resolve=_fetch_guard(runner),
                )
                try:
                    await client.connect()
                except StreamConnectError as exc:
                    error = str(exc)
                    STREAMS.failed += 1
                else:
                    STREAMS.running(client)
                    call.log("stream.started", stream_sid=fork.sid, fork=True)
                    try:
                        await _status(runner, fork.stream, fork.protocol, "stream-started")
                        error = await client.run(until)
                    finally:
                        STREAMS.ended(client, error)
                    call.log("stream.stopped", stream_sid=fork.sid, dropped=client.dropped)
            self._stopped(fork)
            if error is not None:
                runner.errors.append(f"31920 {error}")
                log.warning(
                    "stream.error",
                    extra={"call_sid": call.sid, "stream_sid": fork.sid, "error": error},
                )
                await _status(runner, fork.stream, fork.protocol, "stream-error", error)
            else:
                await _status(runner, fork.stream, fork.protocol, "stream-stopped")
        finally:
            self._stopped(fork)
            for watcher in watchers:
                watcher.cancel()
