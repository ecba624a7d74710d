"""Peer address policy: what the relay refuses by default and what opens it."""

from __future__ import annotations

import pytest

from turn.policy import PeerPolicy


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.1.1",
        "100.64.0.1",
        "224.0.0.251",
        "255.255.255.255",
        "0.0.0.0",
        "::1",
        "::",
        "fe80::1",
        "fd00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "not an address",
    ],
)
def test_internal_ranges_are_refused_by_default(host):
    assert not PeerPolicy().permits(host)


@pytest.mark.parametrize("host", ["8.8.8.8", "198.51.100.7", "2001:4860::8888"])
def test_public_peers_are_permitted(host):
    assert PeerPolicy().permits(host)


def test_the_servers_own_addresses_are_refused():
    policy = PeerPolicy(own_addresses={"203.0.113.10"})
    assert not policy.permits("203.0.113.10")
    assert policy.permits("203.0.113.11")


def test_an_allowed_range_opens_and_a_denied_one_closes():
    policy = PeerPolicy(allow=["127.0.0.0/8", "10.5.0.0/16"], deny=["8.8.8.0/24"])
    assert policy.permits("127.0.0.1") and policy.permits("10.5.1.1")
    assert not policy.permits("10.6.1.1")
    assert not policy.permits("8.8.8.8")
    assert policy.permits("8.8.4.4")
