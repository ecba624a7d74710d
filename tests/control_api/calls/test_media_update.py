"""Mid-call offers applied to an RTP leg: hold, resume, new address, new codec."""

from __future__ import annotations

from control_api.calls.call import SUPPORTED_CODECS
from control_api.calls.media_update import attach_media_updates
from media.sdp import PCMU, SessionDescription, negotiate_answer
from media.session import RtpSession


class FakeSession:
    def __init__(self, local_sdp: bytes) -> None:
        self.local_sdp = local_sdp
        self.on_offer = self.on_answer = None


def offer(port=6000, address="10.0.0.1", direction="sendrecv", codecs="0 101", version=1):
    lines = [
        "v=0",
        f"o=- 1 {version} IN IP4 10.0.0.1",
        "s=-",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {codecs}",
        "a=rtpmap:101 telephone-event/8000",
        f"a={direction}",
        "",
    ]
    return "\r\n".join(lines).encode()


def leg_and_updater():
    leg = RtpSession(clock=None, pool=None, port=20000)
    first = SessionDescription.parse(offer())
    answer, codec, dtmf = negotiate_answer(first, SUPPORTED_CODECS, "127.0.0.1", 20000, leg.ssrc)
    leg.configure(codec, ("10.0.0.1", 6000), dtmf=dtmf)
    session = FakeSession(answer.serialize())
    updater = attach_media_updates(session, leg, "127.0.0.1", SUPPORTED_CODECS)
    return leg, session, updater


def audio(body: bytes):
    sdp = SessionDescription.parse(body)
    return sdp, sdp.media[0]


def test_same_offer_keeps_the_version():
    leg, session, _ = leg_and_updater()
    before = SessionDescription.parse(session.local_sdp).session_version
    sdp, media = audio(session.on_offer(offer(version=2)))
    assert sdp.session_version == before and media.direction == "sendrecv"
    assert media.port == 20000 and not leg.hold


def test_sendonly_is_hold_and_sendrecv_resumes():
    leg, session, _ = leg_and_updater()
    before = SessionDescription.parse(session.local_sdp).session_version
    sdp, media = audio(session.on_offer(offer(direction="sendonly", version=2)))
    assert media.direction == "recvonly" and leg.hold and sdp.session_version == before + 1
    sdp, media = audio(session.on_offer(offer(direction="inactive", version=3)))
    assert media.direction == "inactive" and leg.hold and sdp.session_version == before + 2
    sdp, media = audio(session.on_offer(offer(direction="sendrecv", version=4)))
    assert media.direction == "sendrecv" and not leg.hold and sdp.session_version == before + 3


def test_rfc2543_hold_with_zero_address_keeps_the_remote():
    leg, session, _ = leg_and_updater()
    _, media = audio(session.on_offer(offer(address="0.0.0.0", version=2)))
    assert media.direction == "recvonly" and leg.hold and leg.remote == ("10.0.0.1", 6000)


def test_new_address_and_codec_reconfigure_the_leg():
    leg, session, _ = leg_and_updater()
    changes = []
    leg.on_reconfigured = lambda: changes.append(leg.codec)
    _, media = audio(session.on_offer(offer(port=7000, address="10.0.0.2", version=2)))
    assert leg.remote == ("10.0.0.2", 7000) and changes == []
    _, media = audio(session.on_offer(offer(port=7000, address="10.0.0.2", codecs="8 101")))
    assert leg.codec == "PCMA" and changes == ["PCMA"]
    assert [c.name for c in media.codecs] == ["PCMA", "telephone-event"]


def test_unusable_offer_is_refused():
    _, session, _ = leg_and_updater()
    assert session.on_offer(offer(codecs="18")) is None
    assert session.on_offer(b"garbage") is None


def test_answer_in_ack_applies_hold():
    leg, session, _ = leg_and_updater()
    session.on_answer(offer(direction="inactive"))
    assert leg.hold
    session.on_answer(offer(direction="sendrecv", codecs="8 101"))
    assert not leg.hold and leg.codec == "PCMA"


def test_hold_sends_nothing_but_drains_the_queue():
    leg, _, _ = leg_and_updater()
    sent = []

    class Transport:
        def sendto(self, data, address):
            sent.append(bytes(data))

    leg.connection_made(Transport())
    leg.send_payload(b"\xff" * 160)
    leg.hold = True
    leg._tick()
    leg.relay_packet(b"\x80\x00" + bytes(10) + b"\xff" * 160, 0, 1, 1, 1)
    assert sent == [] and not leg._queue
    leg.hold = False
    leg.send_payload(b"\xff" * 160)
    leg._tick()
    assert len(sent) == 1 and sent[0][1] & 0x7F == PCMU.payload_type


def test_an_offer_before_consent_moves_the_waiting_address_not_the_sending_one():
    leg = RtpSession(clock=None, pool=None, port=20000)
    first = SessionDescription.parse(offer())
    answer, codec, dtmf = negotiate_answer(first, SUPPORTED_CODECS, "127.0.0.1", 20000, leg.ssrc)
    leg.await_consent()
    leg.configure(codec, ("10.0.0.1", 6000), dtmf=dtmf)
    session = FakeSession(answer.serialize())
    attach_media_updates(session, leg, "127.0.0.1", SUPPORTED_CODECS)
    session.on_offer(offer(port=7000, address="10.0.0.2", version=2))
    assert leg.remote is None and leg.destination == ("10.0.0.2", 7000)
    leg.consent()
    assert leg.remote == ("10.0.0.2", 7000)
