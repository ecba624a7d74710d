"""ConversationRelay's messages (control_api/voice/relay_protocol.py)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_api.voice import relay_protocol as m


def test_what_the_application_may_send():
    assert m.parse_app_message('{"type":"text","token":"Hi","last":true}') == m.Text("Hi", True)
    assert m.parse_app_message(
        json.dumps({"type": "text", "token": "x", "lang": "es-ES", "interruptible": False})
    ) == m.Text("x", False, "es-ES", "none")
    assert m.parse_app_message(
        '{"type":"play","source":"https://a.example/x.wav","loop":2,"preemptible":true}'
    ) == m.Play("https://a.example/x.wav", 2, None, True)
    assert m.parse_app_message('{"type":"sendDigits","digits":"12w#"}') == m.SendDigits("12w#")
    assert m.parse_app_message('{"type":"language","ttsLanguage":"fr-FR"}') == m.Language(
        "fr-FR", None
    )
    assert m.parse_app_message('{"type":"end"}') == m.End(None)
    assert m.parse_app_message('{"type":"end","handoffData":{"a":1}}') == m.End('{"a": 1}')


@pytest.mark.parametrize(
    "data",
    [
        "not json",
        "[1, 2]",
        '{"type":"dance"}',
        '{"token":"no type"}',
        '{"type":"text"}',
        '{"type":"text","token":5}',
        '{"type":"text","token":"x","last":"yes"}',
        '{"type":"text","token":"x","interruptible":"sometimes"}',
        '{"type":"play","source":"file:///etc/passwd"}',
        '{"type":"play","source":"https://x","loop":-1}',
        '{"type":"sendDigits","digits":"12x"}',
        '{"type":"sendDigits","digits":""}',
        '{"type":"language"}',
        '{"type":"text","token":"' + "x" * 70000 + '"}',
    ],
)
def test_what_is_not_a_message_is_refused_with_a_reason(data):
    with pytest.raises(m.RelayMessageError) as caught:
        m.parse_app_message(data)
    assert str(caught.value)


@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_any_bytes_parse_or_are_refused(data):
    with contextlib.suppress(m.RelayMessageError):
        m.parse_app_message(data)


@given(
    st.dictionaries(
        st.sampled_from(
            ["type", "token", "last", "source", "loop", "digits", "lang", "handoffData"]
        ),
        st.one_of(
            st.none(), st.booleans(), st.integers(), st.text(max_size=20), st.lists(st.integers())
        ),
    )
)
def test_any_json_object_parses_or_is_refused(body):
    with contextlib.suppress(m.RelayMessageError):
        m.parse_app_message(json.dumps(body))


def test_what_we_send_is_twilios_shape():
    assert json.loads(m.prompt("hello there", "en-US")) == {
        "type": "prompt",
        "voicePrompt": "hello there",
        "lang": "en-US",
        "last": True,
    }
    assert json.loads(m.interrupt("Welcome to", 820)) == {
        "type": "interrupt",
        "utteranceUntilInterrupt": "Welcome to",
        "durationUntilInterruptMs": 820,
    }
    assert json.loads(m.dtmf("7")) == {"type": "dtmf", "digit": "7"}
    assert json.loads(m.error("bad")) == {"type": "error", "description": "bad"}
    setup = json.loads(
        m.setup(
            session_id="VX1",
            account_sid="AC1",
            call_sid="CA1",
            parent_call_sid="",
            from_="+1555",
            to="+1666",
            forwarded_from="",
            caller_name="",
            direction="inbound",
            call_type="PSTN",
            call_status="IN-PROGRESS",
            custom_parameters={"k": "v"},
        )
    )
    assert set(setup) == {
        "type", "sessionId", "accountSid", "parentCallSid", "callSid", "from", "to",
        "forwardedFrom", "callerName", "direction", "callType", "callStatus", "customParameters",
    }  # fmt: skip
