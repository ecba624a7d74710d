"""Failover of a call we place (control_api/calls/failover.py, outbound_call.py): one
OutboundCall moving through its hops, driven with the sans-I/O user agent and fake
flows, one per hop."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from control_api.calls.failover import Attempt, Hop, fails_over, report_attempt, usable_hops
from control_api.calls.outbound_call import Destination, OutboundCall
from control_api.calls.trunk_health import TrunkHealth, TrunkPinger
from control_api.calls.trunks import parse_trunk
from sip.message import Request
from sip.rfc3263 import Target
from sip.ua import UserAgent
from tests.control_api.calls.test_call import media
from tests.sip.test_ua import Clock, FakeFlow
from tests.sip.test_uac import SDP, respond

TRUNK = parse_trunk("carrier=sip:carrier.example;prefix=+1")


class HopFlow(FakeFlow):
    """A fake flow that tells when something was sent on it."""

    def __init__(self, remote, sent: asyncio.Event) -> None:
        super().__init__(remote)
        self.sent_any = sent

    def send(self, data: bytes) -> None:
        super().send(data)
        self.sent_any.set()


class Flows(dict):
    """The fake flows by port; ``await flows.invite(port)`` is the INVITE sent there."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = asyncio.Event()

    def flow_for(self, transport, host, port):
        return self.setdefault(port, HopFlow((host, port), self.sent))

    async def invite(self, port: int) -> Request:
        for _ in range(100):  # bounded: each round waits for the next message sent
            flow = self.get(port)
            requests = [m for m in flow.messages() if isinstance(m, Request)] if flow else []
            if requests:
                return requests[0]
            self.sent.clear()
            await asyncio.wait_for(self.sent.wait(), 5)
        raise AssertionError(f"no INVITE to {port}")


async def answer(ua, flows: Flows, port: int, status: int, **more) -> None:
    """Answer the INVITE sent to ``port`` with ``status``."""
    invite = await flows.invite(port)
    respond(ua, flows[port], invite, status, **more)


def hops(*ports: int) -> tuple[Hop, ...]:
    return tuple(
        Hop("sip:+14155550100@carrier.example", "UDP", "192.0.2.1", port, f"h{port}", None, TRUNK)
        for port in ports
    )


@pytest.fixture
def network():
    flows = Flows()
    ua = UserAgent(host="127.0.0.1", port=5060, clock=Clock(), flow_for=flows.flow_for)
    settings = media()
    yield ua, flows, settings
    settings.clock.close()


def place(ua, settings, *ports: int) -> tuple[OutboundCall, list[Attempt]]:
    path = hops(*ports)
    first = ua.flow_for("UDP", "192.0.2.1", ports[0])
    destination = Destination(path[0].target, first, kind="trunk", trunk=TRUNK, hops=path)
    call = OutboundCall(ua, settings, destination, from_user="+15005550006", timeout=10)
    attempts: list[Attempt] = []
    call.on_attempt.append(attempts.append)
    return call, attempts


async def test_a_503_moves_the_call_to_the_next_hop_and_it_answers_there(network):
    ua, flows, settings = network
    call, attempts = place(ua, settings, 5071, 5072)
    connecting = asyncio.ensure_future(call.connect())
    await answer(ua, flows, 5071, 503)
    await answer(ua, flows, 5072, 200, body=SDP)
    assert await connecting is True
    assert call.status == "in-progress" and call.hop.port == 5072
    assert [(a.hop.port, a.status, a.moved_on) for a in attempts] == [
        (5071, 503, True),
        (5072, 200, False),
    ]
    call.hangup()
    assert call.status == "completed"


async def test_a_hop_our_socket_cannot_reach_is_passed_over(network):
    ua, flows, settings = network
    call, attempts = place(ua, settings, 5071, 5072)
    unreachable = flows.flow_for("UDP", "192.0.2.1", 5071)

    def refuse(data: bytes) -> None:
        raise ValueError("socket family mismatch")  # what uvloop says for IPv6 on IPv4

    unreachable.send = refuse
    connecting = asyncio.ensure_future(call.connect())
    await answer(ua, flows, 5072, 200, body=SDP)
    assert await connecting is True
    assert [(a.hop.port, a.status, a.moved_on) for a in attempts] == [
        (5071, 503, True),
        (5072, 200, False),
    ]
    call.hangup()


