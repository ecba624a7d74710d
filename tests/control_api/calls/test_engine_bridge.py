"""control_api/calls/engine_bridge.py with a scripted rtpengine and scripted
phones: what rtpengine is told about each party, the re-INVITEs that move them
(rtpengine's address, our origin, the next version), the fallbacks, the way back."""

from __future__ import annotations

import asyncio
import socket
from types import SimpleNamespace

import pytest

from control_api.calls.call import SUPPORTED_CODECS
from control_api.calls.engine_bridge import EngineBridge
from control_api.calls.media_update import MediaUpdater
from media.clock import MediaClock
from media.ports import PortPool
from media.rtpengine.client import EngineRefused, EngineUnreachable
from media.rtpengine.dtmf_listener import DtmfLogListener
from media.sdp import PCMA, PCMU, TELEPHONE_EVENT, SessionDescription, build_offer
from media.session import RtpSession
from media.srtp import CryptoAttribute, SrtpContext

ENGINE_FOR_A = (
    "v=0\r\no=- 1 1 IN IP4 10.9.9.9\r\ns=-\r\nc=IN IP4 10.9.9.9\r\nt=0 0\r\n"
    "m=audio 41000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=rtcp:41001\r\n"
)
ENGINE_FOR_B = ENGINE_FOR_A.replace("41000", "41010").replace("41001", "41011")
ENGINE_KEYS = [CryptoAttribute.generate(1, "AES_CM_128_HMAC_SHA1_80")]
ENGINE_KEYS.append(CryptoAttribute.generate(2, "AES_CM_128_HMAC_SHA1_32"))
ENGINE_FOR_B_SRTP = ENGINE_FOR_B.replace("RTP/AVP", "RTP/SAVP") + "".join(
    f"a=crypto:{k.serialize()}\r\n" for k in ENGINE_KEYS
)


PHONE_OFFER = (
    b"v=0\r\no=phone 1 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    b"m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
)


class Engines:
    """What EngineBridge asks of RtpEngines, scripted."""

    def __init__(self, refuse: str = "") -> None:
        self.refuse = refuse
        self.sent: list[tuple[str, dict]] = []
        self.held: set[str] = set()
        self.queries = 0
        self.silent_queries = 0  # queries left unanswered before it answers again
        self.heard: float | None = None  # when it last sent anything (loop time)
        self.set = SimpleNamespace(
            instance_for=lambda call_id: call_id if call_id in self.held else None,
            forget=self.held.discard,
        )
        self.dtmf_log: DtmfLogListener | None = None

    def last_heard(self, call_id):
        return self.heard

    async def offer(self, call_id, from_tag, sdp, **options):
        self.sent.append(("offer", {"sdp": sdp, **options}))
        if self.refuse == "offer":
            raise EngineUnreachable("no rtpengine instance is available")
        self.held.add(call_id)
        if options.get("transport-protocol") == "RTP/SAVP":
            return ENGINE_FOR_B_SRTP
        return ENGINE_FOR_B

    async def answer(self, call_id, from_tag, to_tag, sdp, **options):
        self.sent.append(("answer", {"sdp": sdp, **options}))
        if self.refuse == "answer":
            raise EngineRefused("Unknown call-id")
        return ENGINE_FOR_A

    async def query(self, call_id):
        if self.refuse == "query":
            raise EngineUnreachable("no reply from rtpengine")
        if self.refuse == "query-closed":
            raise EngineUnreachable("port unreachable", closed=True)
        if self.silent_queries:
            self.silent_queries -= 1
            raise EngineUnreachable("no reply from rtpengine")
        self.queries += 1
        streams = [{"stats": {"packets": 50 * self.queries}}, {"stats": {"packets": 1}}]
        return {"result": "ok", "tags": {"CA0": {"medias": [{"streams": streams}]}}}

    async def subscribe_request(self, call_id, from_tag, **options):
        self.sent.append(("subscribe request", {"from-tag": from_tag}))
        if self.refuse == "subscribe":
            raise EngineRefused("Unknown call-tag")
        return ENGINE_FOR_A, f"sub-{from_tag}"

    async def subscribe_answer(self, call_id, to_tag, sdp, **options):
        self.sent.append(("subscribe answer", {"to-tag": to_tag, "sdp": sdp}))

    async def unsubscribe(self, call_id, to_tag):
        self.sent.append(("unsubscribe", {"to-tag": to_tag}))

    async def delete(self, call_id):
        self.sent.append(("delete", {}))
        self.held.discard(call_id)
        return {"result": "ok", "totals": {"RTP": {"packets": 7, "bytes": 1204, "errors": 0}}}


