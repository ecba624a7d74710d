"""A bidirectional Media Stream on a real WebSocket: the asyncio shell around
:mod:`media.streams`.

callswitch is the WebSocket client (the ``websockets`` library, ``ws://`` and
``wss://``). Each 20 ms tick the caller's frame goes out as a ``media``
message and one frame of the application's audio plays from the
:class:`~media.streams.Playback` queue through the leg's ``source``.

Nothing here may stall the call's media: the tick callbacks only put text into
a bounded outgoing queue that a writer task drains; when the application reads
too slowly and the queue is full, media messages are dropped and counted in
``dropped`` (control messages, marks and ``stop``, are always queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK

from media.leg import Frame, Leg
from media.streams import (
    FRAME_MS,
    ClearReceived,
    ForkTracks,
    MarkReceived,
    MediaReceived,
    MediaStream,
    Playback,
    ProtocolError,
    StreamAudio,
)
from media.taps import add_tap, remove_tap

__all__ = ["ForkStreamClient", "MediaStreamClient", "StreamConnectError"]

log = logging.getLogger("callswitch.media")

CONNECT_TIMEOUT_S = 10.0
OUTGOING_QUEUE = 250  # media messages waiting to be sent: 5 s of audio
STOP_FLUSH_S = 2.0  # how long the stop message may take to leave on hang-up
MAX_MESSAGE = 1 << 20


class StreamConnectError(Exception):
    """The stream URL refused, timed out or failed the WebSocket handshake."""


class MediaStreamClient:
    """One ``<Connect><Stream>`` on one leg: :meth:`connect`, then :meth:`run`."""

    def __init__(
        self,
        leg: Leg,
        url: str,
        protocol: MediaStream,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        queue_size: int = OUTGOING_QUEUE,
    ) -> None:
        self.leg = leg
        self.url = url
        self.protocol = protocol
        self.connect_timeout = connect_timeout
        self.queue_size = queue_size
        self.playback = Playback()
        self.audio = StreamAudio(getattr(leg, "codec", "PCMU"))
        self.dropped = 0  # media messages not sent because the application was too slow
        self.sent = 0
        self.protocol_errors = 0
        self._outgoing: deque[tuple[bool, str]] = deque()  # (is media, text)
        self._queued_media = 0
        self._wakeup = asyncio.Event()
        self._frames_seen = 0
        self._ws: ClientConnection | None = None

    async def connect(self) -> None:
        """Open the WebSocket and queue ``connected`` and ``start``."""
        try:
            self._ws = await asyncio.wait_for(
                connect(
                    self.url,
                    open_timeout=self.connect_timeout,
                    max_size=MAX_MESSAGE,
                    compression=None,
                ),
                self.connect_timeout + 1,
            )
        except TimeoutError as exc:
            raise StreamConnectError(f"timed out connecting to {self.url}") from exc
        except Exception as exc:  # refused, DNS, TLS, a handshake the server got wrong
            raise StreamConnectError(f"could not connect to {self.url}: {exc}") from exc
        self._queue_control(self.protocol.connected())
        self._queue_control(self.protocol.start())

    async def run(self, until: asyncio.Event) -> str | None:
        """Stream until the socket closes or ``until`` is set (the call ended).

        Returns None when the stream ended normally (the application closed it or
        the call ended), or what went wrong. The leg's callbacks are restored.
        """
        assert self._ws is not None, "connect() first"
        leg = self.leg
        saved = leg.on_frame, leg.on_dtmf, getattr(leg, "source", None)
        leg.on_frame, leg.on_dtmf = self._on_frame, self._on_dtmf
        leg.source = self._next_frame
        reader = asyncio.ensure_future(self._read())
        writer = asyncio.ensure_future(self._write())
        ended = asyncio.ensure_future(until.wait())
        error: str | None = None
        try:
            await asyncio.wait([reader, writer, ended], return_when=asyncio.FIRST_COMPLETED)
            if ended.done():  # the call is over: tell the application, then close
                self._queue_control(self.protocol.stop())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drained(writer), STOP_FLUSH_S)
            else:
                error = _failure(reader) or _failure(writer)
        finally:
            leg.on_frame, leg.on_dtmf, leg.source = saved
            for task in (reader, writer, ended):
                task.cancel()
            await asyncio.gather(reader, writer, ended, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), STOP_FLUSH_S)
        return error

    # -- the media path (called on the media clock's tick: never blocks)

    def _on_frame(self, frame: Frame) -> None:
        self._frames_seen += 1
        if self._queued_media >= self.queue_size:
            self.dropped += 1
            return
        payload = self.audio.to_stream(frame.payload)
        if not payload:
            return
        timestamp = (self._frames_seen - 1) * FRAME_MS
        self._outgoing.append((True, self.protocol.media(payload, timestamp=timestamp)))
        self._queued_media += 1
        self._wakeup.set()

    def _on_dtmf(self, digit: str) -> None:
        self._queue_control(self.protocol.dtmf(digit))

    def _next_frame(self) -> bytes | None:
        frame = self.playback.pop()
        for name in self.playback.take_marks():
            self._queue_control(self.protocol.mark(name))
        if frame is None:
            return None
        return self.audio.to_leg(frame) or None

    def _queue_control(self, text: str) -> None:
        self._outgoing.append((False, text))
        self._wakeup.set()

    # -- the socket

    async def _write(self) -> None:
        ws = self._ws
        outgoing = self._outgoing
        while True:
            while outgoing:
                is_media, text = outgoing.popleft()
                if is_media:
                    self._queued_media -= 1
                await ws.send(text)
                self.sent += 1
            self._wakeup.clear()
            await self._wakeup.wait()

    async def _drained(self, writer: asyncio.Task) -> None:
        while self._outgoing and not writer.done():
            await asyncio.sleep(0.01)

    async def _read(self) -> None:
        try:
            async for message in self._ws:
                self._handle(message)
        except ConnectionClosedOK:
            return

    def _handle(self, message: str | bytes) -> None:
        event = self.protocol.receive(message)
        if isinstance(event, MediaReceived):
            self.playback.push(event.payload)
        elif isinstance(event, MarkReceived):
            self.playback.push_mark(event.name)
        elif isinstance(event, ClearReceived):
            for name in self.playback.clear():
                self._queue_control(self.protocol.mark(name))
        elif isinstance(event, ProtocolError):
            self.protocol_errors += 1
            if self.protocol_errors == 1:
                log.info(
                    "stream.bad_message",
                    extra={"stream_sid": self.protocol.stream_sid, "error": event.reason},
                )


class ForkStreamClient(MediaStreamClient):
    """One ``<Start><Stream>`` fork: a one-way stream of the leg's audio.

    It listens through the leg's ``tap`` (:func:`media.taps.add_tap`, next to
    recordings and other forks) instead of taking the leg's callbacks, so the TwiML
    goes on using the leg. ``protocol.tracks`` says which sides are sent; media,
    mark and clear from the application are read and ignored. A leg without a
    ``tap`` (one that is not an RTP session) cannot be forked: :meth:`run` answers
    with an error at once.
    """

    def __init__(self, leg: Leg, url: str, protocol: MediaStream, **kwargs) -> None:
        super().__init__(leg, url, protocol, **kwargs)
        self.tracks = ForkTracks(protocol)
        codec = getattr(leg, "codec", "PCMU")
        self._side_audio = (StreamAudio(codec), StreamAudio(codec))  # transcoders keep state
        self._started_at = 0.0

    async def run(self, until: asyncio.Event) -> str | None:
        """Stream until the socket closes or ``until`` is set (call ended, fork stopped)."""
        assert self._ws is not None, "connect() first"
        if not hasattr(self.leg, "tap"):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), STOP_FLUSH_S)
            return "this call's audio cannot be forked"
        self._started_at = time.monotonic()
        add_tap(self.leg, self._on_tap)
        reader = asyncio.ensure_future(self._read())
        writer = asyncio.ensure_future(self._write())
        ended = asyncio.ensure_future(until.wait())
        error: str | None = None
        try:
            await asyncio.wait([reader, writer, ended], return_when=asyncio.FIRST_COMPLETED)
            remove_tap(self.leg, self._on_tap)
            if ended.done():
                self._queue_control(self.protocol.stop())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._drained(writer), STOP_FLUSH_S)
            else:
                error = _failure(reader) or _failure(writer)
        finally:
            remove_tap(self.leg, self._on_tap)
            for task in (reader, writer, ended):
                task.cancel()
            await asyncio.gather(reader, writer, ended, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ws.close(), STOP_FLUSH_S)
        return error

    def _on_tap(self, side: int, frame: Frame) -> None:
        """Called on the media tick: never blocks."""
        if not self.tracks.wants(side):
            return
        if self._queued_media >= self.queue_size:
            self.dropped += 1
            return
        payload = self._side_audio[side].to_stream(frame.payload)
        if not payload:
            return
        now_ms = int((time.monotonic() - self._started_at) * 1000)
        text = self.tracks.media(side, payload, now_ms)
        if text is None:
            return
        self._outgoing.append((True, text))
        self._queued_media += 1
        self._wakeup.set()

    def _handle(self, message: str | bytes) -> None:
        """One-way: whatever the application sends is ignored."""


def _failure(task: asyncio.Task) -> str | None:
    """What ended a reader or writer task, if it ended in error."""
    if not task.done() or task.cancelled():
        return None
    exc = task.exception()
    if exc is None or isinstance(exc, ConnectionClosedOK):
        return None
    if isinstance(exc, ConnectionClosed):
        return f"connection lost: {exc}"
    return f"{type(exc).__name__}: {exc}"
