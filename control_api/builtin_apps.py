"""The applications every node has without configuration (issue 2).

``echo`` sends the caller's audio back (the classic echo test), ``tone``
plays a 1 kHz tone until the caller presses a key, and ``ringing`` rings
until the caller gives up (for testing CANCEL).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

import numpy as np

from control_api.calls.call import Call
from media.g711 import alaw_encode, ulaw_encode
from media.tones import sine

__all__ = ["BUILTIN_APPS", "echo", "ringing", "tone"]

TONE_HZ = 1000
TONE_AMPLITUDE = 0.3  # about -13.5 dBFS: a standard test-tone level, well clear of clipping
RINGING_LIMIT_S = 180.0

_ENCODERS = {"PCMU": ulaw_encode, "PCMA": alaw_encode}


async def echo(call: Call) -> None:
    """Return every frame the caller sends, untouched (same codec both ways)."""
    if not await call.answer():
        return
    leg = call.leg
    assert leg is not None  # a call answered has its RTP leg
    leg.on_frame = leg.send_frame
    await call.ended.wait()


async def tone(call: Call) -> None:
    """A continuous 1 kHz tone; any DTMF digit hangs up."""
    if not await call.answer():
        return
    leg = call.leg
    assert leg is not None  # a call answered has its RTP leg
    leg.source = _looping_source(_tone_frames(leg.codec, leg.sample_rate))
    # One future for either way the call goes on: a digit, or its end (a callback,
    # not a task waiting on `call.ended`: this runs for every call at full rate).
    outcome: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def settle(digit: str | None) -> None:
        if not outcome.done():
            outcome.set_result(digit)

    leg.on_dtmf = settle
    if call.ended.is_set():
        return
    call.on_ended.append(lambda _call: settle(None))
    digit = await outcome
    if digit is not None:
        call.log("app.digit", digit=digit)
        call.hangup()


async def ringing(call: Call) -> None:
    """Ring and never answer; give up with 480 after three minutes."""
    call.ring()
    try:
        await asyncio.wait_for(call.ended.wait(), RINGING_LIMIT_S)
    except TimeoutError:
        call.reject(480)


@functools.cache
def _tone_frames(codec: str, rate: int) -> tuple[bytes, ...]:
    """One second of the tone as 20 ms frames, made once per codec for every call.

    A whole-Hz tone fills one second with whole periods, so the frames loop seamlessly.
    """
    data = _ENCODERS[codec](np.asarray(sine(TONE_HZ, 1.0, rate, TONE_AMPLITUDE), np.int16))
    frame = rate // 50
    return tuple(data[i : i + frame] for i in range(0, len(data) - frame + 1, frame))


def _looping_source(frames: tuple[bytes, ...]) -> Callable[[], bytes]:
    position = 0

    def next_frame() -> bytes:
        nonlocal position
        payload = frames[position]
        position = (position + 1) % len(frames)
        return payload

    return next_frame


BUILTIN_APPS: dict[str, Callable[[Call], Awaitable[None]]] = {
    "echo": echo,
    "tone": tone,
    "ringing": ringing,
}
