"""Playback into a leg's source: frames, loops, barge-in, pauses, digits, and a real RTP pair."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from media import player
from media.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from media.player import cached_frames, encode_frames, play, play_silence, send_digits
from media.tones import dominant_frequency, level_dbfs, sine


class FakeLeg:
    """What the player needs of a leg: codec, rate, a source slot, send_dtmf, closed."""

    def __init__(self, codec: str = "PCMU") -> None:
        self.codec = codec
        self.sample_rate = 8000
        self.source = None
        self.closed = False
        self.sent_dtmf: list[tuple[str, int, float]] = []

    def send_dtmf(self, digit: str, duration_ms: int = 100) -> None:
        self.sent_dtmf.append((digit, duration_ms, time.monotonic()))


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def start(coroutine) -> asyncio.Task:
    task = asyncio.ensure_future(coroutine)
    await settle()
    return task


def pull(leg: FakeLeg, ticks: int) -> list[bytes | None]:
    """What ``ticks`` media-clock ticks would take from the leg's source."""
    return [leg.source() for _ in range(ticks)]


async def test_one_second_tone_is_fifty_frames_of_the_tone():
    leg = FakeLeg()
    tone = sine(440, 1.0, amplitude=0.4)
    task = await start(play(leg, tone))
    frames = pull(leg, 49)
    await settle()
    assert not task.done()  # one frame still to go
    frames += pull(leg, 1)
    await settle()
    assert task.done() and task.result() is None
    assert leg.source is None
    assert all(type(f) is bytes and len(f) == 160 for f in frames)
    samples = ulaw_decode(b"".join(frames))
    np.testing.assert_array_equal(samples, ulaw_decode(ulaw_encode(tone)))
    assert dominant_frequency(samples) == pytest.approx(440, abs=1)


@pytest.mark.parametrize(
    ("codec", "encode", "decode", "silence"),
    [("PCMU", ulaw_encode, ulaw_decode, 0xFF), ("PCMA", alaw_encode, alaw_decode, 0xD5)],
)
async def test_last_frame_is_padded_with_the_codecs_silence(codec, encode, decode, silence):
    leg = FakeLeg(codec)
    tone = sine(1000, 8100 / 8000, amplitude=0.3)  # 50 frames and 100 samples
    task = await start(play(leg, tone))
    frames = pull(leg, 51)
    await settle()
    assert task.done() and leg.source is None
    assert frames[-1][:100] == encode(tone[-100:])
    assert frames[-1][100:] == bytes([silence]) * 60
    np.testing.assert_array_equal(decode(b"".join(frames))[:8100], decode(encode(tone)))


async def test_loop_plays_the_buffer_that_many_times():
    leg = FakeLeg()
    tone = sine(600, 0.1)  # 5 frames
    task = await start(play(leg, tone, loop=3))
    frames = pull(leg, 14)
    await settle()
    assert not task.done()
    frames += pull(leg, 1)
    await settle()
    assert task.done() and leg.source is None
    assert frames == encode_frames(tone, "PCMU") * 3


async def test_loop_zero_repeats_until_cancelled_then_gives_the_leg_back():
    leg = FakeLeg()
    tone = sine(600, 0.1)
    task = await start(play(leg, tone, loop=0))
    frames = pull(leg, 5 * 40)
    await settle()
    assert not task.done()
    assert frames == encode_frames(tone, "PCMU") * 40
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leg.source is None


