"""media/rtpengine/dtmf_log.py: rtpengine's DTMF log events, and anything else
that reaches the socket (which must raise DtmfLogError and nothing else)."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtpengine.dtmf_log import (
    MAX_DATAGRAM,
    DtmfEvent,
    DtmfLogError,
    NgNotifications,
    parse_dtmf_event,
)

# As rtpengine 10.5 writes it (daemon/dtmf.c dtmf_json_print), for a * from the caller.
LOGGED = (
    b'{"callid":"a84b4c76e66710@pc33.example.com/CA3f2","source_tag":"CA9e1",'
    b'"tags":["CA9e1","CA3f2"],"type":"DTMF","timestamp":1765000000,'
    b'"source_ip":"127.0.0.1","event":10,"duration":250,"volume":10}'
)


def test_an_event_as_rtpengine_logs_it():
    assert parse_dtmf_event(LOGGED) == DtmfEvent(
        "a84b4c76e66710@pc33.example.com/CA3f2", "CA9e1", "*", duration_ms=250, volume=10
    )


@pytest.mark.parametrize(("code", "digit"), [(0, "0"), (9, "9"), (11, "#"), (12, "A"), (15, "D")])
def test_each_event_code_is_its_digit(code, digit):
    body = json.loads(LOGGED)
    body["event"] = code
    assert parse_dtmf_event(json.dumps(body).encode()).digit == digit


def test_a_newer_rtpengine_s_source_label_is_ignored():
    body = {**json.loads(LOGGED), "source_label": "caller"}
    assert parse_dtmf_event(json.dumps(body).encode()).source_tag == "CA9e1"


@pytest.mark.parametrize(
    ("change", "fault"),
    [
        ({"event": 16}, "event"),  # flash: not a digit
        ({"event": -1}, "event"),
        ({"event": True}, "event"),
        ({"event": "10"}, "event"),
        ({"callid": ""}, "callid"),
        ({"callid": 5}, "callid"),
        ({"source_tag": None}, "source_tag"),
        ({"type": "CONTROL"}, "type"),
        ({"duration": -5}, "duration"),
        ({"volume": 1.5}, "volume"),
    ],
)
def test_fields_that_are_not_an_event_are_refused(change, fault):
    body = {**json.loads(LOGGED), **change}
    with pytest.raises(DtmfLogError, match=fault):
        parse_dtmf_event(json.dumps(body).encode())


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b"null",
        b'"DTMF"',
        LOGGED[:-1],  # cut short
        b"[" * 4000 + b"]" * 4000,  # deeper than the parser's recursion allows
        b'{"event":10,"callid":"x","source_tag":"y","pad":"' + b"x" * MAX_DATAGRAM + b'"}',
    ],
)
def test_garbage_is_refused(data):
    with pytest.raises(DtmfLogError):
        parse_dtmf_event(data)


@given(st.binary(max_size=600))
def test_no_bytes_raise_anything_else(data):
    with contextlib.suppress(DtmfLogError):
        parse_dtmf_event(data)


def _nested(children: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    lists = st.lists(children, max_size=4)
    return lists | st.dictionaries(st.text(max_size=10), children, max_size=4)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    _nested,
    max_leaves=20,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "callid": JSON,
        "source_tag": JSON,
        "type": st.sampled_from(["DTMF", "x"]) | JSON,
        "event": st.integers(-3, 20) | JSON,
        "duration": st.integers(-3, 2**33) | JSON,
        "volume": JSON,
        "tags": JSON,
    },
)


@given(FIELDS | JSON)
def test_no_json_raises_anything_else(body):
    try:
        event = parse_dtmf_event(json.dumps(body).encode())
    except DtmfLogError:
        return
    assert event.digit in "0123456789*#ABCD" and event.call_id and event.source_tag


# As rtpengine 10.5 sends it to the clients of its ng TCP port (--dtmf-log-ng-tcp).
NOTIFIED = (
    b"965fc07738919f20 d6:notify6:onDTMF4:datad4:tagsl4:tagA4:tagBe6:callid4:cid1"
    b"10:source_tag4:tagA4:type4:DTMF9:source_ip9:127.0.0.19:timestampi1796521271e"
    b"5:eventi10e8:durationi80e6:volumei10eee"
)
STAR = DtmfEvent("cid1", "tagA", "*", duration_ms=80, volume=10)


def test_a_notification_on_the_ng_stream_whole_or_byte_by_byte():
    assert NgNotifications().feed(NOTIFIED) == [STAR]
    stream = NgNotifications()
    events = [event for i in range(len(NOTIFIED)) for event in stream.feed(NOTIFIED[i : i + 1])]
    assert events == [STAR]
    assert NgNotifications().feed(NOTIFIED * 3) == [STAR] * 3


def test_other_notifications_are_counted_and_the_stream_goes_on():
    stream = NgNotifications()
    other = b"abc d6:notify7:onOther4:datad5:eventi10eee"
    bad_event = NOTIFIED.replace(b"eventi10e", b"eventi99e")
    assert stream.feed(other + b"c2 i5e" + bad_event + NOTIFIED) == [STAR]
    assert stream.ignored == 3


@pytest.mark.parametrize(
    "data",
    [
        b"x" * 100,  # no cookie
        b"cookie xyz",  # not bencode
        b"cookie d6:notify" + b"99999:" + b"a" * MAX_DATAGRAM,  # too long to wait for
    ],
)
def test_a_stream_that_is_not_ng_is_refused(data):
    with pytest.raises(DtmfLogError, match=r"cookie|bencode|too long"):
        NgNotifications().feed(data)


@given(st.lists(st.binary(max_size=80), max_size=8))
def test_no_stream_raises_anything_else(chunks):
    stream = NgNotifications()
    with contextlib.suppress(DtmfLogError):
        for chunk in [*chunks, NOTIFIED]:
            stream.feed(chunk)
