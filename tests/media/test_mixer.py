"""The conference mixer: who hears whom, at what level, in which codec."""

from __future__ import annotations

import numpy as np
import pytest

from media.conference import ConferenceRoom
from media.g711 import SILENCE_ULAW, alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from media.leg import Frame, Leg
from media.mixer import FRAME_SAMPLES, Mixer, UnknownCodec
from media.tones import ToneGenerator, beep

RATE = 8000
TICKS = 50  # one second: every test frequency falls on an exact 1 Hz FFT bin
AMPLITUDE = 0.2
EXPECTED = AMPLITUDE * 32767

DECODE = {"PCMU": ulaw_decode, "PCMA": alaw_decode}
ENCODE = {"PCMU": ulaw_encode, "PCMA": alaw_encode}


def tone_amplitude(samples: np.ndarray, frequency: int) -> float:
    """Peak amplitude of the ``frequency`` component of one second of 8 kHz audio."""
    assert samples.size == RATE
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64))) * 2.0 / samples.size
    return float(spectrum[frequency])


def run(mixer: Mixer, senders: dict, ticks: int = TICKS, codecs: dict | None = None) -> dict:
    """Push each sender's tone for ``ticks`` ticks; return every participant's decoded output.

    ``senders`` maps leg id to a ToneGenerator, or to None for a participant that sends nothing.
    """
    codecs = codecs or {}
    heard: dict = {leg_id: [] for leg_id in mixer.participants}
    for _ in range(ticks):
        for leg_id, generator in senders.items():
            if generator is not None:
                codec = codecs.get(leg_id, "PCMU")
                mixer.push(leg_id, ENCODE[codec](generator.next_frame()))
        for leg_id, payload in mixer.mix().items():
            assert len(payload) == FRAME_SAMPLES
            heard[leg_id].append(DECODE[codecs.get(leg_id, "PCMU")](payload))
    return {leg_id: np.concatenate(frames) for leg_id, frames in heard.items()}


def three_party(**flags) -> tuple[Mixer, dict]:
    mixer = Mixer()
    for leg_id in "abc":
        mixer.add(leg_id, "PCMU")
    senders = {
        "a": ToneGenerator(440, amplitude=AMPLITUDE),
        "b": ToneGenerator(1000, amplitude=AMPLITUDE),
        "c": ToneGenerator(1500, amplitude=AMPLITUDE),
    }
    return mixer, senders


FREQ = {"a": 440, "b": 1000, "c": 1500}


def assert_hears(output: np.ndarray, present: set[str], absent: set[str]) -> None:
    for leg_id in present:
        level = tone_amplitude(output, FREQ[leg_id])
        assert level == pytest.approx(EXPECTED, rel=0.05), (leg_id, level)
    for leg_id in absent:
        assert tone_amplitude(output, FREQ[leg_id]) < 0.01 * EXPECTED, leg_id


def test_each_party_hears_the_other_two_and_not_itself():
    mixer, senders = three_party()
    out = run(mixer, senders)
    assert_hears(out["a"], {"b", "c"}, {"a"})
    assert_hears(out["b"], {"a", "c"}, {"b"})
    assert_hears(out["c"], {"a", "b"}, {"c"})


def test_the_mix_is_the_sum_of_the_others_sample_by_sample():
    mixer = Mixer()
    mixer.add("a", "PCMU")
    mixer.add("b", "PCMU")
    mixer.add("c", "PCMU")
    frames = {k: ToneGenerator(f, amplitude=0.1).next_frame() for k, f in FREQ.items()}
    for leg_id, frame in frames.items():
        mixer.push(leg_id, ulaw_encode(frame))
    decoded = {k: ulaw_decode(ulaw_encode(v)).astype(np.int32) for k, v in frames.items()}
    out = mixer.mix()
    expected_a = (decoded["b"] + decoded["c"]).astype(np.int16)
    assert out["a"] == ulaw_encode(expected_a)