class Session:
    """A SIP session whose peer answers each re-INVITE with ``status``."""

    def __init__(self, local_sdp: bytes, status: int = 200, body: bytes = b"") -> None:
        self.local_sdp = local_sdp
        self.status = status
        self.body = body  # the SDP of its answers
        self.offers: list[bytes] = []
        self.on_offer = None

    def send_reinvite(self, sdp, headers=None, on_response=None):
        self.offers.append(sdp)
        self.local_sdp = sdp
        if self.status:  # 0: the peer never answers
            response = SimpleNamespace(status=self.status, body=self.body)
            asyncio.get_running_loop().call_soon(on_response, response)


def free_range(size: int = 10) -> tuple[int, int]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        base = sock.getsockname()[1] & ~1
    return base, base + size - 1


async def party(pool, clock, sid, peer_port, codec=PCMU, status=200, srtp=None, body=b""):
    leg = await RtpSession.bind("127.0.0.1", pool, clock)
    leg.configure(codec, ("127.0.0.1", peer_port), dtmf=TELEPHONE_EVENT)
    keys = []
    if srtp is not None:  # (ours, theirs)
        leg.use_srtp(SrtpContext(*srtp))
        keys = [srtp[0].serialize()]
    ours = build_offer(
        "127.0.0.1",
        leg.port,
        [codec, TELEPHONE_EVENT],
        4242,
        protocol="RTP/SAVP" if srtp else "RTP/AVP",
        crypto=keys,
    )
    session = Session(ours.serialize(), status, body)
    updater = MediaUpdater(leg, "127.0.0.1", session.local_sdp, SUPPORTED_CODECS)
    session.on_offer = updater.answer
    call = SimpleNamespace(
        sid=sid,
        call_id=f"{sid}@test",
        media=SimpleNamespace(bind="127.0.0.1", public_address="127.0.0.1", pool=pool, clock=clock),
        leg=leg,
        session=session,
        media_updater=updater,
        ended=asyncio.Event(),
        log=lambda event, **fields: None,
        hangups=[],
    )
    call.hangup = lambda: call.hangups.append(True)
    return call


@pytest.fixture
async def parties():
    clock = MediaClock()
    pool = PortPool(*free_range())
    made = []

    async def make(**kwargs):
        made.append(await party(pool, clock, f"CA{len(made)}", 30000 + len(made), **kwargs))
        return made[-1]

    yield make
    for call in made:
        call.leg.close()
    clock.close()


async def test_both_parties_move_to_rtpengine_and_the_caller_comes_back(parties):
    a, b = await parties(), await parties(codec=PCMA)
    engines = Engines()
    bridge = EngineBridge(engines, a, b, check_s=3600)
    assert await bridge.start()
    offer, answer = engines.sent[0][1], engines.sent[1][1]
    # rtpengine hears where each phone is and what it speaks; PCMA is transcoded.
    assert "c=IN IP4 127.0.0.1" in offer["sdp"] and "m=audio 30000 RTP/AVP 0 101" in offer["sdp"]
    assert "m=audio 30001 RTP/AVP 8 101" in answer["sdp"]
    assert offer["codec"] == {"mask": ["all"], "transcode": ["PCMA/8000"]}
    assert offer["flags"] == ["asymmetric"] and answer["flags"] == ["asymmetric"]
    # Each phone is re-INVITEd to rtpengine's address for it, under our origin.
    moved_a = SessionDescription.parse(a.session.offers[0])
    assert (moved_a.connection_address, moved_a.media[0].port) == ("10.9.9.9", 41000)
    assert (moved_a.session_id, moved_a.session_version) == (4242, 4243)
    assert moved_a.address == "127.0.0.1" and moved_a.media[0].rtcp_port is None
    assert SessionDescription.parse(b.session.offers[0]).media[0].port == 41010
    # An offer from a phone on rtpengine keeps it there, its direction mirrored.
    refresh = SessionDescription.parse(a.session.on_offer(PHONE_OFFER))
    assert (refresh.connection_address, refresh.media[0].port) == ("10.9.9.9", 41000)
    assert refresh.media[0].direction == "sendrecv" and not a.leg.hold
    held = SessionDescription.parse(a.session.on_offer(PHONE_OFFER + b"a=sendonly\r\n"))
    assert held.media[0].port == 41000 and held.media[0].direction == "recvonly"
    assert held.session_version == refresh.session_version + 1
    assert a.leg.hold  # --rtp-hold-timeout while held
    assert a.session.on_offer(b"garbage") is None
    a.session.local_sdp = a.session.offers[0]
    a.leg.hold = False

    await bridge.stop([a])
    back = SessionDescription.parse(a.session.offers[1])
    assert (back.connection_address, back.media[0].port) == ("127.0.0.1", a.leg.port)
    assert back.session_version == held.session_version + 1
    assert a.session.on_offer == a.media_updater.answer
    assert len(b.session.offers) == 1  # the callee is hung up, not moved back
    assert engines.sent[-1][0] == "delete" and not engines.held


