"""Per-source SIP limits: the pure pieces with a hand-driven clock, then the user agent
that consults them (fake flows, fake clock)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from sip.invite import InviteSession
from sip.message import Response
from sip.source_limits import (
    Admission,
    CallCounter,
    FailureLockout,
    RateLimiter,
    SourceGuard,
    TrustedNetworks,
    source_group,
)
from sip.ua import UserAgent
from tests.sip.test_ua import Clock, FakeFlow, in_dialog, invite

ALLOW, REFUSE, DROP = Admission.ALLOW, Admission.REFUSE, Admission.DROP


# -- the token bucket


def test_a_burst_passes_then_the_rate_is_refused():
    limiter = RateLimiter(rate=20, burst=100)
    assert [limiter.admit("a", 0.0) for _ in range(100)] == [ALLOW] * 100
    assert limiter.admit("a", 0.0) is REFUSE
    assert limiter.admit("b", 0.0) is ALLOW  # another source has its own bucket
    # 20 per second come back: 0.5 s later, 10 more.
    assert [limiter.admit("a", 0.5) for _ in range(10)] == [ALLOW] * 10
    assert limiter.admit("a", 0.5) is REFUSE
    assert limiter.retry_after() == 1


def test_a_source_that_keeps_flooding_is_dropped_silently():
    limiter = RateLimiter(rate=10, burst=50)
    now = 0.0
    for _ in range(50):
        assert limiter.admit("a", now) is ALLOW
    verdicts = [limiter.admit("a", now) for _ in range(51)]
    assert verdicts == [REFUSE] * 50 + [DROP]
    # Quiet for a while: the excess drains, tokens come back.
    now += 10
    assert limiter.admit("a", now) is ALLOW


def test_a_client_that_honours_the_limit_is_never_dropped():
    limiter = RateLimiter(rate=20, burst=100)
    now = 0.0
    verdicts = []
    for _ in range(2000):  # 25/s for 80 s: a little over the limit, steadily
        verdicts.append(limiter.admit("a", now))
        now += 0.04
    assert DROP not in verdicts[:200]
    allowed = verdicts.count(ALLOW)
    assert 100 + 20 * 79 <= allowed <= 100 + 20 * 80 + 1


def test_rate_zero_is_no_limit_and_the_table_is_bounded():
    assert all(RateLimiter(0, 0).admit("a", 0.0) is ALLOW for _ in range(1000))
    limiter = RateLimiter(rate=1, burst=1, max_sources=100)
    for n in range(1000):
        limiter.admit(f"10.0.{n // 256}.{n % 256}", float(n))
    assert len(limiter) == 100


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 5, allow_nan=False)),
        max_size=300,
    )
)
def test_no_source_ever_gets_more_than_burst_plus_rate_times_time(events):
    rate, burst = 4.0, 20.0
    limiter = RateLimiter(rate, burst)
    now = 0.0
    allowed = {"a": 0, "b": 0, "c": 0}
    for source, step in events:
        now += step
        if limiter.admit(source, now) is ALLOW:
            allowed[source] += 1
    for count in allowed.values():
        assert count <= burst + rate * now + 1e-9


# -- counters and lockouts


def test_call_counter_holds_up_to_the_limit_and_forgets_idle_sources():
    calls = CallCounter(2)
    assert calls.acquire("a") and calls.acquire("a") and not calls.acquire("a")
    assert calls.acquire("b")
    calls.release("a")
    assert calls.acquire("a") and calls.held("a") == 2
    for source in ("a", "a", "b"):
        calls.release(source)
    assert len(calls) == 0
    unlimited = CallCounter(0)
    assert all(unlimited.acquire("a") for _ in range(1000))


def test_failure_lockout_locks_after_max_failures_in_the_window():
    lockout = FailureLockout(3, 60.0)
    key = ("alice", "10.0.0.1")
    assert not lockout.failed(key, 0.0) and not lockout.failed(key, 1.0)
    assert lockout.failed(key, 2.0)  # the third locks
    assert lockout.locked(key, 2.0) and lockout.locked(key, 61.9)
    assert not lockout.locked(("alice", "10.0.0.2"), 2.0)
    assert not lockout.locked(key, 62.0)  # cooled down: a clean slate
    assert not lockout.failed(key, 63.0)


def test_failures_spread_wider_than_the_window_never_lock():
    lockout = FailureLockout(3, 60.0)
    key = ("alice", "10.0.0.1")
    for n in range(10):
        assert not lockout.failed(key, n * 40.0)
        if n % 2:
            lockout.succeeded(key)
    assert FailureLockout(0, 60.0).failed(key, 0.0) is False
    bounded = FailureLockout(3, 60.0, max_keys=10)
    for n in range(100):
        bounded.failed(("u", str(n)), 0.0)
    assert len(bounded) == 10


# -- trusted networks


def test_trusted_networks_match_v4_v6_and_mapped_sources():
    trusted = TrustedNetworks(["127.0.0.1/32", "10.1.0.0/16", "2001:db8::/32"])
    assert "127.0.0.1" in trusted and "127.0.0.2" not in trusted
    assert "10.1.200.3" in trusted and "::ffff:10.1.0.9" in trusted
    assert "2001:db8::5" in trusted and "[2001:db8::5]" in trusted
    assert "fe80::1%eth0" not in trusted
    for garbage in ("", "not an address", "10.1.0.0/16", "999.1.1.1", None):
        assert garbage not in trusted
    assert "127.0.0.1" not in TrustedNetworks() and not TrustedNetworks()


@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 32))
def test_trusted_membership_is_prefix_arithmetic(address, network, prefix):
    mask = ((1 << prefix) - 1) << (32 - prefix)
    cidr = f"{ipaddress.IPv4Address(network & mask)}/{prefix}"
    text = str(ipaddress.IPv4Address(address))
    expected = (address & mask) == (network & mask)
    assert (text in TrustedNetworks([cidr])) is expected
    assert (f"::ffff:{text}" in TrustedNetworks([cidr])) is expected


@given(st.text(max_size=60))
def test_any_source_text_is_answered_without_raising(text):
    assert isinstance(text in TrustedNetworks(["0.0.0.0/0", "::/0"]), bool)


# -- the user agent consulting them


def guarded_ua(clock, **options) -> UserAgent:
    refused: list[tuple[str, str]] = []
    ua = UserAgent(host="127.0.0.1", port=5060, clock=clock, flow_for=lambda *a: None)
    ua.guard = SourceGuard(
        refused=lambda reason, source, **f: refused.append((reason, source)), **options
    )
    ua.refused = refused  # for the tests to read
    return ua


def ringing(ua: UserAgent) -> list[InviteSession]:
    sessions: list[InviteSession] = []

    def on_invite(session: InviteSession) -> None:
        sessions.append(session)
        session.ring()

    ua.on_invite = on_invite
    return sessions


def finals(flow: FakeFlow) -> list[Response]:
    return [m for m in flow.messages() if isinstance(m, Response) and m.status >= 200]


def test_an_invite_flood_is_refused_with_retry_after_then_dropped():
    clock = Clock()
    ua = guarded_ua(clock, rate=2, burst=10)
    sessions = ringing(ua)
    attacker = FakeFlow(("192.0.2.66", 5060))
    for n in range(40):
        ua.receive(invite(branch=f"z9hG4bK-f{n}"), attacker)
    assert len(sessions) == 10
    refusals = finals(attacker)
    assert len(refusals) == 10  # REFUSE while the excess is under the burst, then DROP
    assert all(r.status == 503 and r.headers.get("Retry-After") == "1" for r in refusals)
    assert all(r.to_tag for r in refusals)
    assert len(ua.layer.server) == 10  # refusals cost no transaction
    assert ua.refused[0] == ("sip.rate", "192.0.2.66")
    # Someone else is not affected.
    caller = FakeFlow(("198.51.100.7", 5060))
    ua.receive(invite(branch="z9hG4bK-legit"), caller)
    assert len(sessions) == 11 and 180 in caller.statuses()


def test_retransmissions_and_in_dialog_requests_cost_no_tokens():
    clock = Clock()
    ua = guarded_ua(clock, rate=1, burst=1)
    sessions = ringing(ua)
    flow = FakeFlow()
    for _ in range(5):
        ua.receive(invite(), flow)  # one INVITE, retransmitted
    assert len(sessions) == 1 and 503 not in flow.statuses()
    sessions[0].answer(b"v=0\r\n")
    tag = flow.messages()[-1].to_tag
    ua.receive(in_dialog("ACK", tag, cseq=1, branch="z9hG4bK-ack"), flow)
    ua.receive(in_dialog("INVITE", tag, cseq=3, branch="z9hG4bK-re"), flow)  # a re-INVITE
    assert 503 not in flow.statuses()
    ua.receive(invite(branch="z9hG4bK-new"), flow)  # a new call: over the rate
    assert flow.statuses()[-1] == 503


def test_trusted_sources_are_exempt():
    clock = Clock()
    ua = guarded_ua(clock, rate=1, burst=1, max_calls=1, trusted=["10.0.0.0/8"])
    sessions = ringing(ua)
    flow = FakeFlow(("10.0.0.1", 5062))
    for n in range(20):
        ua.receive(invite(branch=f"z9hG4bK-t{n}"), flow)
    assert len(sessions) == 20 and 503 not in flow.statuses()
    assert len(ua.guard.calls) == 0 and len(ua.guard.transactions) == 0


def test_concurrent_calls_per_source_are_capped_and_freed_when_calls_end():
    clock = Clock()
    ua = guarded_ua(clock, rate=100, max_calls=3)
    sessions = ringing(ua)
    flow = FakeFlow(("192.0.2.1", 5060))
    for n in range(5):
        ua.receive(invite(branch=f"z9hG4bK-c{n}"), flow)
    assert len(sessions) == 3
    refused = finals(flow)
    assert [r.status for r in refused] == [503, 503]
    assert refused[0].headers.get("Retry-After") and ("sip.calls_per_ip", "192.0.2.1") in ua.refused
    other = FakeFlow(("192.0.2.2", 5060))
    ua.receive(invite(branch="z9hG4bK-o"), other)
    assert len(sessions) == 4
    sessions[0].reject(486)
    sessions[1].hangup()
    ua.receive(invite(branch="z9hG4bK-after"), flow)
    assert len(sessions) == 5 and ua.guard.calls.held("192.0.2.1") == 2


def test_server_transactions_per_source_are_capped():
    clock = Clock()
    ua = guarded_ua(clock, rate=100, max_transactions=50)
    flow = FakeFlow(("192.0.2.9", 5060))
    for n in range(200):
        options = (
            f"OPTIONS sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.9;branch=z9hG4bK-o{n}\r\n"
            f"From: <sip:x@192.0.2.9>;tag=x\r\nTo: <sip:127.0.0.1>\r\nCall-ID: o{n}\r\n"
            "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        ua.receive(options.encode(), flow)
    statuses = flow.statuses()
    assert statuses.count(200) == 50 and statuses.count(503) == 150
    assert len(ua.layer.server) == 50
    # Timer J ends them (32 s over UDP): the source has its share back.
    clock.now += 40
    ua.handle_timer(clock.now)
    assert len(ua.layer.server) == 0 and len(ua.guard.transactions) == 0


def test_an_ipv6_host_counts_as_its_slash_64():
    assert source_group("192.0.2.7") == "192.0.2.7"
    assert source_group("2001:db8:1:2::7") == source_group("2001:db8:1:2:ffff::1")
    assert source_group("2001:db8:1:2::7") == "2001:db8:1:2::/64"
    assert source_group("2001:db8:1:3::7") != source_group("2001:db8:1:2::7")
    assert source_group("::ffff:192.0.2.7") == "192.0.2.7"
    assert source_group("not-an-address:") == "not-an-address:"
    guard = SourceGuard(rate=0, max_calls=2)
    assert guard.acquire_call("2001:db8::1") and guard.acquire_call("2001:db8::2")
    assert not guard.acquire_call("2001:db8::3")  # another address of the same /64
    assert guard.acquire_call("2001:db8:0:1::1")  # the next /64 is another host
