"""Trunk settings and prefix routing (control_api/calls/trunks.py)."""

from __future__ import annotations

import pytest

from control_api.calls.trunks import parse_trunk, select_trunk


def test_string_form_carries_the_login_and_rules():
    trunk = parse_trunk(
        "carrier=sip:user:p%40ss@sip.example.net:5080;transport=tcp;prefix=+1;prefix=+44;"
        "caller_id=+15550100;strip_plus"
    )
    assert (trunk.name, trunk.host, trunk.port, trunk.transport) == (
        "carrier",
        "sip.example.net",
        5080,
        "tcp",
    )
    assert (trunk.username, trunk.password) == ("user", "p@ss")
    assert trunk.prefixes == ("+1", "+44") and trunk.caller_id == "+15550100"
    assert trunk.request_uri("+15551234567") == "sip:15551234567@sip.example.net:5080;transport=tcp"


def test_table_form_and_sips():
    trunk = parse_trunk({"name": "t", "uri": "sips:10.0.0.5", "prefixes": ["+33"]})
    assert trunk.transport == "tls" and trunk.host == "10.0.0.5" and trunk.port is None
    assert trunk.request_uri("+33123") == "sip:+33123@10.0.0.5;transport=tls"


@pytest.mark.parametrize(
    "text",
    [
        "no-equals",
        "x=http://host",
        "bad name=sip:host",
        "x=sip:host;transport=sctp",
        "x=sip:host;prefix=abc",
        "x=sip:host;color=blue",
        "x=sip:host:99999",
    ],
)
def test_bad_trunks_are_refused(text):
    with pytest.raises(ValueError):
        parse_trunk(text)


def test_longest_prefix_wins_and_a_default_catches_the_rest():
    default = parse_trunk("any=sip:10.0.0.1")
    us = parse_trunk("us=sip:10.0.0.2;prefix=+1")
    nyc = parse_trunk("nyc=sip:10.0.0.3;prefix=+1212")
    trunks = [default, us, nyc]
    assert select_trunk(trunks, "+12125550100") is nyc
    assert select_trunk(trunks, "+14155550100") is us
    assert select_trunk(trunks, "+442071234567") is default
    assert select_trunk([us, nyc], "+442071234567") is None