def test_a_muted_party_is_heard_by_nobody_but_hears_everyone():
    mixer, senders = three_party()
    mixer.participants["c"].muted = True
    out = run(mixer, senders)
    assert_hears(out["a"], {"b"}, {"a", "c"})
    assert_hears(out["b"], {"a"}, {"b", "c"})
    assert_hears(out["c"], {"a", "b"}, {"c"})


def test_muted_at_add():
    mixer, senders = Mixer(), three_party()[1]
    mixer.add("a", "PCMU")
    mixer.add("b", "PCMU", muted=True)
    mixer.add("c", "PCMU")
    assert mixer.participants["b"].muted
    out = run(mixer, senders)
    assert_hears(out["a"], {"c"}, {"a", "b"})


def test_hold_excludes_both_ways():
    mixer, senders = three_party()
    mixer.participants["b"].hold = True
    out = run(mixer, senders)
    assert_hears(out["a"], {"c"}, {"a", "b"})
    assert_hears(out["c"], {"a"}, {"b", "c"})
    assert not np.any(out["b"])  # digital silence


def test_hold_sends_the_codecs_silence_payload():
    mixer, senders = three_party()
    mixer.participants["b"].hold = True
    for leg_id, generator in senders.items():
        mixer.push(leg_id, ulaw_encode(generator.next_frame()))
    assert mixer.mix()["b"] == bytes([SILENCE_ULAW]) * FRAME_SAMPLES


def test_a_party_set_aside_is_sent_nothing_and_heard_as_its_flags_say():
    mixer, senders = three_party()
    mixer.participants["b"].aside = True
    heard: dict[str, list] = {"a": [], "c": []}
    for _ in range(TICKS):
        for leg_id, generator in senders.items():
            mixer.push(leg_id, ulaw_encode(generator.next_frame()))
        payloads = mixer.mix()
        assert "b" not in payloads  # its leg plays its own audio (an announcement)
        for leg_id, frames in heard.items():
            frames.append(ulaw_decode(payloads[leg_id]))
    assert_hears(np.concatenate(heard["a"]), {"b", "c"}, {"a"})
    mixer.participants["b"].hold = True  # on hold with its hold music: not heard
    for leg_id, generator in senders.items():
        mixer.push(leg_id, ulaw_encode(generator.next_frame()))
    assert set(mixer.mix()) == {"a", "c"}


def test_a_coach_is_heard_by_the_coached_party_alone_and_hears_everyone():
    mixer, senders = three_party()
    mixer.participants["c"].coaching = "a"
    out = run(mixer, senders)
    assert_hears(out["a"], {"b", "c"}, {"a"})
    assert_hears(out["b"], {"a"}, {"b", "c"})
    assert_hears(out["c"], {"a", "b"}, {"c"})


def test_a_muted_coach_is_heard_by_nobody():
    mixer, senders = three_party()
    mixer.participants["c"].coaching = "a"
    mixer.participants["c"].muted = True
    out = run(mixer, senders)
    assert_hears(out["a"], {"b"}, {"a", "c"})


def test_levels_are_each_partys_peak_of_the_tick_when_measured():
    mixer, senders = three_party()
    assert mixer.level("a") == 0
    mixer.push("a", ulaw_encode(senders["a"].next_frame()))
    mixer.mix()
    assert mixer.level("a") == 0  # not measured
    mixer.measure_levels = True
    mixer.push("a", ulaw_encode(senders["a"].next_frame()))
    mixer.mix()
    assert mixer.level("a") == pytest.approx(EXPECTED, rel=0.05)
    assert mixer.level("b") == 0 and mixer.level("nobody") == 0  # sent nothing, unknown
    mixer.mix()
    assert mixer.level("a") == 0


def test_deaf_party_is_heard_but_hears_silence():
    mixer, senders = three_party()
    mixer.participants["a"].deaf = True
    out = run(mixer, senders)
    assert not np.any(out["a"])
    assert_hears(out["b"], {"a", "c"}, {"b"})


def test_a_party_that_stops_sending_contributes_silence():
    mixer, senders = three_party()
    run(mixer, senders, ticks=10)
    senders["c"] = None
    out = run(mixer, senders)
    assert_hears(out["a"], {"b"}, {"a", "c"})
    assert_hears(out["b"], {"a"}, {"b", "c"})
    assert_hears(out["c"], {"a", "b"}, {"c"})