@pytest.mark.parametrize("refuse", ["offer", "answer"])
async def test_a_refusal_leaves_the_bridge_in_process(parties, refuse):
    a, b = await parties(), await parties()
    engines = Engines(refuse=refuse)
    assert not await EngineBridge(engines, a, b).start()
    assert not a.session.offers and not b.session.offers
    assert not engines.held  # an offer that went through is deleted again


async def test_a_party_that_declines_puts_the_other_back(parties):
    a, b = await parties(), await parties(status=488)
    before = b.session.local_sdp
    engines = Engines()
    assert not await EngineBridge(engines, a, b).start()
    assert len(a.session.offers) == 2  # moved, then back
    assert SessionDescription.parse(a.session.offers[1]).media[0].port == a.leg.port
    assert b.session.local_sdp == before
    assert b.session.on_offer == b.media_updater.answer
    assert not engines.held


async def test_rtpengine_s_packet_counts_keep_the_silence_watchdog_quiet(parties):
    a, b = await parties(), await parties()
    engines = Engines()
    bridge = EngineBridge(engines, a, b, check_s=0.01)
    assert await bridge.start()
    before = a.leg.activity()
    for _ in range(200):
        if engines.queries >= 2:
            break
        await asyncio.sleep(0.01)
    assert a.leg.activity() > before  # the packets rtpengine got from the caller count
    assert b.leg.received_elsewhere == 0  # none from the callee
    await bridge.stop([a])


@pytest.mark.parametrize("refuse", ["query", "query-closed"])
async def test_an_rtpengine_that_stops_answering_ends_the_call(parties, refuse):
    a, b = await parties(), await parties()
    engines = Engines()
    bridge = EngineBridge(engines, a, b, check_s=0.01)
    assert await bridge.start()
    engines.refuse = refuse
    for _ in range(200):
        if bridge.lost:
            break
        await asyncio.sleep(0.01)
    assert bridge.lost and a.hangups and b.hangups
    await bridge.stop([a])
    assert len(a.session.offers) == 1  # nobody is moved back to a call that ends


async def test_a_party_that_hangs_up_while_being_moved_ends_the_wait_at_once(parties):
    a, b = await parties(), await parties(status=0)
    engines = Engines()
    loop = asyncio.get_running_loop()
    loop.call_later(0.05, b.ended.set)
    started = loop.time()
    assert not await EngineBridge(engines, a, b).start()
    assert loop.time() - started < 1.0  # not the re-INVITE's 8 s
    assert not engines.held


