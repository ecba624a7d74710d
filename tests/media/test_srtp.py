"""SDES crypto attributes (RFC 4568), SRTP/SRTCP contexts (RFC 3711) and SRTP RTP sessions."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import shutil
import struct
import subprocess
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.clock import MediaClock
from media.g711 import ulaw_decode, ulaw_encode
from media.ports import PortPool
from media.rtcp import ReceiverReport, SdesChunk, SourceDescription, serialize_compound
from media.rtp import RtpPacket
from media.sdp import PCMU
from media.session import RtpSession
from media.srtp import (
    OLD_KEY_GRACE,
    SUITES,
    CryptoAttribute,
    SdesAnswerer,
    SdesOffer,
    SrtpContext,
    SrtpError,
    SrtpRefused,
    choose_crypto,
    context_from_answer,
    offer_crypto,
)
from media.tones import ToneGenerator, dominant_frequency
from tests.media.conftest import free_range
from tests.peers import require

# --- crypto attributes (RFC 4568 §9.1) ---

# RFC 4568 §4 and §9.1 examples, one per line as they appear in SDP.
RFC4568_EXAMPLE = (
    "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:32"
)
RFC4568_F8 = (
    "2 F8_128_HMAC_SHA1_80 inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;"
    "inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP"
)
RFC4568_MKI_ONLY = (
    "1 AES_CM_128_HMAC_SHA1_32 inline:YUJDZGVmZ2hpSktMbW9QUXJzVHVWd3l6MTIzNDU2|1066:4"
)
# What SIP phones send in practice (Linphone, baresip, Asterisk): one key, nothing else.
PLAIN = "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz"


def test_parse_rfc4568_example():
    crypto = CryptoAttribute.parse(RFC4568_EXAMPLE)
    assert crypto.tag == 1
    assert crypto.suite == "AES_CM_128_HMAC_SHA1_80"
    assert crypto.key == b"=-n@%^x!Bjufr9)?,#5h\\`=&]{qiPQ"
    assert (crypto.lifetime, crypto.mki) == ("2^20", "1:32")
    assert crypto.serialize() == RFC4568_EXAMPLE
    assert not crypto.usable  # it puts an MKI in every packet, which we do not do


def test_parse_two_keys_and_a_session_parameter():
    crypto = CryptoAttribute.parse(RFC4568_F8)
    assert (crypto.tag, crypto.suite) == (2, "F8_128_HMAC_SHA1_80")
    assert crypto.key == b"123456789ABCDE0123456789ABcdef"
    assert crypto.mki == "1:4"
    assert crypto.more_keys == ("inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4",)
    assert crypto.session_params == ("FEC_ORDER=FEC_SRTP",)
    assert crypto.serialize() == RFC4568_F8
    assert not crypto.usable


def test_parse_mki_without_lifetime():
    crypto = CryptoAttribute.parse(RFC4568_MKI_ONLY)
    assert crypto.key == b"aBCdefghiJKLmoPQrsTuVwyz123456"
    assert (crypto.lifetime, crypto.mki) == (None, "1066:4")
    assert crypto.serialize() == RFC4568_MKI_ONLY


def test_parse_plain_key_is_usable():
    crypto = CryptoAttribute.parse(PLAIN + "  ")
    assert crypto.key == b"YS___semctl () {\t220;}\n}\nunles"
    assert (crypto.lifetime, crypto.mki, crypto.more_keys, crypto.session_params) == (
        None,
        None,
        (),
        (),
    )
    assert crypto.usable
    assert crypto.serialize() == PLAIN


def test_gcm_key_is_28_octets_and_padding_is_optional():
    key = bytes(range(28))
    text = base64.b64encode(key).decode()
    assert text.endswith("=")
    for written in (text, text.rstrip("=")):
        crypto = CryptoAttribute.parse(f"7 AEAD_AES_128_GCM inline:{written}")
        assert crypto.key == key and crypto.usable
    assert CryptoAttribute.parse(f"7 AEAD_AES_128_GCM inline:{text}").serialize().endswith(text)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1 AES_CM_128_HMAC_SHA1_80",  # no key
        "x AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "1234567890 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",
        "1 AES_CM_128_HMAC_SHA1_80 uri:sip:keys@example.com",  # not an inline key
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVu",  # 27 octets
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^x",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:0",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:129",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|1:4|2^20",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGV",  # bad base64
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz;",
        "1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz é",
        "١ AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz",  # noqa: RUF001 (Arabic 1)
    ],
)
def test_bad_attributes_raise_value_error(value):
    with pytest.raises(ValueError):
        CryptoAttribute.parse(value)


def test_generate_gives_fresh_keys_of_the_suite_length():
    for suite, (_, length) in SUITES.items():
        first, second = CryptoAttribute.generate(3, suite), CryptoAttribute.generate(3, suite)
        assert len(first.key) == length and first.key != second.key
        assert CryptoAttribute.parse(first.serialize()) == first
    with pytest.raises(ValueError):
        CryptoAttribute.generate(1, "F8_128_HMAC_SHA1_80")


@given(st.text(max_size=120))
def test_random_text_raises_only_value_error(text):
    with contextlib.suppress(ValueError):
        CryptoAttribute.parse(text)


crypto_ish = st.lists(
    st.sampled_from(
        [
            "1",
            "99",
            " ",
            "\t",
            "AES_CM_128_HMAC_SHA1_80",
            "X_1",
            "inline:",
            "WVNfX19z",
            "ZW1j",
            "=",
            "|",
            "2^",
            "20",
            ":",
            ";",
            "KDR=1",
            "é",
        ]
    ),
    max_size=14,
).map("".join)


@given(crypto_ish)
def test_crypto_shaped_garbage_raises_only_value_error(text):
    try:
        crypto = CryptoAttribute.parse(text)
    except ValueError:
        return
    assert CryptoAttribute.parse(crypto.serialize()) == crypto


attributes = st.builds(
    lambda tag, suite, data, lifetime, mki: CryptoAttribute(
        tag,
        suite,
        data.draw(st.binary(min_size=SUITES[suite][1], max_size=SUITES[suite][1])),
        lifetime,
        mki,
    ),
    st.integers(0, 999_999_999),
    st.sampled_from(sorted(SUITES)),
    st.data(),
    st.none() | st.sampled_from(["2^20", "2^31", "1048576"]),
    st.none() | st.tuples(st.integers(0, 10**6), st.integers(1, 128)).map("{0[0]}:{0[1]}".format),
)


@given(attributes)
def test_round_trip(crypto):
    assert CryptoAttribute.parse(crypto.serialize()) == crypto


# --- offer/answer (RFC 4568 §5.1) ---


def test_choose_crypto_takes_the_first_usable_offer_and_keeps_tag_and_suite():
    offered = [
        CryptoAttribute.parse(RFC4568_F8),  # unknown suite
        CryptoAttribute.parse(RFC4568_EXAMPLE),  # MKI
        CryptoAttribute.parse("5 AES_CM_128_HMAC_SHA1_32 inline:" + "A" * 40),
        CryptoAttribute.parse(PLAIN),
    ]
    theirs, ours = choose_crypto(offered)
    assert theirs is offered[2]
    assert (ours.tag, ours.suite, len(ours.key)) == (5, "AES_CM_128_HMAC_SHA1_32", 30)
    assert ours.key != theirs.key
    assert choose_crypto(offered[:2]) is None
    assert choose_crypto([]) is None


def test_answerer_hook_skips_unreadable_lines_and_remembers_both_sides():
    answerer = SdesAnswerer()
    with pytest.raises(ValueError):
        answerer.context()
    assert answerer(["garbage", RFC4568_EXAMPLE]) is None
    line = answerer(["garbage", PLAIN])
    assert line is not None and line.startswith("1 AES_CM_128_HMAC_SHA1_80 inline:")
    assert answerer.theirs == CryptoAttribute.parse(PLAIN)
    assert CryptoAttribute.parse(line) == answerer.ours
    assert isinstance(answerer.context(), SrtpContext)


def test_offer_and_answer_give_matching_contexts():
    offered = offer_crypto()
    assert [(c.tag, c.suite) for c in offered] == [
        (1, "AES_CM_128_HMAC_SHA1_80"),
        (2, "AES_CM_128_HMAC_SHA1_32"),
    ]
    answerer = SdesAnswerer()
    answer_line = answerer([c.serialize() for c in offered])
    caller = context_from_answer(offered, [answer_line])
    callee = answerer.context()
    packet = rtp_packet(1)
    assert callee.unprotect(caller.protect(packet)) == packet
    assert caller.unprotect(callee.protect(packet)) == packet


@pytest.mark.parametrize(
    "answer",
    [
        [],
        ["9 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40],  # tag not offered
        ["1 AES_CM_128_HMAC_SHA1_32 inline:" + "A" * 40],  # tag 1 was _80
        ["1 AES_CM_128_HMAC_SHA1_80 inline:" + "A" * 40] * 2,
    ],
)
def test_offerer_rejects_answers_that_do_not_match(answer):
    with pytest.raises(ValueError):
        context_from_answer(offer_crypto(), answer)


# --- SRTP contexts ---


def rtp_packet(sequence: int, payload: bytes = b"\xd5" * 160, ssrc: int = 0x1234ABCD) -> bytes:
    return RtpPacket(0, sequence, sequence * 160, ssrc, payload).serialize()


def rtcp_packet(ssrc: int = 0x1234ABCD) -> bytes:
    return serialize_compound(
        [ReceiverReport(ssrc, []), SourceDescription([SdesChunk(ssrc, [(1, b"alice@host")])])]
    )


def context_pair(suite: str) -> tuple[SrtpContext, SrtpContext]:
    a_key, b_key = CryptoAttribute.generate(1, suite), CryptoAttribute.generate(1, suite)
    return SrtpContext(a_key, b_key), SrtpContext(b_key, a_key)


# Authentication tag length per suite (RFC 3711 §5.2, RFC 7714 §14.2). The _32 suite keeps
# the 80-bit tag for SRTCP (RFC 4568 §6.2.2).
TAG_LENGTHS = {"AES_CM_128_HMAC_SHA1_80": 10, "AES_CM_128_HMAC_SHA1_32": 4, "AEAD_AES_128_GCM": 16}
RTCP_TAG_LENGTHS = {**TAG_LENGTHS, "AES_CM_128_HMAC_SHA1_32": 10}


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_rtp_round_trip_and_the_payload_is_encrypted(suite):
    alice, bob = context_pair(suite)
    for sequence in range(65530, 65540):  # across a rollover
        plain = rtp_packet(sequence & 0xFFFF, bytes([sequence & 0xFF]) * 160)
        protected = alice.protect(plain)
        assert len(protected) == len(plain) + TAG_LENGTHS[suite]
        assert protected[:12] == plain[:12]  # the header stays in the clear
        assert protected[12:172] != plain[12:]
        assert bob.unprotect(protected) == plain
        assert alice.unprotect(bob.protect(plain)) == plain


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_rtcp_round_trip_and_the_reports_are_encrypted(suite):
    alice, bob = context_pair(suite)
    plain = rtcp_packet()
    protected = alice.protect_rtcp(plain)
    assert len(protected) == len(plain) + 4 + RTCP_TAG_LENGTHS[suite]  # E + index, then tag
    assert protected[:8] == plain[:8]
    assert protected[8 : len(plain)] != plain[8:]
    # E flag (encrypted) and SRTCP index: before the tag (RFC 3711 §3.4), or last (RFC 7714 §9).
    e_flag_at = len(protected) - 4 if suite.startswith("AEAD") else len(plain)
    assert protected[e_flag_at] & 0x80
    assert bob.unprotect_rtcp(protected) == plain


@pytest.mark.parametrize("suite", sorted(SUITES))
def test_any_flipped_bit_fails_authentication(suite):
    alice, bob = context_pair(suite)
    protected = alice.protect(rtp_packet(7))
    for position in (1, 2, 8, 12, 100, len(protected) - 1):
        forged = bytearray(protected)
        forged[position] ^= 0x01
        with pytest.raises(SrtpError):
            bob.unprotect(bytes(forged))
    protected_rtcp = alice.protect_rtcp(rtcp_packet())
    forged = bytearray(protected_rtcp)
    forged[10] ^= 0x80
    with pytest.raises(SrtpError):
        bob.unprotect_rtcp(bytes(forged))
    # The genuine packets still pass after the forgeries.
    assert bob.unprotect(protected) == rtp_packet(7)
    assert bob.unprotect_rtcp(protected_rtcp) == rtcp_packet()


def test_replayed_packets_and_wrong_keys_are_rejected():
    alice, bob = context_pair("AES_CM_128_HMAC_SHA1_80")
    protected = alice.protect(rtp_packet(100))
    bob.unprotect(protected)
    with pytest.raises(SrtpError):
        bob.unprotect(protected)  # RFC 3711 §3.3.2 replay list
    with pytest.raises(SrtpError):
        alice.unprotect(alice.protect(rtp_packet(101)))  # our own key is not the peer's


@given(st.binary(max_size=300))
def test_random_bytes_raise_only_srtp_error(data):
    _, bob = context_pair("AES_CM_128_HMAC_SHA1_80")
    for unprotect in (bob.unprotect, bob.unprotect_rtcp):
        with contextlib.suppress(SrtpError):
            unprotect(data)


def test_contexts_refuse_attributes_they_cannot_run():
    with pytest.raises(ValueError):
        SrtpContext(CryptoAttribute.parse(RFC4568_EXAMPLE), CryptoAttribute.parse(PLAIN))


# --- known answers ---

# RFC 3711 Appendix B.3 master key and salt; libsrtp's srtp_validate() uses the same pair.
MASTER_KEY = bytes.fromhex("e1f97a0d3e018be0d64fa32c06de4139")
MASTER_SALT = bytes.fromhex("0ec675ad498afeebb6960b3aabe6")
MASTER = MASTER_KEY + MASTER_SALT


def test_known_answer_aes_cm_128_hmac_sha1_80():
    """libsrtp's reference packet (test/srtp_driver.c, srtp_validate): SSRC 0xcafebabe,
    sequence 0x1234, 16 octets of 0xab, protected with the RFC 3711 B.3 master key."""
    key = CryptoAttribute(1, "AES_CM_128_HMAC_SHA1_80", MASTER)
    plain = bytes.fromhex("800f1234decafbadcafebabe") + b"\xab" * 16
    expected = bytes.fromhex(
        "800f1234decafbadcafebabe"
        "4e55dc4ce79978d88ca4d215949d2402"  # encrypted payload
        "b78d6acc99ea179b8dbb"  # HMAC-SHA1-80 tag
    )
    assert SrtpContext(key, key).protect(plain) == expected
    assert SrtpContext(key, key).unprotect(expected) == plain


# A second SRTP implementation, written from RFC 3711 with AES from the openssl command and
# HMAC-SHA1 from hashlib, decrypts and authenticates what SrtpContext produces.


@pytest.fixture
def openssl() -> None:
    require(shutil.which("openssl") is not None, "no openssl command (Debian package openssl)")


def aes_ecb(key: bytes, blocks: bytes) -> bytes:
    result = subprocess.run(
        ["openssl", "enc", "-aes-128-ecb", "-nopad", "-K", key.hex()],
        input=blocks,
        capture_output=True,
        check=True,
        timeout=10,
    )
    return result.stdout


def aes_cm_keystream(key: bytes, iv: bytes, length: int) -> bytes:
    """RFC 3711 §4.1.1: AES of IV, IV+1, ... (the counter is the whole 128-bit block)."""
    start = int.from_bytes(iv, "big")
    count = -(-length // 16)
    counters = b"".join(((start + n) % 2**128).to_bytes(16, "big") for n in range(count))
    return aes_ecb(key, counters)[:length]


def derive(master_key: bytes, master_salt: bytes, label: int, length: int) -> bytes:
    """RFC 3711 §4.3.1 with key_derivation_rate 0: x = (label << 48) XOR salt, PRF = AES-CM."""
    x = int.from_bytes(master_salt, "big") ^ (label << 48)
    return aes_cm_keystream(master_key, (x << 16).to_bytes(16, "big"), length)


def xor(data: bytes, stream: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, stream, strict=True))


class ReferenceSrtp:
    """Receiver side of AES_CM_128_HMAC_SHA1_80 for one SSRC, rollover counter 0."""

    def __init__(self, key_and_salt: bytes) -> None:
        master_key, master_salt = key_and_salt[:16], key_and_salt[16:]
        self.rtp_keys = [
            derive(master_key, master_salt, label, n) for label, n in ((0, 16), (1, 20), (2, 14))
        ]
        self.rtcp_keys = [
            derive(master_key, master_salt, label, n) for label, n in ((3, 16), (4, 20), (5, 14))
        ]

    @staticmethod
    def _iv(salt: bytes, ssrc: int, index: int) -> bytes:
        value = (int.from_bytes(salt, "big") << 16) ^ (ssrc << 64) ^ (index << 16)
        return value.to_bytes(16, "big")

    def unprotect(self, packet: bytes) -> bytes:
        key, auth, salt = self.rtp_keys
        body, tag = packet[:-10], packet[-10:]
        roc = 0
        expected = hmac.new(auth, body + roc.to_bytes(4, "big"), hashlib.sha1).digest()[:10]
        assert tag == expected, "authentication tag"
        sequence, _, ssrc = struct.unpack_from("!HII", body, 2)
        stream = aes_cm_keystream(key, self._iv(salt, ssrc, (roc << 16) | sequence), len(body) - 12)
        return body[:12] + xor(body[12:], stream)

    def unprotect_rtcp(self, packet: bytes) -> bytes:
        key, auth, salt = self.rtcp_keys
        body, tag = packet[:-10], packet[-10:]
        expected = hmac.new(auth, body, hashlib.sha1).digest()[:10]
        assert tag == expected, "authentication tag"
        (e_and_index,) = struct.unpack("!I", body[-4:])
        assert e_and_index & 0x80000000
        (ssrc,) = struct.unpack_from("!I", body, 4)
        encrypted = body[8:-4]
        stream = aes_cm_keystream(
            key, self._iv(salt, ssrc, e_and_index & 0x7FFFFFFF), len(encrypted)
        )
        return body[:8] + xor(encrypted, stream)


@pytest.mark.usefixtures("openssl")
def test_reference_implementation_meets_rfc3711_vectors():
    # B.2: AES-CM keystream for the given session key and IV.
    keystream = aes_cm_keystream(
        bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c"),
        bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfd0000"),
        48,
    )
    assert keystream.hex() == (
        "e03ead0935c95e80e166b16dd92b4eb4"
        "d23513162b02d0f72a43a2fe4a5f97ab"
        "41e95b3bb0a2e8dd477901e4fca894c0"
    )
    # B.3: session keys derived from MASTER.
    reference = ReferenceSrtp(MASTER)
    cipher_key, auth_key, salt = reference.rtp_keys
    assert cipher_key.hex() == "c61e7a93744f39ee10734afe3ff7a087"
    assert salt.hex() == "30cbbc08863d8c85d49db34a9ae1"
    assert auth_key.hex() == "cebe321f6ff7716b6fd4ab49af256a156d38baa4"


@pytest.mark.usefixtures("openssl")
def test_reference_implementation_reads_what_we_protect():
    ours = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    context = SrtpContext(ours, ours)
    reference = ReferenceSrtp(ours.key)
    tone = ToneGenerator(1000, amplitude=0.3)
    for sequence in (1, 2, 40000):
        plain = rtp_packet(sequence, ulaw_encode(tone.next_frame(160)), ssrc=0xCAFEBABE)
        assert reference.unprotect(context.protect(plain)) == plain
    plain = rtcp_packet(0xCAFEBABE)
    assert reference.unprotect_rtcp(context.protect_rtcp(plain)) == plain


# --- RTP sessions over loopback ---


@pytest.fixture
async def srtp_pair():
    """Two PCMU sessions with SRTP, each sending to the other, and what reached b's sockets."""
    clock = MediaClock()
    pool = PortPool(*free_range())
    a = await RtpSession.bind("127.0.0.1", pool, clock)
    b = await RtpSession.bind("127.0.0.1", pool, clock)
    a_key = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    b_key = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    a.configure(PCMU, ("127.0.0.1", b.port))
    b.configure(PCMU, ("127.0.0.1", a.port))
    a.use_srtp(SrtpContext(a_key, b_key))
    b.use_srtp(SrtpContext(b_key, a_key))
    wire: dict[str, list[bytes]] = {"rtp": [], "rtcp": []}
    for kind, name in (("rtp", "datagram_received"), ("rtcp", "receive_rtcp")):
        received = getattr(b, name)

        def tap(data, addr, received=received, seen=wire[kind]):
            seen.append(bytes(data))
            received(data, addr)

        setattr(b, name, tap)
    a.start()
    b.start()
    yield a, b, wire
    a.close()
    b.close()
    clock.close()
    assert pool.in_use == 0


