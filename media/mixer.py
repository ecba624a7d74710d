"""The conference bridge: N parties, each hearing everyone but itself (an N-1 mix).

Mixing works on 8 kHz 16-bit PCM in one preallocated ``rows x 160`` int16 array, one row per
participant (DESIGN.md, the call model). Once per 20 ms tick :meth:`Mixer.mix` sums the rows of
everyone who is heard into an int32 total and gives each listener ``total - own``, saturated to
int16 (never wrapped). The arithmetic is whole-array numpy; Python work per participant is only
its decode at :meth:`Mixer.push` time and its encode in :meth:`Mixer.mix`. A listener who put
nothing into the mix hears exactly ``total``, so that payload is encoded once per codec and shared.

Codecs: PCMU and PCMA (ITU-T G.711) through :mod:`media.g711`; G.722 and Opus through
:mod:`media.codecs`, resampled to and from 8 kHz by :mod:`media.resample`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from media import codecs, g711
from media.resample import Resampler

__all__ = [
    "FRAME_SAMPLES",
    "SAMPLE_RATE",
    "Mixer",
    "Participant",
    "UnknownCodec",
    "decoder_for",
    "encoder_for",
]

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz

Decoder = Callable[[bytes], np.ndarray]
Encoder = Callable[[np.ndarray], bytes]


class UnknownCodec(ValueError):
    """A codec :mod:`media.codecs` does not know."""


# -- codec adapter: every party is mixed as 8 kHz PCM --------------------------------------


def decoder_for(codec: str) -> Decoder:
    """A function from one 20 ms payload of ``codec`` to 8 kHz int16 samples."""
    name = codec.upper()
    if name == "PCMU":
        return g711.ulaw_decode
    if name == "PCMA":
        return g711.alaw_decode
    try:
        decoder = codecs.decoder(codec)
    except codecs.UnsupportedCodec as exc:
        raise UnknownCodec(f"no decoder for {codec}") from exc
    to_mix = Resampler(decoder.sample_rate, SAMPLE_RATE)
    return lambda payload: to_mix.process(decoder.decode(payload))


def encoder_for(codec: str) -> Encoder:
    """A function from 160 int16 samples at 8 kHz to one 20 ms payload of ``codec``."""
    name = codec.upper()
    if name == "PCMU":
        return g711.ulaw_encode
    if name == "PCMA":
        return g711.alaw_encode
    try:
        encoder = codecs.encoder(codec)
    except codecs.UnsupportedCodec as exc:
        raise UnknownCodec(f"no encoder for {codec}") from exc
    from_mix = Resampler(SAMPLE_RATE, encoder.sample_rate)
    return lambda pcm: encoder.encode(from_mix.process(pcm))


# -- the bridge -------------------------------------------------------------------------------


@dataclass(eq=False)
class Participant:
    """One party of a :class:`Mixer`.

    - ``muted``: not heard by the others (still hears them).
    - ``hold``: neither hears nor is heard; hears silence.
    - ``deaf``: hears silence but is still heard.
    - ``aside``: is sent nothing at all, so that its leg plays something of its own
      (hold music, an announcement to it alone); heard or not as the flags above say.
    - ``coaching``: the leg id of the one party who hears it (a coach whispering to
      an agent); nobody else does. None: everyone hears it.
    """

    leg_id: Hashable
    codec: str
    muted: bool = False
    hold: bool = False
    deaf: bool = False
    aside: bool = False
    coaching: Hashable | None = None
    row: int = field(default=-1, repr=False)
    decode: Decoder = field(default=g711.ulaw_decode, repr=False)
    encode: Encoder = field(default=g711.ulaw_encode, repr=False)

    @property
    def heard(self) -> bool:
        return not (self.muted or self.hold)

    @property
    def listening(self) -> bool:
        return not (self.hold or self.deaf)


class Mixer:
    """An N-party conference bridge: push each party's frame, then :meth:`mix` once per tick.

    A party that pushed nothing since the last :meth:`mix` contributes silence. If a party
    pushes twice within one tick, the later frame replaces the earlier one.
    """

    _frames: np.ndarray  # (rows, samples): each party's last frame, decoded
    _pushed: np.ndarray  # a frame arrived this tick
    _heard: np.ndarray  # scratch: pushed and neither muted nor on hold

    def __init__(self, capacity: int = 8) -> None:
        self.participants: dict[Hashable, Participant] = {}
        self._free_rows: list[int] = []
        self._rows_used = 0  # one past the highest row ever handed out
        self._allocate(max(1, capacity))
        self._total = np.zeros(FRAME_SAMPLES, dtype=np.int32)
        self._total16 = np.zeros(FRAME_SAMPLES, dtype=np.int16)
        self._announcements: deque[list[Any]] = deque()  # [samples, offset]
        self._background: Callable[[], np.ndarray | None] | None = None
        self._silence: dict[str, bytes] = {}
        # With ``measure_levels`` each mix keeps each party's peak of the tick (0 when it
        # sent nothing): :meth:`level`, for who is speaking.
        self.measure_levels = False
        self._levels = np.zeros(0, dtype=np.int32)

    def _allocate(self, rows: int) -> None:
        old_rows = getattr(self, "_frames", None)
        self._frames = np.zeros((rows, FRAME_SAMPLES), dtype=np.int16)
        self._work = np.zeros((rows, FRAME_SAMPLES), dtype=np.int32)
        self._out = np.zeros((rows, FRAME_SAMPLES), dtype=np.int16)
        pushed = np.zeros(rows, dtype=bool)
        heard = np.zeros(rows, dtype=bool)
        if old_rows is not None:
            count = old_rows.shape[0]
            self._frames[:count] = old_rows
            pushed[:count] = self._pushed
            heard[:count] = self._heard
        self._pushed = pushed  # a frame arrived this tick
        self._heard = heard  # scratch: pushed and neither muted nor on hold

    @property
    def capacity(self) -> int:
        rows: int = self._frames.shape[0]
        return rows

    def __len__(self) -> int:
        return len(self.participants)

    def __contains__(self, leg_id: Hashable) -> bool:
        return leg_id in self.participants

    def add(self, leg_id: Hashable, codec: str, *, muted: bool = False) -> Participant:
        """Join ``leg_id``, who sends and hears ``codec``. Raises :class:`UnknownCodec`."""
        if leg_id in self.participants:
            raise ValueError(f"{leg_id!r} is already in the conference")
        decode, encode = decoder_for(codec), encoder_for(codec)
        if self._free_rows:
            row = self._free_rows.pop()
        else:
            if self._rows_used == self.capacity:
                self._allocate(self.capacity * 2)
            row = self._rows_used
            self._rows_used += 1
        participant = Participant(leg_id, codec, muted=muted, row=row)
        participant.decode = decode
        participant.encode = encode
        self.participants[leg_id] = participant
        return participant

    def remove(self, leg_id: Hashable) -> Participant | None:
        participant = self.participants.pop(leg_id, None)
        if participant is None:
            return None
        self._frames[participant.row] = 0
        self._pushed[participant.row] = False
        self._free_rows.append(participant.row)
        # Lowest rows first, so the active block [0, _rows_used) stays dense.
        self._free_rows.sort(reverse=True)
        while self._free_rows and self._free_rows[0] == self._rows_used - 1:
            self._free_rows.pop(0)
            self._rows_used -= 1
        return participant

    def push(self, leg_id: Hashable, payload: bytes) -> None:
        """``leg_id``'s latest 20 ms payload, decoded now into its row. Unknown ids are ignored."""
        participant = self.participants.get(leg_id)
        if participant is None:
            return
        pcm = participant.decode(payload)
        row = self._frames[participant.row]
        count = min(pcm.size, FRAME_SAMPLES)
        row[:count] = pcm[:count]
        if count < FRAME_SAMPLES:
            row[count:] = 0
        self._pushed[participant.row] = True

    def level(self, leg_id: Hashable) -> int:
        """The party's peak sample in the last mix (with ``measure_levels``; else 0)."""
        participant = self.participants.get(leg_id)
        if participant is None or participant.row >= self._levels.size:
            return 0
        return int(self._levels[participant.row])

    def announce(self, samples: np.ndarray) -> None:
        """Play ``samples`` (8 kHz int16, e.g. :func:`media.tones.beep`) to every listener.

        The sound is spread over the next ticks, 160 samples a tick, on top of the conversation.
        Several announcements overlap rather than queue.
        """
        samples = np.asarray(samples, dtype=np.int16).reshape(-1)
        if samples.size:
            self._announcements.append([samples, 0])

    def background(self, source: Callable[[], np.ndarray | None] | None) -> None:
        """Mix ``source()`` (160 int16 samples a tick, None for a silent tick) into every
        listener's audio: the music of a conference that has not started. None stops it."""
        self._background = source

    def _add_extras(self, total: np.ndarray) -> None:
        for item in list(self._announcements):
            samples, offset = item
            chunk = samples[offset : offset + FRAME_SAMPLES]
            total[: chunk.size] += chunk
            item[1] = offset + FRAME_SAMPLES
            if item[1] >= samples.size:
                self._announcements.remove(item)
        if self._background is not None:
            chunk = self._background()
            if chunk is not None:
                chunk = np.asarray(chunk).reshape(-1)[:FRAME_SAMPLES]
                total[: chunk.size] += chunk

    def _silence_for(self, participant: Participant) -> bytes:
        payload = self._silence.get(participant.codec)
        if payload is None:
            payload = participant.encode(np.zeros(FRAME_SAMPLES, dtype=np.int16))
            self._silence[participant.codec] = payload
        return payload

    @property
    def total(self) -> np.ndarray:
        """The last tick's whole mix (every party heard, announcements, background): what
        a listener outside the room hears, a conference recording."""
        return self._total16

    def mix(self) -> dict[Hashable, bytes]:
        """One tick: each participant's payload, encoded in its codec (none for a party
        set ``aside``). Resets the pushed frames."""
        used = self._rows_used
        frames = self._frames[:used]
        heard = self._heard[:used]
        heard[:] = self._pushed[:used]
        if self.measure_levels:
            peaks = np.abs(frames.astype(np.int32)).max(axis=1) if used else self._levels[:0]
            self._levels = np.where(heard, peaks, 0)
        whispers: dict[Hashable, np.ndarray] = {}
        for participant in self.participants.values():
            if not participant.heard:
                heard[participant.row] = False
            elif participant.coaching is not None:
                if heard[participant.row]:  # heard by the coached party alone
                    whispers[participant.coaching] = frames[participant.row].astype(np.int32)
                heard[participant.row] = False
        # Rows of parties not heard this tick must not reach the total.
        frames[~heard] = 0

        total = self._total
        np.sum(frames, axis=0, dtype=np.int32, out=total)
        self._add_extras(total)
        np.clip(total, -32768, 32767, out=self._work[0])  # borrow a row as scratch
        np.copyto(self._total16, self._work[0], casting="unsafe")

        work = self._work[:used]
        out = self._out[:used]
        np.subtract(total, frames, out=work)
        np.clip(work, -32768, 32767, out=work)
        np.copyto(out, work, casting="unsafe")

        shared: dict[str, bytes] = {}
        payloads: dict[Hashable, bytes] = {}
        for leg_id, participant in self.participants.items():
            whisper = whispers.get(leg_id)
            if participant.aside:
                continue
            if not participant.listening:
                payloads[leg_id] = self._silence_for(participant)
            elif whisper is not None:
                own = work[participant.row] if heard[participant.row] else total
                payloads[leg_id] = participant.encode(_saturated(own + whisper))
            elif heard[participant.row]:
                payloads[leg_id] = participant.encode(out[participant.row])
            else:
                payload = shared.get(participant.codec)
                if payload is None:
                    payload = participant.encode(self._total16)
                    shared[participant.codec] = payload
                payloads[leg_id] = payload

        # Rows left unpushed next tick are zeroed by the heard mask above.
        self._pushed[:used] = False
        return payloads


def _saturated(samples: np.ndarray) -> np.ndarray:
    result: np.ndarray = np.clip(samples, -32768, 32767).astype(np.int16)
    return result