async def test_no_response_at_all_moves_on_after_a_few_seconds(network, monkeypatch):
    monkeypatch.setattr("control_api.calls.outbound_call.NO_RESPONSE_S", 0.05)
    ua, flows, settings = network
    call, attempts = place(ua, settings, 5071, 5072)
    connecting = asyncio.ensure_future(call.connect())
    await flows.invite(5071)  # and nothing comes back
    await answer(ua, flows, 5072, 200, body=SDP)
    assert await connecting is True
    assert [(a.status, a.moved_on) for a in attempts] == [(None, True), (200, False)]
    call.hangup()


async def test_a_ringing_hop_is_not_left_for_being_slow_to_answer(network, monkeypatch):
    monkeypatch.setattr("control_api.calls.outbound_call.NO_RESPONSE_S", 0.05)
    ua, flows, settings = network
    call, attempts = place(ua, settings, 5071, 5072)
    connecting = asyncio.ensure_future(call.connect())
    invite = await flows.invite(5071)
    respond(ua, flows[5071], invite, 180)
    await asyncio.wait_for(call.ringing.wait(), 5)
    await asyncio.sleep(0.2)  # well past NO_RESPONSE_S: it rings, so it stays
    respond(ua, flows[5071], invite, 200, body=SDP)
    assert await connecting is True and 5072 not in flows
    assert [(a.status, a.moved_on) for a in attempts] == [(200, False)]
    call.hangup()


@pytest.mark.parametrize(
    ("status", "expected"), [(486, "busy"), (404, "failed"), (603, "no-answer")]
)
async def test_other_final_answers_end_the_call_as_before(network, status, expected):
    ua, flows, settings = network
    call, attempts = place(ua, settings, 5071, 5072)
    connecting = asyncio.ensure_future(call.connect())
    await answer(ua, flows, 5071, status)
    assert await connecting is False
    assert call.status == expected and 5072 not in flows
    assert [(a.status, a.moved_on) for a in attempts] == [(status, False)]


async def test_every_hop_failing_fails_the_call_with_the_last_status(network):
    ua, flows, settings = network
    call, attempts = place(ua, settings, 5071, 5072, 5073)
    connecting = asyncio.ensure_future(call.connect())
    for port in (5071, 5072, 5073):
        await answer(ua, flows, port, 503)
    assert await connecting is False
    assert call.status == "failed" and call.sip_status == 503
    assert [a.moved_on for a in attempts] == [True, True, False]


async def test_a_cancel_from_above_stops_the_sequence(network, monkeypatch):
    monkeypatch.setattr("control_api.calls.outbound_call.NO_RESPONSE_S", 30)
    ua, flows, settings = network
    call, attempts = place(ua, settings, 5071, 5072)
    connecting = asyncio.ensure_future(call.connect())
    await flows.invite(5071)  # silent: we wait on it
    call.cancel()
    assert await asyncio.wait_for(connecting, 5) is False
    assert call.status == "canceled" and 5072 not in flows
    assert [(a.status, a.moved_on) for a in attempts] == [(487, False)]


async def test_a_cancel_while_a_hop_rings_cancels_it_and_tries_no_more(network):
    ua, flows, settings = network
    call, attempts = place(ua, settings, 5071, 5072)
    connecting = asyncio.ensure_future(call.connect())
    invite = await flows.invite(5071)
    respond(ua, flows[5071], invite, 180)
    await asyncio.wait_for(call.ringing.wait(), 5)
    call.cancel()
    assert any(isinstance(m, Request) and m.method == "CANCEL" for m in flows[5071].messages())
    respond(ua, flows[5071], invite, 487)
    assert await asyncio.wait_for(connecting, 5) is False
    assert call.status == "canceled" and 5072 not in flows
    assert [(a.status, a.moved_on) for a in attempts] == [(487, False)]


def test_which_answers_fail_over():
    assert fails_over(503) and fails_over(408) and fails_over(None)
    assert not any(fails_over(s) for s in (404, 480, 486, 487, 500, 600, 603))