async def test_tone_crosses_srtp_sessions_encrypted(srtp_pair):
    a, b, wire = srtp_pair
    tone = ToneGenerator(700, amplitude=0.4)
    sent: list[bytes] = []

    def source():
        sent.append(ulaw_encode(tone.next_frame(160)))
        return sent[-1]

    a.source = source
    frames = []
    b.on_frame = frames.append
    await asyncio.sleep(1.0)
    a.source = None
    await asyncio.sleep(0.1)
    assert len(frames) >= 40 and b.bad_packets == 0
    # What came over the wire: our packets, 10 octets longer, and not the G.711 we sent.
    assert len(wire["rtp"]) >= len(frames)
    assert all(len(packet) == 12 + 160 + 10 for packet in wire["rtp"])
    on_the_wire = {packet[12:172] for packet in wire["rtp"]}
    assert not on_the_wire & set(sent)
    # What came out of the session: the tone, exactly as sent.
    received = [frame.payload for frame in frames]
    assert received == sent[: len(received)]
    assert dominant_frequency(ulaw_decode(b"".join(received))) == pytest.approx(700, abs=5)


async def test_sender_reports_travel_as_srtcp(srtp_pair):
    a, b, wire = srtp_pair
    a.source = lambda: b"\xff" * 160
    await asyncio.sleep(0.2)
    a._send_rtcp()
    await asyncio.sleep(0.1)
    assert b._lsr != 0 and b.bad_packets == 0
    (packet,) = wire["rtcp"]
    assert packet[1] == 200  # a sender report, its first 8 octets in the clear
    assert b"callswitch-" not in packet  # the CNAME is encrypted
    assert packet[-14] & 0x80  # E flag of the SRTCP index


