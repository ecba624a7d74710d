"""The --smpp and --price settings: parsing and the three sources."""

from __future__ import annotations

from decimal import Decimal

import pytest

from callswitch.config import ConfigError, load_settings
from control_api.sms.smpp_carrier import parse_smpp
from control_api.usage.pricing import billable_minutes, call_category, parse_price


def test_parse_smpp():
    smsc = parse_smpp(
        "gw=smpp://esme:s%3Bcret@smsc.example:2775;system_type=cs;window=20;prefix=+1"
    )
    assert (smsc.name, smsc.host, smsc.port) == ("gw", "smsc.example", 2775)
    assert (smsc.system_id, smsc.password, smsc.system_type) == ("esme", "s;cret", "cs")
    assert (smsc.window, smsc.prefixes) == (20, ("+1",))
    for bad in (
        "smpp://a:b@h:1",
        "gw=http://a:b@h:1",
        "gw=smpp://h:1",
        "gw=smpp://a:b@h",
        "gw=smpp://a:b@h:1;window=0",
        "gw=smpp://a:b@h:1;colour=red",
    ):
        with pytest.raises(ValueError):
            parse_smpp(bad)


def test_smpp_and_prices_from_flags_env_and_file(tmp_path):
    settings = load_settings(
        {"smpp": ["a=smpp://x:y@127.0.0.1:2775"], "price": ["sms-outbound=0.01"]}, environ={}
    )
    assert [s.name for s in settings.smpp] == ["a"]
    assert settings.price[0].amount == Decimal("0.01")
    settings = load_settings(
        {},
        environ={
            "CALLSWITCH_SMPP": "b=smpp://x:y@127.0.0.1:2775;window=5",
            "CALLSWITCH_PRICE": "calls-outbound=0.02,calls-outbound:+44=0.03",
            "CALLSWITCH_BILLING_WEBHOOK": "https://billing.example/events",
        },
    )
    assert settings.smpp[0].window == 5 and len(settings.price) == 2
    assert settings.billing_webhook == "https://billing.example/events"
    config = tmp_path / "callswitch.toml"
    config.write_text('smpp = ["c=smpp://x:y@127.0.0.1:2775"]\nprice = ["sms-inbound=0"]\n')
    settings = load_settings({"config": str(config)}, environ={})
    assert settings.smpp[0].name == "c" and settings.price[0].amount == 0
    with pytest.raises(ConfigError):
        load_settings({"smpp": ["a=smpp://x:y@h:1", "a=smpp://x:y@h:2"]}, environ={})
    with pytest.raises(ConfigError):
        load_settings({}, environ={"CALLSWITCH_BILLING_WEBHOOK": "ftp://x"})


def test_started_minutes_and_categories():
    assert [billable_minutes(s) for s in (0, 1, 60, 61, 120, 121)] == [0, 1, 1, 2, 2, 3]
    assert call_category("inbound", "+1") == "calls-inbound"
    assert call_category("inbound", "+1", "+44") == "calls-inbound"
    assert call_category("inbound", "alice", "client:alice") == "calls-client"
    assert call_category("outbound-api", "client:alice") == "calls-client"
    assert call_category("outbound-dial", "sip:bob@example.com") == "calls-sip"
    assert call_category("outbound-api", "+44") == "calls-outbound"
    with pytest.raises(ValueError):
        parse_price("sms-outbound=abc")