def test_hosts_down_are_left_out_unless_all_are():
    health = TrunkHealth()
    path = hops(5071, 5072)
    for _ in range(2):
        health.failed("carrier", Target("UDP", "192.0.2.1", 5071, "h5071"))
    assert usable_hops(path, health.is_down) == [path[1]]
    for _ in range(2):
        health.failed("carrier", Target("UDP", "192.0.2.1", 5072, "h5072"))
    assert usable_hops(path, health.is_down) == list(path)


def test_health_changes_are_logged_once(caplog):
    health = TrunkHealth()
    target = Target("UDP", "192.0.2.1", 5071, "h5071")
    with caplog.at_level(logging.INFO, logger="callswitch.trunks"):
        health.failed("carrier", target)
        assert health.hosts[("carrier", "UDP", "192.0.2.1", 5071, "")].up  # once is not down
        for _ in range(3):
            health.failed("carrier", target)
        health.answered("carrier", target, 503)  # overloaded is not up
        health.answered("carrier", target, 404)  # any other answer is
        health.answered("carrier", target, 200)
    changes = [r.getMessage() for r in caplog.records]
    assert changes == ["trunk.host_down", "trunk.host_up"]


class FakeCallLog:
    def __init__(self) -> None:
        self.events: list[dict] = []
        self.problems: list[dict] = []

    def sip_attempt(self, **fields) -> None:
        self.events.append(fields)

    def problem(self, **fields) -> None:
        self.problems.append(fields)


def test_attempts_become_events_and_failovers_warnings():
    log = FakeCallLog()
    first, second = hops(5071, 5072)
    report_attempt(log, "AC1", "CA1", Attempt(first, 503, 0.1, moved_on=True))
    report_attempt(log, "AC1", "CA1", Attempt(second, 200, 0.2, moved_on=False))
    assert [(e["status"], dict(e["params"])["Hop"]) for e in log.events] == [
        (503, "udp:192.0.2.1:5071"),
        (200, "udp:192.0.2.1:5072"),
    ]
    [warning] = log.problems
    assert warning["level"] == 1 and "udp:192.0.2.1:5071" in warning["text"]


async def test_options_pings_mark_a_silent_host_down_and_an_answering_one_up(network, monkeypatch):
    monkeypatch.setattr("control_api.calls.trunk_health.PING_TIMEOUT_S", 0.05)
    ua, flows, _ = network
    trunk = parse_trunk("carrier=sip:192.0.2.1:5071;host=192.0.2.1:5072;ping=1")
    health = TrunkHealth()

    async def locate(trunk, host, port):
        return [Target("UDP", host, port, host)]

    pinger = TrunkPinger(ua, [trunk], health, locate)
    for round_ in range(2):
        pinging = asyncio.ensure_future(pinger.ping_once(trunk))
        options = await flows.invite(5072)  # the first request sent there: the OPTIONS
        assert options.method == "OPTIONS" and options.uri == "sip:192.0.2.1:5072"
        flows[5072].sent.clear()  # the next round finds its own OPTIONS first
        respond(ua, flows[5072], options, 200 if round_ else 404)  # any answer is alive
        await pinging
    states = {s.port: s.up for s in health.hosts.values()}
    assert states == {5071: False, 5072: True}
    assert [m.method for m in flows[5071].messages()] == ["OPTIONS", "OPTIONS"]


async def sent_options(flows: Flows, port: int, count: int) -> list[Request]:
    """The OPTIONS sent to ``port`` once there are ``count`` of them."""
    for _ in range(100):  # bounded: each round waits for the next message sent
        flow = flows.get(port)
        found = [m for m in flow.messages() if isinstance(m, Request)] if flow else []
        if len(found) >= count:
            return found
        flows.sent.clear()
        await asyncio.wait_for(flows.sent.wait(), 5)
    raise AssertionError(f"fewer than {count} OPTIONS to {port}")


PROXIED = parse_trunk(
    "carrier=sip:carrier.example;host=backup.example:5070;host=spare.example;"
    "outbound_proxy=sip:192.0.2.9:5062;prefix=+1;ping=1"
)


def proxied_hop(trunk, host: str, port: int | None) -> Hop:
    """The hop a call over ``trunk`` to ``host`` makes (control_api/calls/dialer.py)."""
    target = dataclasses.replace(trunk, host=host, port=port).request_uri("+14155550100")
    return Hop(target, "UDP", "192.0.2.9", 5062, "192.0.2.9", None, trunk, trunk.outbound_proxy)


