"""``<Connect><Stream>``: the call's audio both ways over a Media Streams WebSocket.

The call talks to the application at ``url`` (reference §6) until the socket
closes or the caller hangs up; then the TwiML goes on with the next verb (or at
``<Connect action>``). A URL that refuses, times out or breaks mid-call ends
the stream with an error, logged and reported to ``statusCallback``; the call
itself carries on. Status callbacks carry ``StreamEvent`` stream-started,
stream-stopped or stream-error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from control_api.sids import new_sid, utcnow
from control_api.twiml.verbs import Connect, Stream
from media.stream_client import MediaStreamClient, StreamConnectError
from media.streams import MediaStream

if TYPE_CHECKING:
    from control_api.voice.runner import TwimlRunner

__all__ = ["StreamOutcome", "connect_stream"]

log = logging.getLogger("callswitch.voice")


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
    client = MediaStreamClient(call.leg, stream.url or "", protocol)
    try:
        await client.connect()
    except StreamConnectError as exc:
        outcome.error = str(exc)
    else:
        call.log("stream.started", stream_sid=protocol.stream_sid)
        await _status(runner, stream, protocol, "stream-started")
        outcome.error = await client.run(call.ended)
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


async def _status(
    runner: TwimlRunner, stream: Stream, protocol: MediaStream, event: str, error: str = ""
) -> None:
    voice = runner.services.voice
    if not stream.status_callback or voice is None or getattr(voice, "outbox", None) is None:
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
    await voice.outbox.enqueue(
        account_sid=runner.account_sid,
        url=stream.status_callback,
        method=stream.status_callback_method or "POST",
        params=params,
        call_sid=runner.call.sid,
    )