def test_listeners_who_contribute_nothing_share_one_encoding_per_codec():
    mixer = Mixer()
    for leg_id in ("talker", "quiet1", "quiet2"):
        mixer.add(leg_id, "PCMU")
    mixer.add("quiet_alaw", "PCMA")
    talker = ToneGenerator(1000, amplitude=AMPLITUDE).next_frame()
    mixer.push("talker", ulaw_encode(talker))
    out = mixer.mix()
    assert out["quiet1"] is out["quiet2"]
    assert out["quiet1"] == ulaw_encode(ulaw_decode(ulaw_encode(talker)))
    assert out["quiet_alaw"] == alaw_encode(ulaw_decode(ulaw_encode(talker)))
    assert out["talker"] == bytes([SILENCE_ULAW]) * FRAME_SAMPLES


def test_three_loud_tones_saturate_without_wrapping():
    mixer = Mixer()
    for leg_id in "abc":
        mixer.add(leg_id, "PCMU")
    generators = {k: ToneGenerator(f, amplitude=0.9) for k, f in FREQ.items()}
    sent = {k: [] for k in "abc"}
    heard = {k: [] for k in "abc"}
    for _ in range(TICKS):
        for leg_id, generator in generators.items():
            payload = ulaw_encode(generator.next_frame())
            sent[leg_id].append(ulaw_decode(payload).astype(np.int32))
            mixer.push(leg_id, payload)
        for leg_id, payload in mixer.mix().items():
            heard[leg_id].append(ulaw_decode(payload).astype(np.int32))
    sent = {k: np.concatenate(v) for k, v in sent.items()}
    heard = {k: np.concatenate(v) for k, v in heard.items()}
    ideal = sent["b"] + sent["c"]
    assert np.abs(ideal).max() > 40000  # the test really overflows int16
    expected = np.clip(ideal, -32768, 32767)
    # Within G.711's quantisation step at full scale (1024 for mu-law's top segment).
    assert np.abs(heard["a"] - expected).max() <= 1100
    overflowing = np.abs(ideal) > 33000
    assert np.all(np.sign(heard["a"][overflowing]) == np.sign(ideal[overflowing]))
    assert np.abs(heard["a"]).max() >= 32000


def test_mixed_codecs_one_pcma_among_pcmu():
    mixer, senders = Mixer(), three_party()[1]
    mixer.add("a", "PCMU")
    mixer.add("b", "PCMA")
    mixer.add("c", "PCMU")
    out = run(mixer, senders, codecs={"b": "PCMA"})
    assert_hears(out["a"], {"b", "c"}, {"a"})
    assert_hears(out["b"], {"a", "c"}, {"b"})
    assert_hears(out["c"], {"a", "b"}, {"c"})


def test_announcement_is_heard_by_every_listener_over_the_next_ticks():
    mixer = Mixer()
    for leg_id in "abc":
        mixer.add(leg_id, "PCMU")
    mixer.participants["c"].hold = True
    talker = ToneGenerator(440, amplitude=AMPLITUDE)
    sound = beep(1000, 0.4)
    mixer.announce(sound)
    heard = {k: [] for k in "abc"}
    for _ in range(TICKS):
        mixer.push("a", ulaw_encode(talker.next_frame()))
        for leg_id, payload in mixer.mix().items():
            heard[leg_id].append(ulaw_decode(payload))
    a = np.concatenate(heard["a"])
    b = np.concatenate(heard["b"])
    # The beep plays in the first 400 ms (20 ticks) and then stops.
    for output in (a, b):
        assert np.abs(output[: sound.size].astype(np.int32)).max() > 0
        beep_part = np.concatenate([output[: sound.size], np.zeros(RATE - sound.size)])
        assert tone_amplitude(beep_part, 1000) > 0.1 * 0.25 * 32767
        tail = np.concatenate([np.zeros(sound.size), output[sound.size :]])
        assert tone_amplitude(tail, 1000) < 20
    assert tone_amplitude(b, 440) == pytest.approx(EXPECTED, rel=0.05)
    assert not np.any(np.concatenate(heard["c"]))