async def test_a_proxied_trunk_is_pinged_through_its_proxy(network, monkeypatch):
    """With an outbound proxy each entry point is pinged as its calls go: to the proxy,
    a pre-loaded Route naming it, the entry point as Request-URI. The proxy's 503 or
    408 for an entry point (twice) marks that entry point down; any other answer
    keeps it up; calls skip the hops of the one that is down."""
    monkeypatch.setattr("control_api.calls.trunk_health.PING_TIMEOUT_S", 0.5)
    ua, flows, _ = network
    health = TrunkHealth()

    async def locate(trunk, host, port):
        raise AssertionError("a proxied trunk's entry points are not resolved by us")

    async def locate_proxy(trunk):
        return [Target("UDP", "192.0.2.9", 5062, "192.0.2.9")]

    pinger = TrunkPinger(ua, [PROXIED], health, locate, locate_proxy)
    answers = {
        "sip:carrier.example": [200, 404],  # the carrier, then the proxy's own "no route"
        "sip:backup.example:5070": [408, 503],  # the proxy could not reach it
        "sip:spare.example": [503, 200],  # once is not down
    }
    for round_ in range(2):
        pinging = asyncio.ensure_future(pinger.ping_once(PROXIED))
        sent = await sent_options(flows, 5062, 3 * (round_ + 1))
        for options in sent[3 * round_ :]:
            assert options.method == "OPTIONS"
            assert options.headers.get_all("Route") == ["<sip:192.0.2.9:5062;lr>"]
            respond(ua, flows[5062], options, answers[options.uri][round_])
        await pinging
    assert sorted(m.uri for m in sent) == sorted(2 * list(answers))
    assert set(flows) == {5062}  # nothing went to an entry point directly
    states = {s.entry: (s.up, s.host) for s in health.hosts.values()}
    assert states == {
        "carrier.example": (True, "192.0.2.9:5062"),
        "backup.example:5070": (False, "192.0.2.9:5062"),
        "spare.example": (True, "192.0.2.9:5062"),
    }
    path = [proxied_hop(PROXIED, h, p) for h, p in PROXIED.entry_points()]
    assert [health.is_down(hop) for hop in path] == [False, True, False]
    assert usable_hops(path, health.is_down) == [path[0], path[2]]


async def test_a_silent_proxy_marks_every_entry_point_behind_it_down(network, monkeypatch):
    monkeypatch.setattr("control_api.calls.trunk_health.PING_TIMEOUT_S", 0.05)
    ua, flows, _ = network
    health = TrunkHealth()

    async def locate(trunk, host, port):
        raise AssertionError("not resolved")

    async def locate_proxy(trunk):
        return [Target("UDP", "192.0.2.9", 5062, "192.0.2.9")]

    pinger = TrunkPinger(ua, [PROXIED], health, locate, locate_proxy)
    for _ in range(2):
        await pinger.ping_once(PROXIED)
    assert set(flows) == {5062}
    assert {s.entry: s.up for s in health.hosts.values()} == dict.fromkeys(
        ["carrier.example", "backup.example:5070", "spare.example"], False
    )
    path = [proxied_hop(PROXIED, h, p) for h, p in PROXIED.entry_points()]
    assert all(health.is_down(hop) for hop in path)
    assert usable_hops(path, health.is_down) == path  # all down: all tried, as before


def test_a_direct_hosts_408_is_an_answer_and_its_state_is_not_a_proxied_ones():
    """Without a proxy only 503 counts against a host (a 408 came from the host
    itself); a host's direct state and its state as an entry point behind a proxy are
    kept apart."""
    health = TrunkHealth()
    target = Target("UDP", "192.0.2.9", 5062, "proxy")
    for _ in range(2):
        health.answered("carrier", target, 408)
        health.answered("carrier", target, 408, entry="carrier.example")
    direct = Hop("sip:+1@192.0.2.9:5062", "UDP", "192.0.2.9", 5062, "proxy", None, TRUNK)
    assert not health.is_down(direct)
    assert health.is_down(dataclasses.replace(direct, target="sip:+1@carrier.example", proxy="p"))