async def test_plain_and_forged_packets_are_counted_and_dropped(srtp_pair):
    a, b, _ = srtp_pair
    frames = []
    b.on_frame = frames.append
    plain_sender = await asyncio.get_running_loop().create_datagram_endpoint(
        asyncio.DatagramProtocol, sock=None, remote_addr=("127.0.0.1", b.port)
    )
    transport = plain_sender[0]
    try:
        for sequence in range(10):
            transport.sendto(rtp_packet(sequence, ssrc=77))
        transport.sendto(rtcp_packet(77))
        await asyncio.sleep(0.3)
    finally:
        transport.close()
    assert frames == []
    assert b.bad_packets == 11
    # A genuine stream still gets through afterwards.
    a.source = lambda: b"\x7f" * 160
    await asyncio.sleep(0.3)
    assert frames and frames[0].payload == b"\x7f" * 160


# --- the offerer's side for calls we place (RFC 4568 §5.1.1, §5.1.3) ---


@pytest.mark.parametrize(("mandatory", "protocol"), [(True, "RTP/SAVP"), (False, "RTP/AVP")])
def test_sdes_offer_has_both_suites_with_fresh_keys(mandatory, protocol):
    offer, other = SdesOffer(mandatory), SdesOffer(mandatory)
    assert offer.protocol == protocol
    parsed = [CryptoAttribute.parse(line) for line in offer.lines]
    assert [(c.tag, c.suite) for c in parsed] == [
        (1, "AES_CM_128_HMAC_SHA1_80"),
        (2, "AES_CM_128_HMAC_SHA1_32"),
    ]
    assert all(c.usable and len(c.key) == 30 for c in parsed)
    keys = {c.key for c in parsed} | {c.key for c in other.offered}
    assert len(keys) == 4  # a key per suite, and new ones for every call


