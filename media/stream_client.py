"""Media Streams on a real WebSocket: the asyncio shell around :mod:`media.streams`.

callswitch is the WebSocket client (``ws://`` and ``wss://``, the ``websockets``
sans-I/O protocol on an asyncio transport, :mod:`media.websocket`).

``<Connect><Stream>`` (:class:`MediaStreamClient`): the caller's audio goes out as
``media`` messages as its packets arrive (an RTP session delivers them without its
jitter buffer; the application buffers for itself), and one frame of the
application's audio plays from the :class:`~media.streams.Playback` queue on each
20 ms tick through the leg's ``source``.

Nothing here may stall the call's media: a message is written to the transport at
once, and when the application reads too slowly for the socket's buffers to drain,
media messages are dropped and counted in ``dropped`` (control messages, marks and
``stop``, are always written).

Nor may an application that sends too fast stall anyone's media. What it sends is
read at the pace it can be played: once the playout queue is full (60 s of audio,
or as many marks waiting), the client stops reading the socket, so TCP holds the
application back, and reads again once a second of it has played; audio beyond
the bound within one message is dropped and counted in ``media_dropped``. Apart
from that, a stream reads at most :data:`MESSAGES_PER_WINDOW` messages per
:data:`MESSAGE_WINDOW_S` (any kind: media, mark, clear, garbage), pausing the
socket for the rest of the window, so a flood costs its call a bounded share of
the loop. ``mark`` and ``clear`` keep their order with the audio around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.exceptions import ConnectionClosed

from media.leg import Frame, Leg
from media.streams import (
    FRAME_MS,
    MAX_PENDING_MARKS,
    ClearReceived,
    ForkTracks,
    MarkReceived,
    MediaStream,
    Playback,
    ProtocolError,
    StreamAudio,
)
from media.taps import add_tap, remove_tap
from media.websocket import HIGH_WATER, WebSocketConnection, WebSocketOpenError, open_websocket

__all__ = ["ForkStreamClient", "MediaStreamClient", "StreamConnectError"]

log = logging.getLogger("callswitch.media")

CONNECT_TIMEOUT_S = 10.0
STOP_FLUSH_S = 2.0  # how long the closing handshake may take on hang-up
MAX_MESSAGE = 1 << 20
MESSAGE_WINDOW_S = 0.1
MESSAGES_PER_WINDOW = 200  # 2,000 messages/s: a 20 ms chunk at 40x real time
RESUME_FRAMES = 50  # a full playout queue is read from again once a second of it has played


class StreamConnectError(Exception):
    """The stream URL refused, timed out or failed the WebSocket handshake."""


class MediaStreamClient:
    """One ``<Connect><Stream>`` on one leg: :meth:`connect`, then :meth:`run`.

    ``send_buffer`` is how many bytes may wait in the transport (beyond the kernel's
    socket buffer) before media messages are dropped.
    """

    def __init__(
        self,
        leg: Leg,
        url: str,
        protocol: MediaStream,
        *,
        connect_timeout: float = CONNECT_TIMEOUT_S,
        send_buffer: int = HIGH_WATER,
        resolve: Callable[[str, int], Awaitable[str]] | None = None,
    ) -> None:
        self.leg = leg
        self.resolve = resolve  # the fetch policy: (host, port) -> the address to connect to
        self.url = url
        self.protocol = protocol
        self.connect_timeout = connect_timeout
        self.send_buffer = send_buffer
        self.playback = Playback()
        self.audio = StreamAudio(leg.codec)
        self.dropped = 0  # media messages not sent because the application was too slow
        self.sent = 0
        self.protocol_errors = 0
        self._ws: WebSocketConnection | None = None
        self._first_timestamp: int | None = None
        self._last_ms = -FRAME_MS
        self.held_back = 0  # times reading paused because the playout queue was full
        self._queue_full = False

    async def connect(self) -> None:
        """Open the WebSocket and send ``connected`` and ``start``."""
        try:
            await open_websocket(
                self.url,
                timeout=self.connect_timeout,
                max_size=MAX_MESSAGE,
                on_message=self._handle,
                high_water=self.send_buffer,
                resolve=self.resolve,
                message_budget=MESSAGES_PER_WINDOW,
                budget_window=MESSAGE_WINDOW_S,
                on_connection=self._attach,  # messages may come with the handshake
            )
        except WebSocketOpenError as exc:
            self._ws = None
            raise StreamConnectError(f"could not connect to {self.url}: {exc}") from exc
        self._send_control(self.protocol.connected())
        self._send_control(self.protocol.start())

    async def run(self, until: asyncio.Event) -> str | None:
        """Stream until the socket closes or ``until`` is set (the call ended).

        Returns None when the stream ended normally (the application closed it or
        the call ended), or what went wrong. The leg's callbacks are restored.
        """
        ws = self._ws
        assert ws is not None, "connect() first"
        leg = self.leg
        saved = leg.on_frame, leg.on_dtmf, leg.source
        leg.on_frame, leg.on_dtmf = self._on_frame, self._on_dtmf
        leg.source = self._next_frame
        leg.deliver_on_arrival(True)
        try:
            result: str | None = await _stream_until(ws, until, self.protocol)
            return result
        finally:
            leg.deliver_on_arrival(False)
            leg.on_frame, leg.on_dtmf, leg.source = saved

    # -- the media path (called as packets arrive and on ticks: never blocks)

    def _on_frame(self, frame: Frame) -> None:
        ws = self._ws
        if ws is None or not ws.writable:  # (run() installs this once connected)
            self.dropped += 1
            return
        audio = self.audio
        payload = frame.payload if audio.passthrough else audio.to_stream(frame.payload)
        if payload:
            ws.send_text(self.protocol.inbound_media(payload, self._media_ms(frame)))
            self.sent += 1

    def _media_ms(self, frame: Frame) -> int:
        """Milliseconds of media since the stream's first frame, from RTP timestamps
        (so a lost packet leaves its gap); never backwards, and 20 ms a frame for a
        leg whose frames carry no timestamps."""
        first = self._first_timestamp
        if first is None:
            first = self._first_timestamp = frame.timestamp
        elapsed = ((frame.timestamp - first) & 0xFFFFFFFF) * 1000 // self.leg.sample_rate
        if elapsed <= self._last_ms:
            elapsed = self._last_ms + frame.samples * 1000 // self.leg.sample_rate
        self._last_ms = elapsed
        return elapsed

    def _on_dtmf(self, digit: str) -> None:
        self._send_control(self.protocol.dtmf(digit))

    def _next_frame(self) -> bytes | None:
        playback = self.playback
        frame = playback.pop()
        if self._queue_full:
            self._maybe_read_again()
        if playback.has_reached_marks:
            for name in playback.take_marks():
                self._send_control(self.protocol.mark(name))
        if frame is None:
            return None
        audio = self.audio
        return frame if audio.passthrough else audio.to_leg(frame) or None

    def _send_control(self, message: bytes) -> None:
        ws = self._ws
        assert ws is not None, "connect() first"
        ws.send_text(message)
        self.sent += 1

    def _handle(self, message: bytes) -> None:
        event = self.protocol.receive_payload(message)
        if type(event) is bytes:  # a media message's audio: the common one
            playback = self.playback
            playback.push(event)
            if playback.full:
                self._hold_back()
        elif isinstance(event, MarkReceived):
            self.playback.push_mark(event.name)
            if self.playback.full:
                self._hold_back()
        elif isinstance(event, ClearReceived):
            for name in self.playback.clear():
                self._send_control(self.protocol.mark(name))
        elif isinstance(event, ProtocolError):
            self.protocol_errors += 1
            if self.protocol_errors == 1:
                log.info(
                    "stream.bad_message",
                    extra={"stream_sid": self.protocol.stream_sid, "error": event.reason},
                )

    # -- reading no faster than the application's audio can be played

    @property
    def media_dropped(self) -> int:
        """20 ms frames of the application's audio dropped beyond the playout bound."""
        return self.playback.dropped_frames

    def _attach(self, ws: WebSocketConnection) -> None:
        self._ws = ws

    def _hold_back(self) -> None:
        """The playout queue is full: read no more until some of it has played."""
        if self._ws is None:
            return
        if not self._queue_full:
            self._queue_full = True
            self.held_back += 1
            self._ws.pause_reading()

    def _maybe_read_again(self) -> None:
        """On a tick while held back: read again once a second's room has freed up."""
        playback = self.playback
        if (
            playback.queued_frames <= playback.max_frames - RESUME_FRAMES
            and playback.pending_marks <= MAX_PENDING_MARKS - RESUME_FRAMES
        ):
            self._queue_full = False
            if self._ws is not None:
                self._ws.resume_reading()

    @property
    def throttled(self) -> int:
        """Times reading paused because the application sent past the message budget."""
        return self._ws.throttled if self._ws is not None else 0


