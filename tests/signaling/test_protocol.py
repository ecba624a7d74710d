"""The signaling messages (signaling/protocol.py): parse, refuse, serialize."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from signaling import protocol
from signaling.protocol import ProtocolError, parse, serialize


def test_each_client_message_parses():
    assert parse('{"type":"register","token":"t"}') == protocol.Register("t")
    assert parse(
        json.dumps({"type": "call", "ref": "r1", "sdp": "v=0", "to": "+1555", "params": {"a": 1}})
    ) == protocol.Dial("r1", "v=0", "+1555", {"a": "1"})
    assert parse('{"type":"accept","call":"CA1","sdp":"v=0"}') == protocol.Accept("CA1", "v=0")
    assert parse('{"type":"reject","call":"CA1"}') == protocol.Reject("CA1")
    assert parse(
        '{"type":"candidate","call":"CA1","candidate":"candidate:1 1 udp 1 1.2.3.4 5 typ host",'
        '"sdpMid":"0","sdpMLineIndex":0}'
    ) == protocol.Candidate("CA1", "candidate:1 1 udp 1 1.2.3.4 5 typ host", "0", 0)
    assert parse('{"type":"candidate","call":"CA1","candidate":null}') == protocol.Candidate("CA1")
    assert parse('{"type":"dtmf","call":"CA1","digits":"12#*"}') == protocol.Dtmf("CA1", "12#*")
    assert parse('{"type":"mute","call":"CA1","muted":true}') == protocol.Mute("CA1", True)
    assert parse('{"type":"hangup","call":"CA1"}') == protocol.Hangup("CA1")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nope",
        "[]",
        "{}",
        '{"type":"register"}',
        '{"type":"register","token":5}',
        '{"type":"accept","call":"CA1"}',
        '{"type":"accept","call":"../x","sdp":"v=0"}',
        '{"type":"dtmf","call":"CA1","digits":"x"}',
        '{"type":"mute","call":"CA1","muted":"yes"}',
        '{"type":"candidate","call":"CA1","sdpMLineIndex":true}',
        '{"type":"call","ref":"r","sdp":"v=0","params":[]}',
        '{"type":"call","ref":"r","sdp":"v=0","to":"a\\u0000b"}',
        '{"type":"incoming","call":"CA1","sdp":"v=0"}',
        "x" * (protocol.MAX_MESSAGE + 1),
        b"\xff\xfe",
        "[" * 100000,
    ],
)
def test_malformed_messages_are_refused_with_31100(text):
    with pytest.raises(ProtocolError) as caught:
        parse(text)
    assert caught.value.code == protocol.MALFORMED


def test_the_error_names_the_call_when_it_can():
    with pytest.raises(ProtocolError) as caught:
        parse('{"type":"dtmf","call":"CA1","digits":"!"}')
    assert caught.value.call == "CA1"


def test_server_messages_serialize_with_browser_field_names():
    assert json.loads(serialize(protocol.Incoming("CA1", "v=0", from_="+1555", to="client:a"))) == {
        "type": "incoming",
        "call": "CA1",
        "sdp": "v=0",
        "from": "+1555",
        "to": "client:a",
    }
    assert json.loads(serialize(protocol.Error(31100, "bad"))) == {
        "type": "error",
        "code": 31100,
        "message": "bad",
    }


@given(st.text(max_size=500))
def test_any_text_parses_or_is_refused(text):
    try:
        parse(text)
    except ProtocolError as exc:
        assert exc.code == protocol.MALFORMED


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.sampled_from(
        ["register", "call", "accept", "reject", "candidate", "dtmf", "mute", "hangup"]
    ),
    st.dictionaries(
        st.sampled_from(
            [
                "token",
                "ref",
                "sdp",
                "to",
                "params",
                "call",
                "candidate",
                "sdpMid",
                "sdpMLineIndex",
                "digits",
                "muted",
            ]
        ),
        json_values,
        max_size=6,
    ),
)
def test_any_fields_of_a_known_type_parse_or_are_refused(kind, fields):
    try:
        message = parse(json.dumps({"type": kind, **fields}))
    except ProtocolError as exc:
        assert exc.code == protocol.MALFORMED
    else:
        assert message.type == kind