async def test_a_fork_on_the_caller_hears_both_parties_from_rtpengine(parties):
    """Someone listens to the caller's leg (a fork): before the parties move, each
    party's media is subscribed to, sent to ports of ours; a fork that stops
    mid-bridge unsubscribes, one that starts subscribes again; the end deletes."""
    a, b = await parties(), await parties()
    a.leg.tap = lambda side, frame: None
    engines = Engines()
    bridge = EngineBridge(engines, a, b, check_s=3600)
    assert await bridge.start()
    kinds = [kind for kind, _ in engines.sent]
    assert kinds == ["offer", "answer", *["subscribe request", "subscribe answer"] * 2]
    assert [m["from-tag"] for k, m in engines.sent if k == "subscribe request"] == ["CA0", "CA1"]
    assert len(a.session.offers) == 1  # moved after the copies were asked for
    ports = {copy.session.port for copy in bridge.listeners.copies}
    assert len(ports) == 2 and a.leg.port not in ports
    a.leg.tap = None
    bridge.listeners_changed()
    await bridge._listening
    assert [m["to-tag"] for k, m in engines.sent if k == "unsubscribe"] == ["sub-CA0", "sub-CA1"]
    a.leg.tap = lambda side, frame: None
    bridge.listeners_changed()
    await bridge._listening
    assert len(bridge.listeners.copies) == 2
    sessions = [copy.session for copy in bridge.listeners.copies]
    await bridge.stop([a])
    assert all(session.closed for session in sessions)
    assert engines.sent[-1][0] == "delete"
    assert [k for k, _ in engines.sent].count("unsubscribe") == 2  # the delete ends the rest


async def test_a_bridge_whose_forks_cannot_be_fed_stays_in_process(parties):
    a, b = await parties(), await parties()
    a.leg.tap = lambda side, frame: None
    engines = Engines(refuse="subscribe")
    assert not await EngineBridge(engines, a, b).start()
    assert not a.session.offers and not b.session.offers  # nobody moved
    assert engines.sent[-1][0] == "delete" and not engines.held


def srtp_answer(key: CryptoAttribute) -> bytes:
    return PHONE_OFFER.replace(b"RTP/AVP", b"RTP/SAVP") + f"a=crypto:{key.serialize()}\r\n".encode()


async def test_an_srtp_callee_gets_rtpengine_s_key_and_rtpengine_gets_its_own(parties):
    suite = "AES_CM_128_HMAC_SHA1_32"
    theirs = CryptoAttribute.generate(5, suite)
    keys = (CryptoAttribute.generate(5, suite), theirs)
    a = await parties()
    b = await parties(srtp=keys, body=srtp_answer(CryptoAttribute(2, suite, theirs.key)))
    engines = Engines()
    bridge = EngineBridge(engines, a, b, check_s=3600)
    assert await bridge.start()
    offer, answer = engines.sent[0][1], engines.sent[1][1]
    assert offer["transport-protocol"] == "RTP/SAVP"
    assert "RTP/AVP" in offer["sdp"] and "a=crypto" not in offer["sdp"]
    # rtpengine hears the callee's own key, under the tag it offered for that suite.
    told = SessionDescription.parse(answer["sdp"]).media[0]
    assert told.protocol == "RTP/SAVP"
    assert [CryptoAttribute.parse(c) for c in told.crypto] == [
        CryptoAttribute(2, suite, theirs.key)
    ]
    # The callee is offered rtpengine's key of its suite, and nothing else.
    moved = SessionDescription.parse(b.session.offers[0]).media[0]
    assert moved.protocol == "RTP/SAVP" and moved.port == 41010
    assert moved.crypto == [ENGINE_KEYS[1].serialize()]
    await bridge.stop([b])
    # Back in process: our own key again.
    back = SessionDescription.parse(b.session.offers[1]).media[0]
    assert back.port == b.leg.port and back.crypto == [keys[0].serialize()]


async def test_an_srtp_party_that_answers_the_move_with_a_new_key_stays_in_process(parties):
    suite = "AES_CM_128_HMAC_SHA1_80"
    keys = (CryptoAttribute.generate(1, suite), CryptoAttribute.generate(1, suite))
    a = await parties()
    b = await parties(srtp=keys, body=srtp_answer(CryptoAttribute.generate(1, suite)))
    engines = Engines()
    assert not await EngineBridge(engines, a, b).start()
    assert len(a.session.offers) == 2 and len(b.session.offers) == 2  # moved, then back
    assert not engines.held


