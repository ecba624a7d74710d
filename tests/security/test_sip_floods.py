"""SIP floods from single loopback sources, against a real ``callswitch serve``.

REGISTER and INVITE floods from 127.0.0.2 and 127.0.0.3 at bounded rates are
refused (503 with Retry-After, then silence) while 127.0.0.1 still gets its
OPTIONS and ``/health`` answered and the node's RSS stays within bounds; with no
rate limit at all, 30,000 unauthenticated REGISTERs in 10 s are challenged
statelessly and cost no transaction memory (they used to cost +150-330 MB until
Timer J); and a burst of never-ACKed INVITEs from one source holds at most
``--max-calls-per-ip`` calls, so the RTP port range still has room for others.
"""

from __future__ import annotations

import threading

import pytest

from .node import health, refused_sources, rss_kb, still_serving
from .sipraw import Phone, flood, invite_bytes, register_bytes

pytestmark = pytest.mark.solo  # load-sensitive: run alone, after the parallel run

# What a flood may leave behind in resident memory (the interpreter's arenas grow a
# little under any load; transactions held until Timer J cost 150 MB and more).
RSS_BOUND_KB = 40_000


class Prober:
    """OPTIONS from 127.0.0.1 and GET /health while a flood runs: every one answered."""

    def __init__(self, server) -> None:
        self.server = server
        self.answered = 0
        self.failures: list[str] = []
        self._phone = Phone(server.sip_addr, "127.0.0.1")

    def __call__(self) -> None:
        try:
            assert self._phone.options().status == 200
            assert health(self.server) == 200
            self.answered += 1
        except (AssertionError, OSError) as exc:
            self.failures.append(repr(exc))

    def close(self) -> None:
        self._phone.close()


def test_register_and_invite_floods_are_refused_while_the_node_serves(server):
    before = rss_kb(server.pid)
    prober = Prober(server)
    results: dict[str, dict[int, int]] = {}

    def invites() -> None:
        results["invite"] = flood(
            server.sip_addr,
            "127.0.0.3",
            lambda local: invite_bytes(server.sip_addr, local, "+15550001111"),
            count=3000,
            rate=1000,
        )

    other = threading.Thread(target=invites)
    other.start()
    try:
        results["register"] = flood(
            server.sip_addr,
            "127.0.0.2",
            lambda local: register_bytes(server.sip_addr, local, "alice"),
            count=10_000,
            rate=2000,
            on_tick=prober,
        )
        other.join(60)
        prober()  # and afterwards
    finally:
        prober.close()
    registers, invites_ = results["register"], results["invite"]
    print(f"flood answers: REGISTER {registers}, INVITE {invites_}")
    # The burst is answered, then 503s, then silence: far fewer answers than requests.
    assert registers.get(503, 0) > 0 and invites_.get(503, 0) > 0, results
    assert sum(registers.values()) < 2_000, registers
    assert registers.get(401, 0) <= 100 + 20 * 8, registers
    assert {"127.0.0.2", "127.0.0.3"} <= refused_sources(server, "sip.rate")
    assert prober.answered >= 3 and not prober.failures, prober.failures
    grown = rss_kb(server.pid) - before
    print(f"REGISTER and INVITE floods: RSS +{grown} kB")
    assert grown < RSS_BOUND_KB, f"RSS grew {grown} kB"


@pytest.mark.callswitch(extra_args=("--sip-rate-limit", "0"))
def test_unauthenticated_registers_are_challenged_statelessly(server):
    before = rss_kb(server.pid)
    prober = Prober(server)
    try:
        statuses = flood(
            server.sip_addr,
            "127.0.0.2",
            lambda local: register_bytes(server.sip_addr, local, "alice"),
            count=30_000,
            rate=3000,
            on_tick=prober,
        )
    finally:
        prober.close()
    # Every answer is a challenge (some datagrams may be lost on a busy machine).
    assert set(statuses) == {401}, statuses
    assert statuses[401] >= 15_000, statuses
    assert not prober.failures, prober.failures
    grown = rss_kb(server.pid) - before
    print(f"30k unauthenticated REGISTERs: {statuses[401]} challenged, RSS +{grown} kB")
    assert grown < RSS_BOUND_KB, f"RSS grew {grown} kB"


@pytest.mark.callswitch(rtp_size=400)  # room for 200 calls: two sources' worth of 100
def test_a_never_acked_invite_burst_leaves_ports_for_other_callers(server):
    statuses = flood(
        server.sip_addr,
        "127.0.0.2",
        lambda local: invite_bytes(server.sip_addr, local, "tone"),
        count=600,
        rate=300,
    )
    print(f"never-ACKed INVITE burst answers: {statuses}")
    # Another caller still gets a call (an RTP port) while the attacker's are held.
    with Phone(server.sip_addr, "127.0.0.3") as caller:
        answer = caller.exchange(invite_bytes(server.sip_addr, caller.local, "echo"), timeout=10)
        assert answer.status == 200, (answer.status, answer.reason)
        assert b"m=audio" in answer.body
    assert statuses.get(503, 0) > 0, statuses
    assert "127.0.0.2" in refused_sources(server, "sip.rate") | refused_sources(
        server, "sip.calls_per_ip"
    )
    still_serving(server)
