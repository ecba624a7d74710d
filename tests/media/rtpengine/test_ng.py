"""media/rtpengine/ng.py: framing, matching replies, retransmission, giving up."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from media.rtpengine.ng import Completed, NgClient, Send, TimedOut, frame, parse


def client(**kwargs) -> NgClient:
    counter = itertools.count(1)
    return NgClient(lambda: f"c{next(counter)}", **kwargs)


def test_frame_and_parse_follow_the_documentation():
    assert frame("5323_1", {"command": "ping"}) == b"5323_1 d7:command4:pinge"
    assert parse(b"5323_1 d6:result4:ponge") == ("5323_1", {"result": "pong"})


def test_a_reply_completes_its_request_once():
    ng = client()
    _cookie, send = ng.request({"command": "ping"}, now=10.0)
    assert send == Send(b"c1 d7:command4:pinge")
    reply = b"c1 d6:result4:ponge"
    assert ng.on_datagram(reply, now=10.2) == Completed("c1", {"result": "pong"})
    assert ng.on_datagram(reply, now=10.3) is None  # a duplicate: nothing pending
    assert ng.next_deadline() is None
    assert ng.stats.replies == 1 and ng.stats.malformed == 1
    assert ng.stats.latency_sum == pytest.approx(0.2)


def test_unanswered_requests_are_resent_then_time_out():
    ng = client(interval=0.5, attempts=3)
    _, send = ng.request({"command": "query", "call-id": "x"}, now=0.0)
    assert ng.next_deadline() == 0.5
    assert ng.on_timer(0.4) == []
    assert ng.on_timer(0.5) == [send]
    assert ng.on_timer(1.0) == [send]
    assert ng.on_timer(1.5) == [TimedOut("c1")]
    assert ng.next_deadline() is None
    assert (ng.stats.retransmissions, ng.stats.timeouts) == (2, 1)


def test_a_reply_to_a_retransmission_still_completes():
    ng = client(interval=0.5, attempts=3)
    ng.request({"command": "ping"}, now=0.0)
    ng.on_timer(0.5)
    assert isinstance(ng.on_datagram(b"c1 d6:result4:ponge", now=0.7), Completed)
    assert ng.on_timer(5.0) == []


def test_requests_keep_their_own_timers():
    ng = client(interval=1.0, attempts=2)
    ng.request({"command": "ping"}, now=0.0)
    ng.request({"command": "ping"}, now=0.5)
    assert ng.on_datagram(b"c1 d6:result4:ponge", now=0.6) is not None
    assert ng.next_deadline() == 1.5
    assert ng.on_timer(2.5) == [Send(b"c2 d7:command4:pinge")]
    assert ng.on_timer(3.5) == [TimedOut("c2")]


def test_fail_all_and_cancel_forget_pending_requests():
    ng = client()
    ng.request({"command": "ping"}, now=0.0)
    ng.request({"command": "ping"}, now=0.0)
    ng.cancel("c1")
    assert ng.fail_all() == [TimedOut("c2")]
    assert ng.on_timer(100.0) == []


def test_a_request_needs_a_command_and_a_cookie_without_spaces():
    with pytest.raises(ValueError, match="command"):
        client().request({"call-id": "x"}, now=0.0)
    with pytest.raises(ValueError, match="cookie"):
        frame("a b", {"command": "ping"})


@given(st.binary(max_size=120))
def test_any_datagram_is_dropped_or_matched_never_raised(data):
    ng = client()
    ng.request({"command": "ping"}, now=0.0)
    result = ng.on_datagram(data, now=0.1)
    assert result is None or result.cookie == "c1"
