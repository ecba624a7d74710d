"""signaling/telephone_event.py: telephone-event in the SDP, events as packets of the stream."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.dtmf import DtmfEvent
from signaling.telephone_event import (
    EventFormat,
    as_event_packet,
    event_formats,
    rtp_timestamp,
    sending_format,
    with_answered_events,
    with_offered_events,
)

# The audio section of a Chromium offer (trimmed: ICE and DTLS lines kept short).
CHROME_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=rtcp-fb:111 transport-cc",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:63 red/48000/2",
        "a=fmtp:63 111/111",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:13 CN/8000",
        "a=rtpmap:110 telephone-event/48000",
        "a=rtpmap:126 telephone-event/8000",
        "a=ssrc:1 cname:x",
        "",
    ]
)

# What aiortc writes: PCMU first, Opus, no telephone-event.
AIORTC_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 3911 3911 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0",
        "a=msid-semantic:WMS *",
        "m=audio 40000 UDP/TLS/RTP/SAVPF 0 96",
        "c=IN IP4 127.0.0.1",
        "a=sendrecv",
        "a=mid:0",
        "a=msid:a b",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=rtcp-mux",
        "a=ssrc:42 cname:y",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:96 opus/48000/2",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host",
        "a=end-of-candidates",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:efgh",
        "a=fingerprint:sha-256 00:11",
        "a=setup:actpass",
        "",
    ]
)


def _section(sdp: str) -> list[str]:
    lines = sdp.split("\r\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("m=audio"))
    return lines[start:]


def test_a_browsers_offer_names_both_clocks():
    assert event_formats(CHROME_OFFER) == [EventFormat(110, 48000), EventFormat(126, 8000)]
    assert event_formats(AIORTC_OFFER) == []
    assert event_formats("v=0\r\n") == []


def test_our_offer_gains_telephone_event_at_8_and_48_khz():
    offer = with_offered_events(AIORTC_OFFER)
    lines = _section(offer)
    assert lines[0] == "m=audio 40000 UDP/TLS/RTP/SAVPF 0 96 126 110"
    # Right after aiortc's rtpmaps, before the candidates; nothing else moved.
    at = lines.index("a=rtpmap:96 opus/48000/2")
    assert lines[at + 1 : at + 5] == [
        "a=rtpmap:126 telephone-event/8000",
        "a=fmtp:126 0-15",
        "a=rtpmap:110 telephone-event/48000",
        "a=fmtp:110 0-15",
    ]
    assert event_formats(offer) == [EventFormat(126, 8000), EventFormat(110, 48000)]
    assert (
        offer.replace(
            "a=rtpmap:126 telephone-event/8000\r\na=fmtp:126 0-15\r\n"
            "a=rtpmap:110 telephone-event/48000\r\na=fmtp:110 0-15\r\n",
            "",
        ).replace(" 126 110", "")
        == AIORTC_OFFER
    )
    assert offer.endswith("\r\n")
    assert with_offered_events(offer) == offer  # once only


def test_a_pcmu_only_offer_gains_8_khz_only_and_taken_types_are_avoided():
    pcmu = AIORTC_OFFER.replace(" 0 96", " 0 126").replace("96 opus/48000/2", "126 PCMA/8000")
    offer = with_offered_events(pcmu)
    assert event_formats(offer) == [EventFormat(127, 8000)]


def test_our_answer_takes_the_offers_payload_types():
    answer = with_answered_events(AIORTC_OFFER.replace(" 0 96", " 0"), CHROME_OFFER)
    assert _section(answer)[0] == "m=audio 40000 UDP/TLS/RTP/SAVPF 0 110 126"
    assert event_formats(answer) == [EventFormat(110, 48000), EventFormat(126, 8000)]
    # An offer without events leaves the answer alone.
    assert with_answered_events(AIORTC_OFFER, AIORTC_OFFER) == AIORTC_OFFER
    # LF-only SDP stays LF-only.
    lf = with_answered_events(AIORTC_OFFER.replace("\r\n", "\n"), CHROME_OFFER)
    assert "\r" not in lf and event_formats(lf)


def test_events_go_in_the_format_at_the_codecs_clock():
    formats = [EventFormat(110, 48000), EventFormat(126, 8000)]
    assert sending_format(formats, 8000) == EventFormat(126, 8000)
    assert sending_format(formats, 48000) == EventFormat(110, 48000)
    assert sending_format([EventFormat(101, 8000)], 48000) == EventFormat(101, 8000)
    assert sending_format([], 8000) is None


def _rtp(payload_type: int, marker: bool, seq: int, timestamp: int, ssrc: int) -> bytes:
    return struct.pack("!BBHII", 0x80, (0x80 if marker else 0) | payload_type, seq, timestamp, ssrc)


def test_an_audio_packet_becomes_an_event_packet_of_the_same_stream():
    # aiortc's audio packets carry a one-byte header extension (the mid) and the marker.
    extension = struct.pack("!HH", 0xBEDE, 1) + bytes([0x10, ord("0"), 0, 0])
    audio = bytearray(_rtp(0, True, 4242, 160_000, 0xCAFEBABE) + extension + b"\xff" * 160)
    audio[0] |= 0x10
    event = DtmfEvent(5, end=False, duration=320).serialize()
    packet = as_event_packet(bytes(audio), 126, False, 159_840, event)
    assert packet[0] == 0x90  # version 2, extension kept
    assert packet[1] == 126  # no marker on a continuation
    assert struct.unpack_from("!H", packet, 2)[0] == 4242
    assert rtp_timestamp(packet) == 159_840
    assert struct.unpack_from("!I", packet, 8)[0] == 0xCAFEBABE
    assert packet[12:20] == extension
    assert DtmfEvent.parse(packet[20:]) == DtmfEvent(5, False, 10, 320)
    first = as_event_packet(_rtp(0, False, 1, 0xFFFFFFFF, 7), 101, True, 2**32 + 5, event)
    assert first[1] == 0x80 | 101 and rtp_timestamp(first) == 5 and len(first) == 16


def test_padding_and_csrcs_are_handled():
    padded = bytearray(_rtp(0, True, 1, 2, 3) + b"\x00" * 8 + b"\xff" * 4 + b"\x00\x00\x00\x04")
    padded[0] |= 0x20 | 0x02  # padding, two CSRCs
    packet = as_event_packet(bytes(padded), 101, True, 9, b"\x01\x8a\x00\xa0")
    assert packet[0] == 0x82 and len(packet) == 12 + 8 + 4
    for bad in (b"", b"\x80" * 11, bytes([0x8F]) + bytes(20), bytes([0x90]) + bytes(13)):
        with pytest.raises(ValueError, match="truncated"):
            as_event_packet(bad, 101, True, 0, b"")


@given(st.text(max_size=400))
def test_any_sdp_text_is_read_without_crashing(text):
    formats = event_formats(text)
    assert all(f.payload_type >= 0 for f in formats)
    with_answered_events(AIORTC_OFFER, text)
    with_answered_events(text, CHROME_OFFER)


@given(st.lists(st.sampled_from(CHROME_OFFER.split("\r\n")[5:]), max_size=25))
def test_shuffled_browser_sections_give_consistent_answers(lines):
    offer = "\r\n".join(["v=0", "m=audio 9 UDP/TLS/RTP/SAVPF 111 110 126", *lines, ""])
    answer = with_answered_events(AIORTC_OFFER, offer)
    assert {f.payload_type for f in event_formats(answer)} <= {110, 126}
