"""``<Play>``'s audio loader: the cache is bounded in decoded bytes (LRU), expiry is
checked when an entry is added too, and decoding stops at the duration cap."""

from __future__ import annotations

import io
import wave

import httpx
import numpy as np
import pytest

from control_api.voice.audio import AudioLoader, AudioLoadError


def wav(seconds: float, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.zeros(int(seconds * rate), dtype="<i2").tobytes())
    return buffer.getvalue()


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def loader(files: dict[str, bytes], **kwargs) -> tuple[AudioLoader, list[str]]:
    fetched: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(request.url.path)
        body = files.get(request.url.path)
        return httpx.Response(200, content=body) if body else httpx.Response(404)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AudioLoader(http, **kwargs), fetched


async def test_the_cache_is_bounded_in_decoded_bytes_least_recently_used_first():
    files = {f"/{name}.wav": wav(1.0) for name in "abc"}  # 16,000 bytes decoded each
    audio, fetched = loader(files, max_bytes=40_000)
    for name in "ab":
        await audio.load(f"http://x/{name}.wav")
    await audio.load("http://x/a.wav")  # a is now the most recently used
    await audio.load("http://x/c.wav")  # 48,000 > 40,000: b goes
    assert audio.bytes == 32_000 and len(audio) == 2 and audio.evictions == 1
    await audio.load("http://x/a.wav")
    await audio.load("http://x/b.wav")
    assert fetched == ["/a.wav", "/b.wav", "/c.wav", "/b.wav"]
    await audio.close()


async def test_a_file_larger_than_the_cache_is_played_but_not_kept():
    audio, _ = loader({"/big.wav": wav(2.0)}, max_bytes=10_000)
    samples = await audio.load("http://x/big.wav")
    assert samples.size == 16_000
    assert audio.bytes == 0 and len(audio) == 0
    await audio.close()


async def test_expired_entries_go_when_another_is_added():
    clock = Clock()
    files = {"/a.wav": wav(1.0), "/b.wav": wav(1.0)}
    audio, fetched = loader(files, ttl=300, clock=clock)
    await audio.load("http://x/a.wav")
    clock.now += 301
    await audio.load("http://x/b.wav")  # a has expired: dropped now, not on its next read
    assert len(audio) == 1 and audio.bytes == 16_000
    await audio.load("http://x/a.wav")
    assert fetched == ["/a.wav", "/b.wav", "/a.wav"]
    await audio.close()


async def test_decoding_stops_at_the_duration_cap_and_says_so_once():
    refusals = []
    audio, _ = loader(
        {"/long.wav": wav(5.0)},
        max_seconds=2.0,
        refused=lambda reason, source_ip, **fields: refusals.append((reason, source_ip)),
    )
    samples = await audio.load("http://audio.example/long.wav")
    assert samples.size == 16_000  # two seconds at 8 kHz
    assert refusals == [("play.too_long", "audio.example")]
    await audio.load("http://audio.example/long.wav")  # from the cache: not again
    assert len(refusals) == 1
    await audio.close()


async def test_a_short_file_is_not_reported():
    refusals = []
    audio, _ = loader(
        {"/ok.wav": wav(1.0)}, max_seconds=2.0, refused=lambda *a, **k: refusals.append(a)
    )
    await audio.load("http://x/ok.wav")
    assert refusals == []
    with pytest.raises(AudioLoadError):
        await audio.load("http://x/missing.wav")
    await audio.close()