@pytest.mark.parametrize("mandatory", [True, False])
@pytest.mark.parametrize("protocol", ["RTP/SAVP", "RTP/AVP"])
def test_sdes_offer_takes_an_answer_of_one_offered_tag(mandatory, protocol):
    offer = SdesOffer(mandatory)
    theirs = CryptoAttribute.generate(2, "AES_CM_128_HMAC_SHA1_32")
    context = offer.context(protocol, [theirs.serialize()])
    assert context is not None
    assert context.ours == offer.offered[1] and context.theirs == theirs
    peer = SrtpContext(theirs, offer.offered[1])
    assert peer.unprotect(context.protect(rtp_packet(7))) == rtp_packet(7)


def test_sdes_offer_refuses_a_plain_answer_when_mandatory_and_takes_it_when_optional():
    with pytest.raises(SrtpRefused, match="declined SRTP"):
        SdesOffer(mandatory=True).context("RTP/AVP", [])
    assert SdesOffer(mandatory=False).context("RTP/AVP", []) is None
    with pytest.raises(SrtpRefused, match="without an a=crypto"):
        SdesOffer(mandatory=False).context("RTP/SAVP", [])


@pytest.mark.parametrize(
    "answer",
    [
        [PLAIN.replace("1 ", "3 ", 1)],  # a tag we did not offer
        [PLAIN.replace("1 AES_CM_128_HMAC_SHA1_80", "2 AES_CM_128_HMAC_SHA1_80")],  # its suite
        [PLAIN, PLAIN],  # two answers
        ["1 AES_CM_128_HMAC_SHA1_80 inline:short"],
    ],
)
@pytest.mark.parametrize("mandatory", [True, False])
def test_sdes_offer_refuses_answers_that_do_not_match(answer, mandatory):
    with pytest.raises(SrtpRefused):
        SdesOffer(mandatory).context("RTP/SAVP", answer)