def test_background_music_is_mixed_in_until_stopped():
    mixer = Mixer()
    mixer.add("a", "PCMU")
    mixer.add("b", "PCMU")
    music = ToneGenerator(1000, amplitude=AMPLITUDE)
    mixer.background(music.next_frame)
    out = run(mixer, {"a": None, "b": None})
    assert tone_amplitude(out["a"], 1000) == pytest.approx(EXPECTED, rel=0.05)
    mixer.background(None)
    out = run(mixer, {"a": None, "b": None})
    assert not np.any(out["a"])


def test_rows_are_reused_and_the_array_grows():
    mixer = Mixer(capacity=2)
    for index in range(20):
        mixer.add(index, "PCMU")
    assert mixer.capacity >= 20
    for index in range(0, 20, 2):
        mixer.remove(index)
    rows = {p.row for p in mixer.participants.values()}
    assert len(rows) == 10
    newcomer = mixer.add("new", "PCMU")
    assert newcomer.row == 0
    tone = ToneGenerator(1000, amplitude=AMPLITUDE)
    out = run(mixer, {"new": tone})
    assert tone_amplitude(out[1], 1000) == pytest.approx(EXPECTED, rel=0.05)
    assert len(out) == 11


def test_removed_party_is_no_longer_mixed():
    mixer, senders = three_party()
    mixer.push("c", ulaw_encode(senders["c"].next_frame()))
    mixer.remove("c")
    out = run(mixer, {k: v for k, v in senders.items() if k != "c"})
    assert set(out) == {"a", "b"}
    assert_hears(out["a"], {"b"}, {"a", "c"})
    assert mixer.remove("c") is None
    mixer.push("c", b"\x00" * 160)  # ignored


def test_duplicate_and_unknown_participants():
    mixer = Mixer()
    mixer.add("a", "PCMU")
    with pytest.raises(ValueError):
        mixer.add("a", "PCMU")
    with pytest.raises(UnknownCodec):
        mixer.add("x", "NO-SUCH-CODEC")
    assert "x" not in mixer


def test_short_payload_is_padded_with_silence():
    mixer = Mixer()
    mixer.add("a", "PCMU")
    mixer.add("b", "PCMU")
    mixer.push("a", ulaw_encode(np.full(80, 1000, dtype=np.int16)))
    heard = ulaw_decode(mixer.mix()["b"])
    assert np.all(heard[:80] > 900) and not np.any(heard[80:])


# -- the room: legs and a clock


class FakeClock:
    def __init__(self) -> None:
        self.ticks: dict[int, object] = {}

    def subscribe(self, tick) -> int:
        self.ticks[id(tick)] = tick
        return id(tick)

    def unsubscribe(self, token: int) -> None:
        self.ticks.pop(token, None)

    def tick(self) -> None:
        for tick in list(self.ticks.values()):
            tick()


class FakeLeg(Leg):
    def __init__(self, codec: str = "PCMU") -> None:
        super().__init__()
        self.codec = codec
        self.sent: list[bytes] = []

    def send_frame(self, frame: Frame) -> None:
        assert frame.codec == self.codec
        self.sent.append(frame.payload)


class PayloadLeg(FakeLeg):
    def send_payload(self, payload: bytes) -> None:
        self.sent.append(payload)


