"""Trunk settings and prefix routing (control_api/calls/trunks.py)."""

from __future__ import annotations

import pytest

from control_api.calls.trunks import parse_trunk, select_trunk, select_trunks


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


def test_carrier_parameters_of_the_string_form():
    trunk = parse_trunk(
        "carrier=sips:user:pw@sip.example.net;host=sip2.example.net:5071;host=[::1];"
        "order=2;ping=30;register;register_expires=600;register_user=4420;auth_user=acct;"
        "outbound_proxy=sip:edge.example.net;did=X-Original-DID;country_code=44;"
        "national_prefix=0;pai"
    )
    assert trunk.entry_points() == (
        ("sip.example.net", None),
        ("sip2.example.net", 5071),
        ("[::1]", None),
    )
    assert (trunk.order, trunk.ping, trunk.register, trunk.register_expires) == (2, 30, True, 600)
    assert (trunk.aor_user, trunk.digest_user, trunk.outbound_proxy) == (
        "4420",
        "acct",
        "sip:edge.example.net",
    )
    assert (trunk.did, trunk.country_code, trunk.national_prefix, trunk.pai) == (
        "X-Original-DID",
        "44",
        "0",
        True,
    )
    assert trunk.srtp == "optional"  # TLS offers SRTP unless told otherwise


def test_defaults_and_the_table_form():
    plain = parse_trunk("p=sip:u:pw@10.0.0.1")
    assert (plain.register, plain.srtp, plain.did, plain.order, plain.ping) == (
        False,
        "off",
        "auto",
        0,
        0,
    )
    assert (plain.aor_user, plain.digest_user) == ("u", "u")
    table = parse_trunk(
        {
            "name": "t",
            "uri": "sip:u:pw@10.0.0.1;transport=tls",
            "hosts": ["10.0.0.2:5070"],
            "register": True,
            "srtp": "mandatory",
            "did": "TO",
        }
    )
    assert table.hosts == (("10.0.0.2", 5070),) and table.register
    assert (table.srtp, table.did, table.transport) == ("mandatory", "to", "tls")
    assert not parse_trunk("q=sip:h;register=no").register


@pytest.mark.parametrize(
    "text",
    [
        "x=sip:host;srtp=maybe",
        "x=sip:host;order=first",
        "x=sip:host;register_expires=0",
        "x=sip:host;ping=-5",
        "x=sip:host;host=bad host",
        "x=sip:host;outbound_proxy=http://proxy",
        "x=sip:host;outbound_proxy=sip:",
        "x=sip:host;outbound_proxy=sip:bad host",
        "x=sip:host;did=bad header",
        "x=sip:host;country_code=plus44",
    ],
)
def test_bad_carrier_parameters_are_refused(text):
    with pytest.raises(ValueError):
        parse_trunk(text)


def test_trunks_serving_a_number_in_the_order_to_try():
    backup = parse_trunk("backup=sip:10.0.0.9;prefix=+1;order=2")
    main = parse_trunk("main=sip:10.0.0.8;prefix=+1;order=1")
    catch_all = parse_trunk("any=sip:10.0.0.1")
    nyc = parse_trunk("nyc=sip:10.0.0.3;prefix=+1212")
    trunks = [backup, catch_all, main, nyc]
    assert select_trunks(trunks, "+12125550100") == [nyc, main, backup, catch_all]
    assert select_trunks(trunks, "+442071234567") == [catch_all]
    assert select_trunks([main], "+44207") == []