# --- new keys mid-call (RFC 4568 §7.1.4) ---


def test_rekey_with_the_same_keys_keeps_both_sessions_and_their_rollover():
    alice, bob = context_pair("AES_CM_128_HMAC_SHA1_80")
    for sequence in range(65530, 65536):
        assert bob.unprotect(alice.protect(rtp_packet(sequence))) == rtp_packet(sequence)
    # Same keys under another tag (a re-offer's): nothing is rebuilt, so the rollover
    # counter both sides keep goes on past the wrap.
    assert not alice.rekey(replace(alice.ours, tag=2), replace(alice.theirs, tag=2))
    assert alice.ours.tag == 2
    for sequence in range(6):
        assert bob.unprotect(alice.protect(rtp_packet(sequence))) == rtp_packet(sequence)


def test_a_new_peer_key_is_taken_up_and_the_old_one_passes_for_a_moment():
    ours = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    old = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    new = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_32")
    context = SrtpContext(ours, old)
    peer_old, peer_new = SrtpContext(old, ours), SrtpContext(new, ours)
    assert context.unprotect(peer_old.protect(rtp_packet(100))) == rtp_packet(100)
    assert context.rekey(ours, new)
    # In flight under the old key, or sent before the peer had our answer: still heard.
    assert context.unprotect(peer_old.protect(rtp_packet(101))) == rtp_packet(101)
    assert context.unprotect_rtcp(peer_old.protect_rtcp(rtcp_packet())) == rtcp_packet()
    for sequence in range(102, 102 + OLD_KEY_GRACE):
        assert context.unprotect(peer_new.protect(rtp_packet(sequence))) == rtp_packet(sequence)
    # Once the new key has carried the stream for a while, the old one is forgotten.
    with pytest.raises(SrtpError):
        context.unprotect(peer_old.protect(rtp_packet(500)))
    with pytest.raises(SrtpError):
        context.unprotect_rtcp(peer_old.protect_rtcp(rtcp_packet()))


