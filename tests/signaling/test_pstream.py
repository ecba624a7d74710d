"""PStream frames (the official Voice JS SDK's signaling): every client message,
malformed frames refused with a code, never a crash (hypothesis)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling import pstream
from signaling.pstream import PStreamError

SDP = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n"


def client(kind: str, **payload) -> str:
    return json.dumps({"type": kind, "version": "1.6", "payload": payload})


def test_listen_as_the_sdk_sends_it():
    message = pstream.parse(
        client(
            "listen",
            token="eyJ.a.b",
            browserinfo={"p": "browser", "v": "2.18.5", "plugin": "rtc"},
            reconnectTimeout=12,
        )
    )
    assert message == pstream.Listen("eyJ.a.b", 12)
    assert pstream.parse(client("listen", token="t", reconnectTimeout=600)).reconnect_timeout == 30
    assert pstream.parse(client("listen", token="t", reconnectTimeout="x")).reconnect_timeout == 0


def test_register_and_unregister():
    assert pstream.parse(client("register", media={"audio": True})) == pstream.Register(True)
    assert pstream.parse(client("register", media={"audio": False})) == pstream.Register(False)
    with pytest.raises(PStreamError) as refused:
        pstream.parse(client("register", media={"audio": "yes"}))
    assert refused.value.code == 31100


def test_an_outgoing_invite_decodes_its_params():
    message = pstream.parse(
        client(
            "invite",
            callsid="TJS95b8f381-1234-4abc-8def-0123456789ab",
            sdp=SDP,
            twilio={"params": "To=%2B15551234567&team=blue&odd%20key=a%26b%3Dc"},
        )
    )
    assert isinstance(message, pstream.Invite)
    assert message.params == {"To": "+15551234567", "team": "blue", "odd key": "a&b=c"}
    assert message.reconnect is None
    empty = pstream.parse(client("invite", callsid="TJSx", sdp=SDP, twilio={}))
    assert empty.params == {}


def test_a_reconnect_invite_carries_its_token():
    message = pstream.parse(
        client("invite", callsid="CA" + "1" * 32, sdp=SDP, twilio={}, reconnect="tok-1")
    )
    assert message.reconnect == "tok-1" and message.callsid == "CA" + "1" * 32


def test_messages_on_a_call():
    sid = "CA" + "2" * 32
    assert pstream.parse(client("answer", callsid=sid, sdp=SDP)) == pstream.Answer(sid, SDP)
    assert pstream.parse(client("reject", callsid=sid)) == pstream.Reject(sid)
    assert pstream.parse(client("hangup", callsid=sid, message="bye")) == pstream.Hangup(sid, "bye")
    assert pstream.parse(client("dtmf", callsid=sid, dtmf="1w#")) == pstream.Dtmf(sid, "1w#")
    assert pstream.parse(client("reinvite", callsid=sid, sdp=SDP)) == pstream.Reinvite(sid, SDP)
    message = pstream.parse(
        client(
            "message",
            callsid=sid,
            content='{"a":1}',
            contenttype="application/json",
            messagetype="user-defined-message",
            voiceeventsid="KX" + "3" * 32,
        )
    )
    assert message == pstream.Message(sid, "KX" + "3" * 32, '{"a":1}')


def test_the_heartbeat_is_not_a_message():
    assert pstream.parse("\n") is None


@pytest.mark.parametrize(
    ("text", "callsid"),
    [
        ("not json", None),
        ("[1,2]", None),
        (client("nosuch"), None),
        (json.dumps({"type": "listen", "payload": []}), None),
        (client("listen"), None),
        (client("invite", callsid="bad id!", sdp=SDP), None),
        (client("invite", callsid="TJS1", sdp=SDP, twilio={"params": 5}), "TJS1"),
        (client("invite", callsid="TJS1", sdp=SDP, twilio="x"), "TJS1"),
        (client("answer", callsid="CA1"), "CA1"),
        (client("dtmf", callsid="CA1", dtmf="1x"), "CA1"),
        (client("message", callsid="CA1", content="x", voiceeventsid="no spaces"), "CA1"),
        (client("hangup", callsid=7), None),
        ("x" * (pstream.MAX_FRAME + 1), None),
    ],
)
def test_malformed_frames_are_refused_with_31100(text, callsid):
    with pytest.raises(PStreamError) as refused:
        pstream.parse(text)
    assert refused.value.code == 31100
    assert refused.value.callsid == callsid


def test_binary_frames_and_too_many_params_are_refused():
    with pytest.raises(PStreamError):
        pstream.parse(b"{}")
    many = "&".join(f"k{i}=v" for i in range(40))
    with pytest.raises(PStreamError):
        pstream.parse(client("invite", callsid="TJS1", sdp=SDP, twilio={"params": many}))


def test_params_round_trip_as_the_sdk_reads_them():
    params = {"team": "blue", "note": "hello world", "odd key": "a&b=c", "ü": "ß"}
    assert pstream.decode_params(pstream.encode_params(params)) == params
    assert pstream.encode_params({"note": "hello world"}) == "note=hello%20world"


def test_server_frames():
    assert json.loads(pstream.frame("ready")) == {"type": "ready", "version": "1.6", "payload": {}}
    connected = json.loads(pstream.frame("connected", token={"identity": "alice", "ttl": 60}))
    assert connected["payload"] == {"token": {"identity": "alice", "ttl": 60}}
    error = json.loads(pstream.error_frame(31204, "bad", "CA1"))
    assert error["payload"] == {"error": {"code": 31204, "message": "bad"}, "callsid": "CA1"}
    assert "callsid" not in json.loads(pstream.error_frame(31204, "bad"))["payload"]


def test_token_errors_map_to_the_codes_the_sdk_knows():
    assert pstream.wire_code(20104) == 31205  # AccessTokenExpired (20104) for the app
    for code in (20101, 20102, 20103, 20105, 20106, 20107):
        assert pstream.wire_code(code) == 31204  # AccessTokenInvalid (20101)


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_kinds = st.sampled_from(
    ["listen", "register", "invite", "answer", "reject", "hangup", "dtmf", "reinvite", "message"]
)


@given(st.text(max_size=300) | st.binary(max_size=100))
def test_arbitrary_text_is_a_message_or_an_error(text):
    try:
        pstream.parse(text)
    except PStreamError as exc:
        assert exc.code == 31100


@given(_kinds, st.dictionaries(st.text(max_size=12), _json, max_size=6) | _json)
def test_arbitrary_payloads_are_a_message_or_an_error(kind, payload):
    try:
        pstream.parse(json.dumps({"type": kind, "payload": payload}))
    except PStreamError as exc:
        assert exc.code == 31100


@given(
    st.sampled_from(["callsid", "sdp", "twilio", "reconnect", "dtmf", "content", "media"]),
    _json,
)
def test_each_field_of_the_wrong_kind_is_an_error(name, value):
    payload = {"callsid": "CA1", "sdp": SDP, "twilio": {}, "dtmf": "1", "voiceeventsid": "KX1"}
    payload[name] = value
    for kind in ("invite", "answer", "dtmf", "message", "register"):
        try:
            pstream.parse(json.dumps({"type": kind, "payload": payload}))
        except PStreamError as exc:
            assert exc.code == 31100
