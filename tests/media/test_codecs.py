"""Codecs by RTP name: round trips of tones, transcoding, playback frames, RTP clocks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from media import codecs
from media.clock import MediaClock
from media.g711 import alaw_decode, ulaw_decode, ulaw_encode
from media.player import encode_frames
from media.ports import PortPool
from media.sdp import G722, OPUS, Codec
from media.session import RtpSession
from media.tones import dominant_frequency, level_dbfs, sine

ALL = ["PCMU", "PCMA", "G722", "OPUS"]
# Allowed level change through each codec: G.711 is a fixed quantiser, the others are not.
LEVEL_TOLERANCE_DB = {"PCMU": 0.2, "PCMA": 0.2, "G722": 2.0, "OPUS": 2.0}


def round_trip(name: str, samples: np.ndarray) -> np.ndarray:
    """``samples`` (at the codec's rate) through one encoder and one decoder, 20 ms at a time."""
    encoder, decoder = codecs.encoder(name), codecs.decoder(name)
    size = encoder.frame_samples
    out = [
        decoder.decode(encoder.encode(samples[i : i + size])) for i in range(0, samples.size, size)
    ]
    return np.concatenate(out)


def settled(samples: np.ndarray, rate: int) -> np.ndarray:
    return samples[rate // 10 :]  # skip 100 ms of codec start-up (Opus pre-skip, ADPCM)


# -- the registry


def test_rates_by_name_case_insensitive():
    assert [codecs.sample_rate(n) for n in ("pcmu", "PCMA", "g722", "Opus")] == [
        8000,
        8000,
        16000,
        48000,
    ]
    # RFC 3551 §4.5.2: G.722's RTP clock stays at 8 kHz; RFC 7587: Opus at 48 kHz.
    assert [codecs.clock_rate(n) for n in ALL] == [8000, 8000, 8000, 48000]
    assert codecs.names() == tuple(ALL)


@pytest.mark.parametrize("name", ALL)
def test_encoders_and_decoders_report_their_rates(name):
    encoder, decoder = codecs.encoder(name.lower()), codecs.decoder(name.lower())
    assert isinstance(encoder, codecs.Encoder) and isinstance(decoder, codecs.Decoder)
    assert encoder.name == decoder.name == name
    assert encoder.sample_rate == decoder.sample_rate == codecs.sample_rate(name)
    assert encoder.frame_samples == codecs.sample_rate(name) // 50


def test_unknown_codec_is_refused():
    with pytest.raises(codecs.UnsupportedCodec, match="G729"):
        codecs.decoder("G729")
    with pytest.raises(ValueError):
        codecs.encoder("speex")
    with pytest.raises(ValueError):
        codecs.Transcoder("PCMU", "GSM")


# -- round trips


@pytest.mark.parametrize("name", ALL)
def test_1khz_tone_survives_one_second(name):
    rate = codecs.sample_rate(name)
    tone = sine(1000, 1.0, rate, amplitude=0.3)
    out = round_trip(name, tone)
    assert out.dtype == np.int16 and out.ndim == 1
    assert out.size == tone.size
    assert dominant_frequency(settled(out, rate), rate) == pytest.approx(1000, abs=10)
    assert level_dbfs(settled(out, rate)) == pytest.approx(
        level_dbfs(tone), abs=LEVEL_TOLERANCE_DB[name]
    )


def test_payload_sizes_per_20ms():
    tone = sine(1000, 0.02, 16000)
    assert len(codecs.encoder("G722").encode(tone)) == 160  # 64 kbit/s
    assert len(codecs.encoder("PCMU").encode(sine(1000, 0.02))) == 160
    encoder = codecs.encoder("OPUS")
    speechlike = np.random.default_rng(7).normal(0, 3000, 48000).astype(np.int16)
    sizes = [len(encoder.encode(speechlike[i : i + 960])) for i in range(0, 48000, 960)]
    # About 32 kbit/s = 80 octets per 20 ms (VBR: allow a spread).
    assert 40 <= np.mean(sizes) <= 120


def test_g722_carries_5khz_which_g711_cannot():
    tone16 = sine(5000, 1.0, 16000, amplitude=0.3)
    wide = round_trip("G722", tone16)
    assert dominant_frequency(settled(wide, 16000), 16000) == pytest.approx(5000, abs=10)
    assert level_dbfs(settled(wide, 16000)) == pytest.approx(level_dbfs(tone16), abs=2)
    # At 8 kHz a 5 kHz tone is beyond Nyquist: G.711 can only carry its 3 kHz alias.
    narrow = round_trip("PCMU", tone16[::2])
    assert dominant_frequency(narrow, 8000) == pytest.approx(3000, abs=10)


def test_stateful_encoders_are_independent():
    # Two encoders fed the same audio produce the same stream; interleaving does not mix them.
    tone = sine(1000, 0.2, 48000, amplitude=0.3)
    first, second = codecs.encoder("OPUS"), codecs.encoder("OPUS")
    a = [first.encode(tone[i : i + 960]) for i in range(0, tone.size, 960)]
    b = []
    for i in range(0, tone.size, 960):
        b.append(second.encode(tone[i : i + 960]))
        codecs.encoder("OPUS").encode(np.zeros(960, dtype=np.int16))  # a stranger's traffic
    assert a == b


def test_encoders_refuse_wrong_frames():
    with pytest.raises(ValueError, match="960"):
        codecs.encoder("OPUS").encode(np.zeros(160, dtype=np.int16))
    with pytest.raises(TypeError):
        codecs.encoder("G722").encode(np.zeros(320, dtype=np.float32))


@pytest.mark.parametrize("name", ["G722", "OPUS"])
def test_empty_or_garbage_payloads_decode_to_silence(name):
    decoder = codecs.decoder(name)
    out = decoder.decode(b"")
    assert out.dtype == np.int16 and out.size == decoder.frame_samples and not out.any()
    assert decoder.corrupt_payloads == 1


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(ALL), st.binary(max_size=400))
def test_decoders_never_raise_on_peer_bytes(name, payload):
    out = codecs.decoder(name).decode(payload)
    assert out.dtype == np.int16 and out.ndim == 1


def test_opus_decoder_takes_other_packet_durations():
    # A peer may send 10 ms Opus packets; they decode to 480 samples each.
    import av

    context = av.CodecContext.create("libopus", "w")
    context.sample_rate, context.layout, context.format = 48000, "mono", "s16"
    context.options = {"frame_duration": "10"}
    tone = sine(1000, 0.01, 48000)
    frame = av.AudioFrame.from_ndarray(tone.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts = 48000, 0
    packet = bytes(context.encode(frame)[0])
    assert codecs.decoder("OPUS").decode(packet).size == 480


# -- transcoding


def _through(transcoder: codecs.Transcoder, payloads: list[bytes]) -> list[bytes]:
    return [transcoder(payload) for payload in payloads]


def _ulaw_frames(samples: np.ndarray) -> list[bytes]:
    return [ulaw_encode(samples[i : i + 160]) for i in range(0, samples.size, 160)]


def test_pcmu_to_opus_to_pcmu_keeps_440hz():
    tone = sine(440, 1.0, 8000, amplitude=0.3)
    opus = _through(codecs.Transcoder("PCMU", "OPUS"), _ulaw_frames(tone))
    assert all(0 < len(p) < 400 for p in opus)
    assert codecs.decoder("OPUS").decode(opus[10]).size == 960
    back = _through(codecs.Transcoder("opus", "pcmu"), opus)
    assert [len(p) for p in back] == [160] * 50
    out = ulaw_decode(b"".join(back))
    assert dominant_frequency(out[800:]) == pytest.approx(440, abs=5)
    assert level_dbfs(out[800:]) == pytest.approx(level_dbfs(tone), abs=2)


def test_pcmu_to_g722_to_pcma_keeps_440hz():
    tone = sine(440, 1.0, 8000, amplitude=0.3)
    g722 = _through(codecs.Transcoder("PCMU", "G722"), _ulaw_frames(tone))
    assert [len(p) for p in g722] == [160] * 50
    wide = np.concatenate([codecs.decoder("G722").decode(p) for p in g722])
    assert dominant_frequency(wide[1600:], 16000) == pytest.approx(440, abs=5)
    back = _through(codecs.Transcoder("G722", "PCMA"), g722)
    out = alaw_decode(b"".join(back))
    assert out.size == tone.size
    assert dominant_frequency(out[800:]) == pytest.approx(440, abs=5)
    assert level_dbfs(out[800:]) == pytest.approx(level_dbfs(tone), abs=1)


def test_identity_transcoder_works():
    tone = sine(440, 0.2, 8000, amplitude=0.3)
    out = _through(codecs.Transcoder("PCMU", "PCMU"), _ulaw_frames(tone))
    assert b"".join(out) == ulaw_encode(tone)


def test_transcoder_queues_when_packets_are_not_20ms():
    # Opus 10 ms packets in: every other call has a full 20 ms PCMU frame to give.
    import av

    context = av.CodecContext.create("libopus", "w")
    context.sample_rate, context.layout, context.format = 48000, "mono", "s16"
    context.options = {"frame_duration": "10"}
    tone = sine(440, 0.4, 48000, amplitude=0.3)
    packets = []
    for i in range(0, tone.size, 480):
        frame = av.AudioFrame.from_ndarray(
            tone[i : i + 480].reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate, frame.pts = 48000, i
        packets += [bytes(p) for p in context.encode(frame)]
    transcoder = codecs.Transcoder("OPUS", "PCMU")
    out = _through(transcoder, packets)
    assert [len(p) for p in out[:4]] == [0, 160, 0, 160]
    pcm = ulaw_decode(b"".join(out))
    assert dominant_frequency(pcm[800:]) == pytest.approx(440, abs=5)


def test_transcoder_turns_garbage_into_silence():
    transcoder = codecs.Transcoder("OPUS", "PCMU")
    out = transcoder(b"\xff\xfe\xfd")
    assert len(out) == 160
    assert transcoder.corrupt_payloads == 1


# -- playback frames


@pytest.mark.parametrize("name", ALL)
def test_encode_frames_decode_back_to_the_tone(name):
    tone = sine(1000, 0.5, 8000, amplitude=0.3)
    frames = encode_frames(tone, name)
    assert len(frames) == 25  # 500 ms in 20 ms frames
    decoder = codecs.decoder(name)
    rate = decoder.sample_rate
    out = np.concatenate([decoder.decode(frame) for frame in frames])
    assert out.size == rate // 2
    assert dominant_frequency(settled(out, rate), rate) == pytest.approx(1000, abs=10)
    assert level_dbfs(settled(out, rate)) == pytest.approx(level_dbfs(tone), abs=2)


def test_encode_frames_pads_the_last_wideband_frame_and_refuses_the_unknown():
    frames = encode_frames(sine(440, 0.03), "g722")  # 240 samples: 2 frames
    assert [len(f) for f in frames] == [160, 160]
    assert encode_frames(np.zeros(0, dtype=np.int16), "OPUS") == []
    with pytest.raises(ValueError, match="G722 or OPUS"):
        encode_frames(sine(440, 0.02), "GSM")
    with pytest.raises(TypeError):
        encode_frames(sine(440, 0.02).astype(np.float32), "OPUS")


# -- RTP clocks of the new codecs in a session


@pytest.mark.parametrize(
    ("codec", "event_rate", "step"),
    [
        (G722, 8000, 160),
        (OPUS, 48000, 960),
        (OPUS, 8000, 960),  # a peer that kept telephone-event/8000 beside Opus
    ],
)
def test_session_counts_timestamps_and_dtmf_in_the_rtp_clock(codec, event_rate, step):
    events = Codec(101, "telephone-event", event_rate)
    clock = MediaClock()
    try:
        session = RtpSession(clock, PortPool(40000, 40001), 40000)
        session.configure(codec, ("127.0.0.1", 9), dtmf=events)
        assert session._samples == step  # 20 ms of RTP clock
        session.send_dtmf("5", 100)
        # The 100 ms event's final duration field, in telephone-event clock units.
        payload = session._dtmf_out[-1][2]
        assert int.from_bytes(payload[2:4], "big") == events.clock_rate // 10
        assert int.from_bytes(session._dtmf_out[0][2][2:4], "big") == event_rate // 50
    finally:
        clock.close()
