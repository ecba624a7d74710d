"""The RFC 3263 locator over dnspython (control_api/sip_locator.py) against a local
dnslib server on loopback."""

from __future__ import annotations

import pytest

from control_api.sip_locator import SipLocator, parse_dns_server
from sip.rfc3263 import Target
from tests.interop.dns_server import LocalDns

ZONE = """
carrier.test. 60 IN NAPTR 10 10 "S" "SIP+D2U" "" _sip._udp.carrier.test.
carrier.test. 60 IN NAPTR 20 10 "S" "SIP+D2T" "" _sip._tcp.carrier.test.
_sip._udp.carrier.test. 60 IN SRV 10 0 5070 one.carrier.test.
_sip._udp.carrier.test. 60 IN SRV 20 0 5080 two.carrier.test.
_sip._tcp.carrier.test. 60 IN SRV 10 0 5090 one.carrier.test.
one.carrier.test. 60 IN A 127.0.0.21
two.carrier.test. 5 IN A 127.0.0.22
two.carrier.test. 5 IN AAAA ::1
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def dns():
    with LocalDns(ZONE) as server:
        yield server


async def test_naptr_srv_a_from_the_server_in_order(dns):
    locator = SipLocator(("127.0.0.1", dns.port), pick=lambda n: 0)
    targets = await locator.locate("carrier.test", None, None)
    assert targets == [
        Target("UDP", "127.0.0.21", 5070, "one.carrier.test"),
        Target("UDP", "127.0.0.22", 5080, "two.carrier.test"),
        Target("UDP", "::1", 5080, "two.carrier.test"),
        Target("TCP", "127.0.0.21", 5090, "one.carrier.test"),
    ]
    assert ("carrier.test", "NAPTR") in dns.queries


async def test_answers_are_kept_for_their_ttl(dns):
    clock = Clock()
    locator = SipLocator(("127.0.0.1", dns.port), pick=lambda n: 0, clock=clock)
    await locator.locate("carrier.test", None, None)
    asked = len(dns.queries)
    await locator.locate("carrier.test", None, None)
    assert len(dns.queries) == asked  # all cached
    clock.now += 10  # two.carrier.test's 5 s records expired, the 60 s ones did not
    await locator.locate("carrier.test", None, None)
    assert sorted(dns.queries[asked:]) == [("two.carrier.test", "A"), ("two.carrier.test", "AAAA")]


async def test_names_without_records_are_cached_and_fall_back(dns):
    clock = Clock()
    locator = SipLocator(("127.0.0.1", dns.port), pick=lambda n: 0, clock=clock)
    assert await locator.locate("nowhere.test", None, None) == []
    asked = len(dns.queries)
    assert await locator.addresses("nowhere.test") == []
    assert len(dns.queries) == asked
    assert await locator.addresses("one.carrier.test") == ["127.0.0.21"]


async def test_a_server_that_does_not_answer_means_no_records_after_one_wait():
    clock = Clock()
    # The discard port: nobody answers (or the port is refused: the same to us).
    locator = SipLocator(("127.0.0.1", 9), pick=lambda n: 0, clock=clock, lifetime=0.3)
    assert await locator.locate("carrier.test", None, None) == []
    assert await locator.addresses("one.carrier.test") == []
    assert locator.lookups >= 2


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("127.0.0.1", ("127.0.0.1", 53)),
        ("127.0.0.1:5353", ("127.0.0.1", 5353)),
        ("::1", ("::1", 53)),
        ("[::1]:5353", ("::1", 5353)),
    ],
)
def test_dns_server_setting(value, parsed):
    assert parse_dns_server(value) == parsed


@pytest.mark.parametrize("value", ["dns.example", "127.0.0.1:0", "[::1]x", "1.2.3.4:99999"])
def test_bad_dns_server_setting(value):
    with pytest.raises(ValueError):
        parse_dns_server(value)