def test_room_joins_legs_to_the_clock_and_mixer():
    clock = FakeClock()
    room = ConferenceRoom(clock)
    a, b, c = FakeLeg(), PayloadLeg("PCMA"), FakeLeg()
    for leg in (a, b, c):
        room.join(leg)
    assert len(clock.ticks) == 1
    tones = {
        a: ToneGenerator(440, amplitude=AMPLITUDE),
        b: ToneGenerator(1000, amplitude=AMPLITUDE),
    }
    for _ in range(TICKS):
        a.on_frame(Frame("PCMU", ulaw_encode(tones[a].next_frame())))
        b.on_frame(Frame("PCMA", alaw_encode(tones[b].next_frame())))
        clock.tick()
    heard_c = np.concatenate([ulaw_decode(p) for p in c.sent])
    heard_b = np.concatenate([alaw_decode(p) for p in b.sent])
    assert tone_amplitude(heard_c, 440) == pytest.approx(EXPECTED, rel=0.05)
    assert tone_amplitude(heard_c, 1000) == pytest.approx(EXPECTED, rel=0.05)
    assert tone_amplitude(heard_b, 440) == pytest.approx(EXPECTED, rel=0.05)
    assert tone_amplitude(heard_b, 1000) < 0.01 * EXPECTED

    room.leave(a)
    assert room.participant(a) is None and len(room) == 2
    c.close()  # a closing leg leaves by itself
    assert len(room) == 1
    room.close()
    assert clock.ticks == {}
    sent = len(b.sent)
    clock.tick()
    assert len(b.sent) == sent


def test_room_listeners_get_the_whole_mix_each_tick():
    """A listener outside the room (a conference recording) hears every party heard,
    and a muted one not."""
    clock = FakeClock()
    room = ConferenceRoom(clock)
    a, b, c = FakeLeg(), FakeLeg(), FakeLeg()
    for leg in (a, b, c):
        room.join(leg)
    room.participant(c).muted = True
    mixes: list[np.ndarray] = []
    room.listeners.append(lambda total: mixes.append(total.copy()))
    tones = {
        leg: ToneGenerator(hz, amplitude=AMPLITUDE) for leg, hz in ((a, 440), (b, 1000), (c, 1500))
    }
    for _ in range(TICKS):
        for leg, tone in tones.items():
            leg.on_frame(Frame("PCMU", ulaw_encode(tone.next_frame())))
        clock.tick()
    assert len(mixes) == TICKS and all(mix.size == 160 for mix in mixes)
    whole = np.concatenate(mixes)
    assert tone_amplitude(whole, 440) == pytest.approx(EXPECTED, rel=0.05)
    assert tone_amplitude(whole, 1000) == pytest.approx(EXPECTED, rel=0.05)
    assert tone_amplitude(whole, 1500) < 0.01 * EXPECTED


async def test_room_over_real_rtp_sessions():
    """Three callers on loopback RTP, each talking into its own session of the room."""
    import asyncio

    from media.clock import MediaClock
    from media.ports import PortPool
    from media.sdp import PCMU
    from media.session import RtpSession
    from tests.media.conftest import free_range

    clock = MediaClock()
    pool = PortPool(*free_range(24))
    room = ConferenceRoom(clock)
    callers, heard = [], []
    try:
        for frequency in (440, 1000, 1500):
            inside = await RtpSession.bind("127.0.0.1", pool, clock)
            caller = await RtpSession.bind("127.0.0.1", pool, clock)
            inside.configure(PCMU, ("127.0.0.1", caller.port))
            caller.configure(PCMU, ("127.0.0.1", inside.port))
            tone = ToneGenerator(frequency, amplitude=AMPLITUDE)
            caller.source = lambda tone=tone: ulaw_encode(tone.next_frame())
            frames: list[np.ndarray] = []
            caller.on_frame = lambda frame, frames=frames: frames.append(ulaw_decode(frame.payload))
            inside.start()
            caller.start()
            room.join(inside)
            callers.append((inside, caller))
            heard.append(frames)
        for _ in range(200):  # bounded: at most 4 s
            if all(len(frames) >= 75 for frames in heard):
                break
            await asyncio.sleep(0.02)
        for frames, own in zip(heard, (440, 1000, 1500), strict=True):
            assert len(frames) >= 75
            last_second = np.concatenate(frames[-50:])
            others = {440, 1000, 1500} - {own}
            for frequency in others:
                assert tone_amplitude(last_second, frequency) > 0.5 * EXPECTED
            assert tone_amplitude(last_second, own) < 0.05 * EXPECTED
    finally:
        room.close()
        for inside, caller in callers:
            inside.close()
            caller.close()
        clock.close()
    assert pool.in_use == 0