async def test_barge_in_mid_play_propagates_cancellation_and_restores_source():
    leg = FakeLeg()
    task = await start(play(leg, sine(440, 2.0)))
    pull(leg, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leg.source is None


async def test_finishing_does_not_take_the_leg_from_a_newer_playback():
    leg = FakeLeg()
    first = await start(play(leg, sine(440, 1.0)))
    second = await start(play(leg, sine(880, 1.0)))
    newer = leg.source
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert leg.source is newer
    pull(leg, 50)
    await settle()
    assert second.done() and leg.source is None


async def test_playback_ends_when_the_leg_closes(monkeypatch):
    monkeypatch.setattr(player, "CLOSED_POLL", 0.02)
    leg = FakeLeg()
    task = await start(play(leg, sine(440, 5.0)))
    pull(leg, 3)
    leg.closed = True
    await asyncio.wait_for(task, 30)
    assert leg.source is None


async def test_empty_audio_returns_at_once_without_touching_the_leg():
    leg = FakeLeg()
    leg.source = marker = object()
    await asyncio.wait_for(play(leg, np.zeros(0, dtype=np.int16), loop=0), 0.5)
    assert leg.source is marker


async def test_bad_arguments_are_refused_before_playing():
    tone = sine(440, 0.1)
    with pytest.raises(ValueError, match="PCMU, PCMA, G722 or OPUS"):
        await play(FakeLeg("GSM"), tone)
    with pytest.raises(ValueError, match="loop"):
        await play(FakeLeg(), tone, loop=-1)
    with pytest.raises(ValueError, match="mono"):
        await play(FakeLeg(), np.zeros((2, 160), dtype=np.int16))
    with pytest.raises(TypeError):
        await play(FakeLeg(), tone.astype(np.float32))
    wideband = FakeLeg()
    wideband.sample_rate = 16000
    with pytest.raises(ValueError, match="16000"):
        await play(wideband, tone)


def test_frames_are_precomputed_bytes():
    frames = encode_frames(sine(440, 0.05), "pcmu")  # 400 samples: 3 frames
    assert len(frames) == 3 and all(type(f) is bytes and len(f) == 160 for f in frames)
    assert encode_frames(np.zeros(0, dtype=np.int16), "PCMA") == []


# -- <Pause>


async def test_silence_sends_nothing_for_the_right_number_of_ticks():
    leg = FakeLeg()
    task = await start(play_silence(leg, 1.0))
    taken = pull(leg, 49)
    await settle()
    assert not task.done() and taken == [None] * 49
    taken = pull(leg, 1)
    await settle()
    assert task.done() and taken == [None] and leg.source is None


async def test_silence_can_be_cancelled():
    leg = FakeLeg()
    task = await start(play_silence(leg, 10))
    pull(leg, 3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert leg.source is None


async def test_zero_pause_returns_at_once():
    await asyncio.wait_for(play_silence(FakeLeg(), 0), 0.1)


# -- digits


async def test_digits_go_out_one_by_one_and_w_waits_half_a_second():
    leg = FakeLeg()
    started = time.monotonic()
    await send_digits(leg, "1w#a")
    elapsed = time.monotonic() - started
    assert [(d, ms) for d, ms, _ in leg.sent_dtmf] == [("1", 100), ("#", 100), ("A", 100)]
    times = [t for _, _, t in leg.sent_dtmf]
    # Never sooner than the digit plus its gap (and the w); a loaded machine may be later.
    assert times[1] - times[0] >= 0.2 + 0.5 - 0.01
    assert times[2] - times[1] >= 0.2 - 0.01
    assert elapsed >= 0.2 + 0.5 + 0.2 + 0.2 - 0.01


async def test_invalid_digits_send_nothing():
    leg = FakeLeg()
    with pytest.raises(ValueError, match="x"):
        await send_digits(leg, "12x3")
    assert leg.sent_dtmf == []


async def test_digits_stop_when_the_leg_closes():
    leg = FakeLeg()
    second_sent = asyncio.Event()

    def sent(digit: str, duration_ms: int = 100) -> None:
        FakeLeg.send_dtmf(leg, digit, duration_ms)
        if len(leg.sent_dtmf) == 2:
            leg.closed = True  # closes while the second digit plays
            second_sent.set()

    leg.send_dtmf = sent
    task = asyncio.ensure_future(send_digits(leg, "123456", gap=0.0))
    await asyncio.wait_for(second_sent.wait(), 30)
    await asyncio.wait_for(task, 30)
    assert [d for d, _, _ in leg.sent_dtmf] == ["1", "2"]


# -- a real RTP session pair on loopback


async def test_tone_played_into_a_session_arrives_at_its_peer(pair):
    a, b = pair
    received = []
    b.on_frame = lambda frame: received.append(frame.payload)
    tone = sine(523, 1.0, amplitude=0.4)
    started = time.monotonic()
    await asyncio.wait_for(play(a, tone), 30)
    elapsed = time.monotonic() - started
    assert elapsed >= 0.98  # paced by the media clock: a second of audio, not a burst
    assert a.source is None and a.packets_sent == 50
    deadline = time.monotonic() + 30
    while len(received) < 45 and time.monotonic() < deadline:  # b's jitter buffer drains
        await asyncio.sleep(0.02)
    samples = ulaw_decode(b"".join(received))
    assert 45 <= len(received) <= 50
    assert dominant_frequency(samples) == pytest.approx(523, abs=2)
    assert level_dbfs(samples) == pytest.approx(level_dbfs(tone), abs=1.0)


async def test_digits_sent_into_a_session_arrive_as_rfc4733(pair):
    a, b = pair
    digits = []
    b.on_dtmf = digits.append
    await send_digits(a, "4w#")
    await asyncio.sleep(0.3)
    assert digits == ["4", "#"]


def test_the_same_prompt_is_encoded_once():
    samples = (np.sin(np.arange(800) / 5) * 8000).astype(np.int16)
    first = cached_frames(samples, "PCMU")
    assert cached_frames(samples, "PCMU") is first
    assert cached_frames(samples, "PCMA") is not first
    assert cached_frames(samples.copy(), "PCMU") is not first  # another array, same values
    assert first == encode_frames(samples, "PCMU")


def test_encoded_frames_are_forgotten_with_their_samples():
    """The encoded-frames cache holds its arrays weakly: once the audio cache lets a
    file go (and no call plays it), its frames go too, so this cache stays within
    ``--audio-cache-mb`` as well."""
    import gc

    from media import player

    samples = np.zeros(16000, dtype=np.int16)
    frames = player.cached_frames(samples, "PCMU")
    assert player.cached_frames(samples, "PCMU") is frames
    key = (id(samples), "PCMU")
    assert key in player._ENCODED
    del samples
    gc.collect()
    assert key not in player._ENCODED
