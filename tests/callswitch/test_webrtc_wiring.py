"""The node tells browser tabs of its TURN relay with credentials the relay accepts."""

from __future__ import annotations

import time

from callswitch.webrtc import turn_ice_servers
from control_api.api.tokens import IceServers
from turn.auth import rest_credentials

ACCOUNT = "AC" + "c" * 32


def test_browsers_get_the_relays_urls_with_rest_credentials_for_their_account():
    relay = IceServers("shared-secret", "203.0.113.5", 3478, 5349)
    servers = turn_ice_servers(relay, ttl=600)(ACCOUNT)
    assert [s.urls for s in servers] == [
        "stun:203.0.113.5:3478",
        "turn:203.0.113.5:3478?transport=udp",
        "turn:203.0.113.5:3478?transport=tcp",
        "turns:203.0.113.5:5349?transport=tcp",
    ]
    turn = servers[1]
    expiry, _, user = turn.username.partition(":")
    assert user == ACCOUNT
    assert time.time() + 590 <= int(expiry) <= time.time() + 610
    # The relay's own check (coturn's use-auth-secret scheme) accepts them.
    assert rest_credentials("shared-secret", ACCOUNT, int(expiry)) == (
        turn.username,
        turn.credential,
    )
    assert servers[0].username is None  # STUN needs none


def test_no_relay_no_extra_servers():
    assert turn_ice_servers(None) is None