async def test_an_rtpengine_that_answers_late_once_keeps_the_call(parties):
    a, b = await parties(), await parties()
    engines = Engines()
    engines.silent_queries = 2  # overloaded: two queries in a row unanswered, then fine
    bridge = EngineBridge(engines, a, b, check_s=0.01)
    assert await bridge.start()
    for _ in range(200):
        if engines.queries >= 2:
            break
        await asyncio.sleep(0.01)
    assert engines.queries >= 2 and not bridge.lost and not a.hangups and not b.hangups
    await bridge.stop([a])


async def test_queries_that_give_up_on_an_instance_that_answers_late_keep_the_call(parties):
    """Our loop paused: the retransmission timers fired before the replies were read,
    every query gives up, yet the instance keeps sending."""
    a, b = await parties(), await parties()
    engines = Engines()
    engines.silent_queries = 10
    loop = asyncio.get_running_loop()

    async def late_replies():
        while engines.silent_queries:
            engines.heard = loop.time()
            await asyncio.sleep(0.002)

    replies = asyncio.ensure_future(late_replies())
    bridge = EngineBridge(engines, a, b, check_s=0.01)
    assert await bridge.start()
    for _ in range(300):
        if engines.queries >= 1:
            break
        await asyncio.sleep(0.01)
    replies.cancel()
    assert engines.queries >= 1 and not bridge.lost and not a.hangups
    await bridge.stop([a])


async def test_digits_from_rtpengine_s_dtmf_log_reach_the_bridge_by_party(parties):
    """hangupOnStar on rtpengine: the DTMF log's events for this bridge's ng call-id
    reach ``on_dtmf`` with the side of the party that keyed them (its ng tag); a
    subscription's tag or another call's events do not; the end stops the watch."""
    a, b = await parties(), await parties()
    engines = Engines()
    engines.dtmf_log = DtmfLogListener()
    engines.dtmf_log.accept_from(["127.0.0.1"])  # the instance's address
    digits: list[tuple[int, str]] = []
    bridge = EngineBridge(engines, a, b, check_s=3600, on_dtmf=lambda *d: digits.append(d))
    assert await bridge.start()
    assert bridge.call_id == "CA0@test/CA1"
    for tag, digit in [("CA0", "*"), ("CA1", "5"), ("sub-CA0", "1")]:
        engines.dtmf_log.datagram_received(
            f'{{"callid":"{bridge.call_id}","source_tag":"{tag}","tags":["CA0","CA1"],'
            f'"type":"DTMF","event":{"0123456789*#".index(digit)},"duration":100,'
            f'"volume":10}}'.encode(),
            ("127.0.0.1", 1),
        )
    assert digits == [(0, "*"), (1, "5")]
    await bridge.stop([a])
    engines.dtmf_log.datagram_received(
        f'{{"callid":"{bridge.call_id}","source_tag":"CA0","event":10}}'.encode(),
        ("127.0.0.1", 1),
    )
    assert digits == [(0, "*"), (1, "5")]
    assert engines.dtmf_log.stats.unknown == 1


async def test_a_call_id_that_would_break_the_dtmf_log_is_not_used_as_the_ng_call_id(parties):
    a, b = await parties(), await parties()
    a.call_id = 'x"y\\z@host'
    bridge = EngineBridge(Engines(), a, b)
    assert bridge.call_id == "CA0/CA1"  # the caller's SID instead


async def test_a_dial_recording_hears_both_parties_from_rtpengine_s_copies(parties):
    """``<Dial record>``: the bridge's tap makes rtpengine copy both parties even with
    nobody on their legs; the caller's copy is side 0, the callee's side 1."""
    a, b = await parties(), await parties()
    heard: list[tuple[int, bytes]] = []
    engines = Engines()
    bridge = EngineBridge(
        engines, a, b, check_s=3600, tap=lambda side, frame: heard.append((side, frame.payload))
    )
    assert await bridge.start()
    assert [k for k, _ in engines.sent].count("subscribe answer") == 2
    first, second = bridge.listeners.copies
    first.session.on_frame(SimpleNamespace(payload=b"caller"))
    second.session.on_frame(SimpleNamespace(payload=b"callee"))
    assert heard == [(0, b"caller"), (1, b"callee")]
    bridge.listeners_changed()  # nobody on the legs: the recording keeps the copies
    await bridge._listening
    assert len(bridge.listeners.copies) == 2
    await bridge.stop([a])
