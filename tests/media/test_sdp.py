import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.sdp import (
    PCMA,
    PCMU,
    TELEPHONE_EVENT,
    Codec,
    MediaDescription,
    SdpNegotiationError,
    SdpParseError,
    SessionDescription,
    build_offer,
    negotiate_answer,
    remote_rtp_address,
)
from media.srtp import CryptoAttribute, SdesAnswerer, SdesOffer


def crlf(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


# SIPp's built-in uac scenario.
SIPP_OFFER = crlf(
    """v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""
)

# Linphone desktop: opus and speex with dynamic types, three telephone-event rates, video.
LINPHONE_OFFER = crlf(
    """v=0
o=alice 2145 3406 IN IP4 192.168.1.20
s=Talk
c=IN IP4 192.168.1.20
b=AS:380
t=0 0
a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
a=record:off
m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
a=rtpmap:96 opus/48000/2
a=fmtp:96 useinbandfec=1
a=rtpmap:97 speex/16000
a=fmtp:97 vbr=on
a=rtpmap:98 speex/8000
a=fmtp:98 vbr=on
a=fmtp:18 annexb=yes
a=rtpmap:101 telephone-event/48000
a=rtpmap:99 telephone-event/16000
a=rtpmap:100 telephone-event/8000
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:* ccm tmmbr
m=video 9078 RTP/AVP 96 97
a=rtpmap:96 VP8/90000
a=rtpmap:97 H264/90000
a=fmtp:97 profile-level-id=42801F
a=rtcp-fb:* trr-int 1000
a=rtcp-fb:96 nack pli
"""
)

# baresip, sent with bare \n line endings, media-level c= and rtcp attribute.
BARESIP_OFFER = b"""v=0
o=- 1402372958 3629283624 IN IP4 10.0.0.5
s=-
c=IN IP4 10.0.0.5
t=0 0
a=tool:baresip 3.10.0
m=audio 10774 RTP/AVP 96 9 0 8 101
b=AS:128
c=IN IP4 10.0.0.6
a=rtpmap:96 opus/48000/2
a=fmtp:96 stereo=1;sprop-stereo=1
a=rtpmap:9 G722/8000
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=rtcp:10775
a=rtcp-rsize
a=sendrecv
a=label:1
a=ssrc:1234 cname:abc
a=ptime:20
"""

IPV6_OFFER = crlf(
    """v=0
o=- 1 1 IN IP6 2001:db8::10
s=-
c=IN IP6 2001:db8::10
t=0 0
m=audio 40000 RTP/AVP 8 0
a=rtcp:40001 IN IP6 2001:db8::11
a=sendonly
"""
)

OPUS = Codec(111, "opus", 48000, 2, "useinbandfec=1")
SUPPORTED = [PCMU, PCMA, TELEPHONE_EVENT]


def test_parse_sipp_offer():
    sdp = SessionDescription.parse(SIPP_OFFER)
    assert (sdp.username, sdp.session_id, sdp.session_version, sdp.address) == (
        "user1",
        53655765,
        2353687637,
        "127.0.0.1",
    )
    assert sdp.session_name == "-"
    assert sdp.connection_address == "127.0.0.1"
    assert sdp.timing == "0 0"
    assert sdp.media == [
        MediaDescription(
            media="audio",
            port=6000,
            protocol="RTP/AVP",
            formats=["0"],
            connection_address=None,
            codecs=[PCMU],
            direction="sendrecv",
        )
    ]
    assert remote_rtp_address(sdp, sdp.media[0]) == ("127.0.0.1", 6000)


def test_serialize_sipp_offer_exactly():
    assert SessionDescription.parse(SIPP_OFFER).serialize() == SIPP_OFFER + b"a=sendrecv\r\n"


def test_parse_linphone_offer():
    sdp = SessionDescription.parse(LINPHONE_OFFER)
    assert sdp.session_name == "Talk"
    assert sdp.lines == [("b", "AS:380")]
    assert sdp.attributes == [
        ("rtcp-xr", "rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics"),
        ("record", "off"),
    ]
    audio, video = sdp.media
    assert audio.formats == ["96", "97", "98", "0", "8", "18", "101", "99", "100"]
    assert audio.codecs == [
        Codec(96, "opus", 48000, 2, "useinbandfec=1"),
        Codec(97, "speex", 16000, 1, "vbr=on"),
        Codec(98, "speex", 8000, 1, "vbr=on"),
        PCMU,
        PCMA,
        Codec(18, "G729", 8000, 1, "annexb=yes"),
        Codec(101, "telephone-event", 48000),
        Codec(99, "telephone-event", 16000),
        Codec(100, "telephone-event", 8000),
    ]
    assert audio.attributes == [("rtcp-fb", "* trr-int 1000"), ("rtcp-fb", "* ccm tmmbr")]
    assert audio.direction == "sendrecv"
    assert audio.ptime is None
    assert video.media == "video"
    assert video.port == 9078
    assert video.codecs == [
        Codec(96, "VP8", 90000),
        Codec(97, "H264", 90000, fmtp="profile-level-id=42801F"),
    ]


def test_linphone_answer_picks_first_offered_codec_we_support():
    offer = SessionDescription.parse(LINPHONE_OFFER)
    answer, audio, events = negotiate_answer(offer, SUPPORTED, "203.0.113.5", 20000, 42)
    assert audio == PCMU
    assert events == Codec(100, "telephone-event", 8000, fmtp="0-16")
    assert answer.serialize() == crlf(
        """v=0
o=- 42 42 IN IP4 203.0.113.5
s=callswitch
c=IN IP4 203.0.113.5
t=0 0
m=audio 20000 RTP/AVP 0 100
a=rtpmap:0 PCMU/8000
a=rtpmap:100 telephone-event/8000
a=fmtp:100 0-16
a=ptime:20
a=sendrecv
m=video 0 RTP/AVP 96 97
a=inactive
"""
    )


def test_offer_order_wins_over_ours():
    offer = SessionDescription.parse(LINPHONE_OFFER)
    _, audio, _ = negotiate_answer(offer, [PCMA, PCMU], "203.0.113.5", 20000, 1)
    assert audio == PCMU


def test_dynamic_payload_type_of_offerer_is_kept():
    offer = SessionDescription.parse(LINPHONE_OFFER)
    answer, audio, events = negotiate_answer(
        offer, [OPUS, PCMU, Codec(110, "telephone-event", 48000)], "203.0.113.5", 20000, 1
    )
    assert audio == Codec(96, "opus", 48000, 2, "useinbandfec=1")
    assert events == Codec(101, "telephone-event", 48000)
    assert answer.media[0].formats == ["96", "101"]
    assert b"a=rtpmap:96 opus/48000/2\r\n" in answer.serialize()


def test_telephone_event_must_match_codec_clock_rate():
    offer = SessionDescription.parse(LINPHONE_OFFER)
    _, audio, events = negotiate_answer(offer, [OPUS, TELEPHONE_EVENT], "203.0.113.5", 1, 1)
    assert audio.name == "opus"
    assert events is None


def test_codec_names_match_case_insensitively():
    offer = SessionDescription.parse(
        crlf(
            """v=0
o=- 5 5 IN IP4 192.0.2.7
s=-
c=IN IP4 192.0.2.7
t=0 0
m=audio 4000 RTP/AVP 112 113
a=rtpmap:112 pcmu/8000
a=rtpmap:113 TELEPHONE-EVENT/8000
"""
        )
    )
    answer, audio, events = negotiate_answer(offer, SUPPORTED, "192.0.2.1", 5000, 9)
    assert audio == Codec(112, "PCMU", 8000)
    assert events == Codec(113, "telephone-event", 8000, fmtp="0-16")
    assert answer.media[0].formats == ["112", "113"]


def test_parse_baresip_offer_with_lf_line_endings():
    sdp = SessionDescription.parse(BARESIP_OFFER)
    assert sdp.attributes == [("tool", "baresip 3.10.0")]
    (audio,) = sdp.media
    assert audio.connection_address == "10.0.0.6"
    assert audio.lines == [("b", "AS:128")]
    assert audio.rtcp_port == 10775
    assert audio.rtcp_address is None
    assert audio.ptime == 20
    assert audio.codecs[0] == Codec(96, "opus", 48000, 2, "stereo=1;sprop-stereo=1")
    assert audio.codecs[-1] == Codec(101, "telephone-event", 8000, fmtp="0-15")
    assert audio.attributes == [("rtcp-rsize", None), ("label", "1"), ("ssrc", "1234 cname:abc")]
    # The media-level c= line wins over the session-level one.
    assert remote_rtp_address(sdp, audio) == ("10.0.0.6", 10774)


def test_baresip_answer_prefers_g722_when_supported():
    offer = SessionDescription.parse(BARESIP_OFFER)
    g722 = Codec(9, "G722", 8000)
    _, audio, events = negotiate_answer(offer, [PCMA, g722, TELEPHONE_EVENT], "10.1.1.1", 2, 3)
    assert audio == g722
    assert events == TELEPHONE_EVENT


def test_ipv6_offer_and_answer():
    offer = SessionDescription.parse(IPV6_OFFER)
    assert offer.address == "2001:db8::10"
    (audio,) = offer.media
    assert audio.codecs == [PCMA, PCMU]
    assert audio.direction == "sendonly"
    assert (audio.rtcp_port, audio.rtcp_address) == (40001, "IN IP6 2001:db8::11")
    assert remote_rtp_address(offer, audio) == ("2001:db8::10", 40000)
    answer, codec, events = negotiate_answer(offer, SUPPORTED, "2001:db8::1", 30000, 7)
    assert (codec, events) == (PCMA, None)
    assert answer.serialize() == crlf(
        """v=0
o=- 7 7 IN IP6 2001:db8::1
s=callswitch
c=IN IP6 2001:db8::1
t=0 0
m=audio 30000 RTP/AVP 8
a=rtpmap:8 PCMA/8000
a=ptime:20
a=recvonly
"""
    )
    assert offer.serialize() == crlf(
        """v=0
o=- 1 1 IN IP6 2001:db8::10
s=-
c=IN IP6 2001:db8::10
t=0 0
m=audio 40000 RTP/AVP 8 0
a=rtpmap:8 PCMA/8000
a=rtpmap:0 PCMU/8000
a=rtcp:40001 IN IP6 2001:db8::11
a=sendonly
"""
    )


@pytest.mark.parametrize(
    ("offered", "answered"),
    [
        ("sendrecv", "sendrecv"),
        ("sendonly", "recvonly"),
        ("recvonly", "sendonly"),
        ("inactive", "inactive"),
    ],
)
def test_direction_is_mirrored(offered, answered):
    offer = SessionDescription.parse(SIPP_OFFER + f"a={offered}\r\n".encode())
    answer, _, _ = negotiate_answer(offer, SUPPORTED, "192.0.2.1", 1000, 1)
    assert answer.media[0].direction == answered


def test_session_level_direction_applies_to_media_without_one():
    text = SIPP_OFFER.replace(b"t=0 0\r\n", b"t=0 0\r\na=recvonly\r\n")
    offer = SessionDescription.parse(text)
    assert offer.media[0].direction == "recvonly"
    answer, _, _ = negotiate_answer(offer, SUPPORTED, "192.0.2.1", 1000, 1)
    assert answer.media[0].direction == "sendonly"
    media_override = SessionDescription.parse(text + b"a=inactive\r\n")
    assert media_override.media[0].direction == "inactive"


def test_other_media_and_second_audio_are_rejected_with_port_zero():
    offer = SessionDescription.parse(
        crlf(
            """v=0
o=- 1 1 IN IP4 192.0.2.9
s=-
c=IN IP4 192.0.2.9
t=0 0
m=video 5000 RTP/AVP 96
a=rtpmap:96 VP8/90000
m=audio 0 RTP/AVP 0
m=audio 6000 RTP/SAVP 0
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
m=audio 7000 RTP/AVP 18 8
m=audio 8000 RTP/AVP 0
"""
        )
    )
    answer, audio, _ = negotiate_answer(offer, SUPPORTED, "192.0.2.1", 1000, 1)
    assert audio == PCMA
    assert [(m.media, m.port, m.protocol, m.formats) for m in answer.media] == [
        ("video", 0, "RTP/AVP", ["96"]),
        ("audio", 0, "RTP/AVP", ["0"]),
        ("audio", 0, "RTP/SAVP", ["0"]),
        ("audio", 1000, "RTP/AVP", ["8"]),
        ("audio", 0, "RTP/AVP", ["0"]),
    ]


@pytest.mark.parametrize(
    "media",
    [
        "m=audio 6000 RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n",  # no common codec
        "m=audio 6000 RTP/AVP 101\r\na=rtpmap:101 telephone-event/8000\r\n",  # events only
        "m=audio 0 RTP/AVP 0\r\n",  # audio rejected by the offerer
        "m=video 6000 RTP/AVP 0\r\n",  # no audio at all
        "m=audio 6000 RTP/SAVP 0\r\n",  # SRTP not offered by us yet
        "",
    ],
)
def test_negotiation_failures(media):
    head = SIPP_OFFER.split(b"m=")[0]
    offer = SessionDescription.parse(head + media.encode())
    with pytest.raises(SdpNegotiationError):
        negotiate_answer(offer, SUPPORTED, "192.0.2.1", 1000, 1)


def test_remote_address_needs_a_connection_line():
    offer = SessionDescription.parse(SIPP_OFFER.replace(b"c=IN IP4 127.0.0.1\r\n", b""))
    with pytest.raises(SdpNegotiationError):
        remote_rtp_address(offer, offer.media[0])


def test_build_offer_exact_bytes():
    offer = build_offer("192.0.2.1", 20000, [PCMU, PCMA, TELEPHONE_EVENT], session_id=1234)
    assert offer.serialize() == crlf(
        """v=0
o=- 1234 1234 IN IP4 192.0.2.1
s=callswitch
c=IN IP4 192.0.2.1
t=0 0
m=audio 20000 RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=sendrecv
"""
    )
    assert SessionDescription.parse(offer.serialize()) == offer


def test_our_offer_negotiates_against_itself():
    offer = build_offer("192.0.2.1", 20000, [PCMA, PCMU, TELEPHONE_EVENT], session_id=1)
    answer, audio, events = negotiate_answer(offer, [PCMU, PCMA, TELEPHONE_EVENT], "::1", 2, 3)
    assert (audio, events) == (PCMA, TELEPHONE_EVENT)
    assert remote_rtp_address(answer, answer.media[0]) == ("::1", 2)


def test_static_payload_types_without_rtpmap_and_unknown_fmtp_kept():
    sdp = SessionDescription.parse(
        SIPP_OFFER.replace(b"RTP/AVP 0\r\na=rtpmap:0 PCMU/8000", b"RTP/AVP 8 0 99\r\na=fmtp:99 x=1")
    )
    assert sdp.media[0].codecs == [PCMA, PCMU]
    assert sdp.media[0].attributes == [("fmtp", "99 x=1")]
    assert sdp.media[0].codec(8) == PCMA
    assert sdp.media[0].codec(99) is None


def test_static_payload_types_are_only_filled_in_for_audio():
    sdp = SessionDescription.parse(
        SIPP_OFFER.replace(b"m=audio 6000 RTP/AVP 0", b"m=video 6000 RTP/AVP 8 0")
    )
    assert sdp.media[0].codecs == [PCMU]  # from its rtpmap; 8 is not PCMA in a video stream


def test_multicast_connection_and_port_count():
    sdp = SessionDescription.parse(
        SIPP_OFFER.replace(b"c=IN IP4 127.0.0.1", b"c=IN IP4 233.252.0.1/127").replace(
            b"m=audio 6000", b"m=audio 6000/2"
        )
    )
    assert sdp.connection_address == "233.252.0.1/127"
    assert sdp.media[0].port_count == 2
    assert remote_rtp_address(sdp, sdp.media[0]) == ("233.252.0.1", 6000)
    assert SessionDescription.parse(sdp.serialize()) == sdp


def test_session_lines_are_kept_in_rfc_order():
    text = crlf(
        """v=0
o=- 1 2 IN IP4 192.0.2.1
s=call
i=info
u=http://example.com/
e=ops@example.com
c=IN IP4 192.0.2.1
b=CT:64
t=0 0
r=604800 3600 0 90000
t=1 2
z=2882844526 -1h
a=group:BUNDLE 0
m=audio 9 RTP/AVP 0
a=sendrecv
"""
    )
    sdp = SessionDescription.parse(text)
    assert sdp.lines == [
        ("i", "info"),
        ("u", "http://example.com/"),
        ("e", "ops@example.com"),
        ("b", "CT:64"),
        ("r", "604800 3600 0 90000"),
        ("t", "1 2"),
        ("z", "2882844526 -1h"),
    ]
    assert sdp.serialize() == text.replace(b"a=sendrecv", b"a=rtpmap:0 PCMU/8000\r\na=sendrecv")


def test_non_utf8_session_name_survives():
    text = SIPP_OFFER.replace(b"s=-", b"s=caf\xe9")
    sdp = SessionDescription.parse(text)
    assert sdp.serialize().startswith(text[: text.index(b"c=")])


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"\r\n",
        b"o=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n",  # v= not first
        b"v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
        b"v=0\r\ns=-\r\n",  # o= missing
        b"v=0\r\n",
        b"v=0\r\no=- 1 IN IP4 1.2.3.4\r\n",  # five origin fields
        b"v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n",
        b"v=0\r\no=- 1 1 ATM NSAP 1.2.3.4\r\n",
        b"v=0\r\no=- \xd9\xa3 1 IN IP4 1.2.3.4\r\n",  # Arabic-Indic digit is not a digit here
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nbogus\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nX=1\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nv=0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 6000 RTP/AVP 0\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP5 1.2.3.4\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 6000\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio abc RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 65536 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio -1 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 1_000 RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 6000/x RTP/AVP 0\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 6000 RTP/AVP 0\r\na=rtcp:99999\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU\r\n",
        b"v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 6000 RTP/AVP 0\r\nc=IN IP4\r\n",
    ],
)
def test_invalid_sdp_raises(text):
    with pytest.raises(SdpParseError):
        SessionDescription.parse(text)


# --- property tests ---

token = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-_.+"), min_size=1, max_size=12
)
value = (
    st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("é€中"),
        min_size=1,
        max_size=30,
    )
    .map(str.strip)
    .filter(bool)
)
address = st.sampled_from(["192.0.2.1", "10.0.0.254", "2001:db8::1", "::1", "pbx.example.com"])
modelled = {"rtpmap", "fmtp", "ptime", "rtcp", "crypto"}
modelled |= {"sendrecv", "sendonly", "recvonly", "inactive"}
attribute = st.tuples(token.filter(lambda name: name not in modelled), st.none() | value)


@st.composite
def media_descriptions(draw):
    payload_types = draw(st.lists(st.integers(0, 127), unique=True, max_size=6))
    codecs = [
        Codec(
            pt,
            draw(token.filter(lambda name: "/" not in name)),
            draw(st.integers(1, 192000)),
            draw(st.integers(1, 8)),
            draw(st.none() | value),
        )
        for pt in payload_types
    ]
    return MediaDescription(
        media=draw(st.sampled_from(["audio", "video", "application"])),
        port=draw(st.integers(0, 65535)),
        protocol=draw(st.sampled_from(["RTP/AVP", "RTP/AVPF", "RTP/SAVP"])),
        formats=[str(pt) for pt in payload_types],
        connection_address=draw(st.none() | address),
        codecs=codecs,
        direction=draw(st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive"])),
        ptime=draw(st.none() | st.integers(1, 200)),
        rtcp_port=draw(st.none() | st.integers(0, 65535)),
        attributes=draw(st.lists(attribute, max_size=3)),
        crypto=draw(st.lists(value, max_size=2)),
        port_count=draw(st.none() | st.integers(1, 4)),
        # Serialisation writes i= before b= and k=, as RFC 8866 orders them.
        lines=sorted(
            draw(st.lists(st.tuples(st.sampled_from("ibk"), value), max_size=2)),
            key=lambda line: "ibk".index(line[0]),
        ),
    )


sessions = st.builds(
    SessionDescription,
    username=token,
    session_id=st.integers(0, 2**64),
    session_version=st.integers(0, 2**64),
    address=address,
    session_name=value,
    connection_address=st.none() | address,
    media=st.lists(media_descriptions(), max_size=3),
    timing=st.sampled_from(["0 0", "3034423619 3042462419"]),
    # Session-level direction attributes are applied to media, so leave them out here.
    attributes=st.lists(attribute, max_size=3),
    lines=st.lists(st.tuples(st.sampled_from("iuepbrzk"), value), max_size=3),
)


@given(sessions)
def test_round_trip(sdp):
    text = sdp.serialize()
    parsed = SessionDescription.parse(text)
    # Serialisation puts session-level lines in RFC order; compare by type.
    assert sorted(parsed.lines) == sorted(sdp.lines)
    parsed.lines = sdp.lines
    assert parsed == sdp
    assert parsed.serialize() == text


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_parse_error(data):
    with contextlib.suppress(SdpParseError):
        SessionDescription.parse(data)


sdp_ish_line = st.one_of(
    st.tuples(st.sampled_from("vosctmabi"), st.text(max_size=40)),
    st.tuples(
        st.just("m"),
        st.lists(st.sampled_from(["audio", "0", "6000", "70000", "RTP/AVP", "96", "x", ""])).map(
            " ".join
        ),
    ),
    st.tuples(
        st.just("a"),
        st.tuples(
            st.sampled_from(["rtpmap:", "fmtp:", "rtcp:", "ptime:", "sendonly", "x"]),
            st.text(st.sampled_from("0123456789 /PCMU-abc:"), max_size=20),
        ).map("".join),
    ),
)


@given(st.lists(sdp_ish_line, max_size=12), st.booleans())
def test_sdp_shaped_garbage_raises_only_parse_error(lines, valid_head):
    head = ["v=0", "o=- 1 1 IN IP4 1.2.3.4"] if valid_head else []
    text = "\r\n".join(head + [f"{kind}={rest}" for kind, rest in lines])
    try:
        sdp = SessionDescription.parse(text)
    except SdpParseError:
        return
    # Whatever we accept we must be able to write out and read back the same.
    again = SessionDescription.parse(sdp.serialize())
    assert again.serialize() == sdp.serialize()


@pytest.mark.parametrize("text", [SIPP_OFFER, LINPHONE_OFFER, BARESIP_OFFER, IPV6_OFFER])
def test_real_offers_reparse_to_the_same_description(text):
    sdp = SessionDescription.parse(text)
    assert SessionDescription.parse(sdp.serialize()) == sdp


# --- SRTP with SDES keys (RFC 4568) ---

# Linphone's SDES offer: three suites, in its order of preference.
SAVP_OFFER = crlf(
    """v=0
o=bob 1 1 IN IP4 192.0.2.7
s=Talk
c=IN IP4 192.0.2.7
t=0 0
m=audio 7078 RTP/SAVP 0 8 101
a=rtpmap:101 telephone-event/8000
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz
a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj
a=crypto:3 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm
"""
)


def test_crypto_lines_are_parsed_in_order_and_written_back():
    sdp = SessionDescription.parse(SAVP_OFFER)
    media = sdp.media[0]
    assert media.protocol == "RTP/SAVP"
    assert [line.split()[:2] for line in media.crypto] == [
        ["1", "AES_CM_128_HMAC_SHA1_80"],
        ["2", "AES_CM_128_HMAC_SHA1_32"],
        ["3", "F8_128_HMAC_SHA1_80"],
    ]
    assert media.attributes == []
    text = sdp.serialize()
    assert b"a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ" in text
    assert SessionDescription.parse(text) == sdp


def test_savp_offer_gets_a_savp_answer_with_our_crypto_line():
    seen = []

    def hook(offered):
        seen.append(offered)
        return "1 AES_CM_128_HMAC_SHA1_80 inline:" + "B" * 40

    offer = SessionDescription.parse(SAVP_OFFER)
    answer, audio, events = negotiate_answer(
        offer, SUPPORTED, "203.0.113.5", 20000, 42, crypto_answer=hook
    )
    assert (audio, events) == (PCMU, TELEPHONE_EVENT)
    assert seen == [offer.media[0].crypto]
    assert answer.serialize() == crlf(
        """v=0
o=- 42 42 IN IP4 203.0.113.5
s=callswitch
c=IN IP4 203.0.113.5
t=0 0
m=audio 20000 RTP/SAVP 0 101
a=rtpmap:0 PCMU/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=ptime:20
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB
a=sendrecv
"""
    )


def test_savp_answer_through_the_sdes_answerer():
    answerer = SdesAnswerer()
    offer = SessionDescription.parse(SAVP_OFFER)
    answer, _, _ = negotiate_answer(offer, SUPPORTED, "203.0.113.5", 1, 1, crypto_answer=answerer)
    (line,) = answer.media[0].crypto
    ours = CryptoAttribute.parse(line)
    assert (ours.tag, ours.suite) == (1, "AES_CM_128_HMAC_SHA1_80")
    assert ours == answerer.ours and ours.key != answerer.theirs.key
    assert answerer.theirs == CryptoAttribute.parse(offer.media[0].crypto[0])


def test_savp_without_a_suite_we_support_is_488():
    only_256 = SAVP_OFFER.replace(b"a=crypto:1", b"a=x-crypto:1").replace(b"a=crypto:2", b"a=x:2")
    offer = SessionDescription.parse(only_256)
    with pytest.raises(SdpNegotiationError):
        negotiate_answer(offer, SUPPORTED, "192.0.2.1", 1, 1, crypto_answer=SdesAnswerer())
    with pytest.raises(SdpNegotiationError):  # no hook: SAVP is not answerable at all
        negotiate_answer(SessionDescription.parse(SAVP_OFFER), SUPPORTED, "192.0.2.1", 1, 1)


def test_crypto_hook_is_asked_only_once_a_codec_matched_and_may_pass():
    offer = SessionDescription.parse(
        SIPP_OFFER.split(b"m=")[0]
        + crlf(
            """m=audio 5000 RTP/SAVP 18
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA
m=audio 6000 RTP/SAVP 8
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:BBBB
m=audio 7000 RTP/AVP 0
"""
        )
    )
    asked = []

    def decline(offered):
        asked.append(offered)
        return None

    answer, audio, _ = negotiate_answer(
        offer, SUPPORTED, "192.0.2.1", 1000, 1, crypto_answer=decline
    )
    assert asked == [["1 AES_CM_128_HMAC_SHA1_80 inline:BBBB"]]  # G.729 never got that far
    assert audio == PCMU
    assert [(m.port, m.protocol, m.crypto) for m in answer.media] == [
        (0, "RTP/SAVP", []),
        (0, "RTP/SAVP", []),
        (1000, "RTP/AVP", []),
    ]


def test_build_offer_with_srtp():
    line = "1 AES_CM_128_HMAC_SHA1_80 inline:" + "C" * 40
    offer = build_offer(
        "192.0.2.1", 20000, [PCMU], session_id=5, protocol="RTP/SAVP", crypto=[line]
    )
    text = offer.serialize()
    assert b"m=audio 20000 RTP/SAVP 0\r\n" in text
    assert text.endswith(f"a=ptime:20\r\na=crypto:{line}\r\na=sendrecv\r\n".encode())
    assert SessionDescription.parse(text) == offer
    answer, _, _ = negotiate_answer(
        offer, [PCMU], "192.0.2.2", 3000, 6, crypto_answer=lambda offered: offered[0]
    )
    assert answer.media[0].protocol == "RTP/SAVP" and answer.media[0].crypto == [line]


# Best-effort SRTP (RTP/AVP carrying a=crypto), as Asterisk's media_encryption_optimistic,
# baresip's mediaenc=srtp and our optional trunks offer it.
BEST_EFFORT_OFFER = SAVP_OFFER.replace(b"RTP/SAVP", b"RTP/AVP")


def test_best_effort_offer_gets_an_avp_answer_with_our_crypto_line():
    answerer = SdesAnswerer()
    offer = SessionDescription.parse(BEST_EFFORT_OFFER)
    answer, audio, _ = negotiate_answer(
        offer, SUPPORTED, "203.0.113.5", 1, 1, crypto_answer=answerer
    )
    media = answer.media[0]
    assert (media.protocol, audio) == ("RTP/AVP", PCMU)
    (line,) = media.crypto
    assert CryptoAttribute.parse(line) == answerer.ours and answerer.ours.tag == 1


def test_best_effort_offer_is_answered_plain_without_a_usable_key_or_a_hook():
    unusable = BEST_EFFORT_OFFER.replace(b"a=crypto:1", b"a=x-crypto:1").replace(
        b"a=crypto:2", b"a=x:2"
    )
    answerer = SdesAnswerer()
    answer, _, _ = negotiate_answer(
        SessionDescription.parse(unusable), SUPPORTED, "192.0.2.1", 1, 1, crypto_answer=answerer
    )
    assert (answer.media[0].protocol, answer.media[0].crypto) == ("RTP/AVP", [])
    assert answerer.ours is None
    answer, _, _ = negotiate_answer(
        SessionDescription.parse(BEST_EFFORT_OFFER), SUPPORTED, "192.0.2.1", 1, 1
    )
    assert (answer.media[0].port, answer.media[0].crypto) == (1, [])


def test_build_offer_best_effort_keeps_avp_with_our_lines():
    lines = [c.serialize() for c in SdesOffer(mandatory=False).offered]
    text = build_offer(
        "192.0.2.1", 20000, [PCMU], session_id=5, protocol="RTP/AVP", crypto=lines
    ).serialize()
    assert b"m=audio 20000 RTP/AVP 0\r\n" in text
    assert [line for line in text.split(b"\r\n") if line.startswith(b"a=crypto:")] == [
        f"a=crypto:{line}".encode() for line in lines
    ]
