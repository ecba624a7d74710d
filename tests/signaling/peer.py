"""An aiortc peer standing in for a browser: plays a tone, records what it hears.

aiortc here is an independent WebRTC implementation on the far side of our
leg: it does its own ICE, DTLS-SRTP and codecs, and knows nothing of ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import time

import av
import numpy as np
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from media.tones import dominant_frequency, level_dbfs
from signaling.webrtc_leg import use_host_addresses

# Tests talk over loopback only: our legs and these peers gather 127.0.0.1 alone
# (aioice would otherwise offer the machine's other interfaces and skip loopback).
use_host_addresses(["127.0.0.1"])

RATE = 48000
FRAME = 960  # 20 ms at 48 kHz


class ToneTrack(MediaStreamTrack):
    """A sine of ``frequency`` Hz at about -12 dBFS, paced at 20 ms frames, 48 kHz mono."""

    kind = "audio"

    def __init__(self, frequency: float) -> None:
        super().__init__()
        self.frequency = frequency
        self._start: float | None = None
        self._samples = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._samples / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        t = (np.arange(FRAME) + self._samples) / RATE
        wave = (0.25 * 32767 * np.sin(2 * np.pi * self.frequency * t)).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(wave.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._samples
        frame.time_base = fractions.Fraction(1, RATE)
        self._samples += FRAME
        return frame


class Peer:
    """One aiortc peer connection sending a tone and keeping what it receives (8 kHz mono)."""

    def __init__(self, frequency: float = 440.0, codecs: tuple[str, ...] | None = None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.tone = ToneTrack(frequency)
        self.transceiver = self.pc.addTransceiver(self.tone, direction="sendrecv")
        if codecs:
            from aiortc import RTCRtpSender

            caps = RTCRtpSender.getCapabilities("audio").codecs
            self.transceiver.setCodecPreferences(
                [c for name in codecs for c in caps if c.mimeType.lower() == name.lower()]
            )
        self.received: list[np.ndarray] = []
        self._task: asyncio.Task | None = None
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=8000)
        self.pc.on("track", self._on_track)

    def _on_track(self, track) -> None:
        if track.kind == "audio":
            self._task = asyncio.ensure_future(self._receive(track))

    async def _receive(self, track) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                frame = await track.recv()
                for out in self._resampler.resample(frame):
                    self.received.append(out.to_ndarray().reshape(-1))

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def accept(self, answer_sdp: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(answer_sdp, "answer"))

    def heard(self, seconds: float = 1.0) -> tuple[float, float]:
        """Dominant frequency and level (dBFS) of the last ``seconds`` received."""
        if not self.received:
            return 0.0, -120.0
        samples = np.concatenate(self.received)[-int(8000 * seconds) :]
        return dominant_frequency(samples, 8000), level_dbfs(samples)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.tone.stop()
        await self.pc.close()