def test_a_new_key_of_ours_starts_a_new_outbound_context():
    old = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    new = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    theirs = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    context = SrtpContext(old, theirs)
    protected_old = context.protect(rtp_packet(9))
    assert context.rekey(new, theirs)
    protected_new = context.protect(rtp_packet(10))
    assert SrtpContext(theirs, new).unprotect(protected_new) == rtp_packet(10)
    with pytest.raises(SrtpError):
        SrtpContext(theirs, new).unprotect(protected_old)


def test_rekey_with_an_attribute_it_cannot_run_changes_nothing():
    alice, bob = context_pair("AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(ValueError):
        alice.rekey(alice.ours, CryptoAttribute.parse(RFC4568_EXAMPLE))
    with pytest.raises(ValueError):  # the same key, but with an MKI we do not put in packets
        alice.rekey(alice.ours, replace(alice.theirs, mki="1:4"))
    assert bob.unprotect(alice.protect(rtp_packet(1))) == rtp_packet(1)
    assert alice.unprotect(bob.protect(rtp_packet(1))) == rtp_packet(1)


def test_the_answerer_keeps_its_key_when_the_re_offer_has_its_suite():
    kept = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    offered = [
        CryptoAttribute.generate(5, "AES_CM_128_HMAC_SHA1_32").serialize(),
        CryptoAttribute.generate(6, "AES_CM_128_HMAC_SHA1_80").serialize(),
    ]
    answerer = SdesAnswerer(keep=kept)
    line = answerer(offered)
    assert line is not None
    answered = CryptoAttribute.parse(line)
    assert (answered.tag, answered.suite, answered.key) == (6, kept.suite, kept.key)
    assert answerer.theirs is not None and answerer.theirs.tag == 6
    # Without that suite in the offer: a fresh key of the suite chosen.
    fresh = SdesAnswerer(keep=kept)
    line = fresh(offered[:1])
    assert line is not None
    answered = CryptoAttribute.parse(line)
    assert answered.suite == "AES_CM_128_HMAC_SHA1_32" and answered.key != kept.key


answered_lines = st.lists(
    crypto_ish | attributes.map(CryptoAttribute.serialize) | st.text(max_size=60), max_size=3
)


@given(st.sampled_from(["RTP/AVP", "RTP/SAVP", "RTP/SAVPF", "UDP/TLS/RTP/SAVP"]), answered_lines)
def test_whatever_an_answer_carries_sdes_offer_agrees_or_refuses(protocol, lines):
    for mandatory in (True, False):
        offer = SdesOffer(mandatory)
        try:
            context = offer.context(protocol, lines)
        except SrtpRefused:
            continue
        assert context is not None or (not mandatory and not lines)


@given(answered_lines)
def test_whatever_a_re_offer_carries_the_answerer_answers_or_declines(lines):
    kept = CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")
    answerer = SdesAnswerer(keep=kept)
    line = answerer(lines)
    if line is not None:
        assert CryptoAttribute.parse(line) == answerer.ours and answerer.ours.usable
        SrtpContext(kept, kept).rekey(answerer.ours, answerer.theirs)