class ForkStreamClient(MediaStreamClient):
    """One ``<Start><Stream>`` fork: a one-way stream of the leg's audio.

    It listens through the leg's ``tap`` (:func:`media.taps.add_tap`, next to
    recordings and other forks) instead of taking the leg's callbacks, so the TwiML
    goes on using the leg. ``protocol.tracks`` says which sides are sent; media,
    mark and clear from the application are read and ignored. A leg without a
    ``tap`` (one that is not an RTP session) cannot be forked: :meth:`run` answers
    with an error at once.
    """

    def __init__(self, leg: Leg, url: str, protocol: MediaStream, **kwargs: Any) -> None:
        super().__init__(leg, url, protocol, **kwargs)
        self.tracks = ForkTracks(protocol)
        codec = leg.codec
        self._side_audio = [StreamAudio(codec), StreamAudio(codec)]  # transcoders keep state
        self._started_at = 0.0

    async def run(self, until: asyncio.Event) -> str | None:
        """Stream until the socket closes or ``until`` is set (call ended, fork stopped)."""
        ws = self._ws
        assert ws is not None, "connect() first"
        if not self.leg.tappable:
            ws.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(ws.closed), STOP_FLUSH_S)
            return "this call's audio cannot be forked"
        self._started_at = time.monotonic()
        add_tap(self.leg, self._on_tap, paced=False)  # a relaying bridge feeds it as it relays
        try:
            result: str | None = await _stream_until(ws, until, self.protocol)
            return result
        finally:
            remove_tap(self.leg, self._on_tap)

    def _on_tap(self, side: int, frame: Frame) -> None:
        """Called on the media tick: never blocks."""
        if not self.tracks.wants(side):
            return
        ws = self._ws
        if ws is None or not ws.writable:  # (run() installs this once connected)
            self.dropped += 1
            return
        audio = self._side_audio[side]
        codec = frame.codec  # another codec: a side heard elsewhere (rtpengine) in its own
        if codec is not audio.leg_codec and codec != audio.leg_codec:
            audio = self._side_audio[side] = StreamAudio(codec)
        payload = audio.to_stream(frame.payload)
        if not payload:
            return
        now_ms = int((time.monotonic() - self._started_at) * 1000)
        message = self.tracks.media(side, payload, now_ms)
        if message is not None:  # (it is: the side is wanted, checked above)
            ws.send_text(message)
            self.sent += 1

    def _handle(self, message: bytes) -> None:
        """One-way: whatever the application sends is ignored (within the budget)."""


async def _stream_until(
    ws: WebSocketConnection, until: asyncio.Event, protocol: MediaStream
) -> str | None:
    """Wait for the socket to close or ``until``; on ``until``, send ``stop`` and close.

    Returns None for a normal end, or what went wrong with the connection.
    """
    ended = asyncio.ensure_future(until.wait())
    closed = asyncio.shield(ws.closed)
    try:
        waiting: list[asyncio.Future[Any]] = [ended, closed]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not ws.closed.done():  # the call is over: tell the application, then close
            ws.send_text(protocol.stop())
            ws.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(ws.closed), STOP_FLUSH_S)
            return None
        return _failure(ws.closed.result())
    finally:
        ended.cancel()
        if not ws.closed.done() and ws.transport is not None:
            ws.transport.abort()
        ws.on_message = _ignore


def _ignore(message: bytes) -> None:
    pass


def _failure(closed: ConnectionClosed | None) -> str | None:
    """What a connection's end says went wrong, if anything."""
    if closed is None:
        return None
    return f"connection lost: {closed}"
