"""Usage records, usage triggers and the balance through the official twilio library."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.request_validator import RequestValidator

from control_api.sids import new_sid
from control_api.store import CallRecord
from tests.control_api.api.sms_server import SmsServer
from tests.interop.webhook_app import WebhookApp


@pytest.fixture(scope="module")
def sms(tmp_path_factory):
    with SmsServer(tmp_path_factory.mktemp("usage")) as server:
        yield server


@pytest.fixture(scope="module")
def app():
    with WebhookApp() as webhook_app:
        app_ = webhook_app
        app_.routes["/trigger"] = lambda r: (204, "text/plain", b"")
        yield app_


@pytest.fixture
def account(sms):
    return sms.new_account()


@pytest.fixture
def client(sms, account):
    return sms.client(account)


def _finished_call(sms, account, seconds: int, direction="outbound-api", to="+15550100000"):
    sid = new_sid("CA")
    record = CallRecord(
        sid=sid,
        account_sid=account.sid,
        to=to,
        from_="+14155550100",
        direction=direction,
        status="completed",
        duration=seconds,
    )
    sms.call(sms.store.calls.insert(record))
    sms.call(
        sms.billing.call_finished(
            sid=sid,
            account_sid=account.sid,
            direction=direction,
            to=to,
            from_="+14155550100",
            status="completed",
            duration_s=seconds,
        )
    )
    return sid


def _record(records, category):
    return next(r for r in records if r.category == category)


def test_calls_are_billed_per_started_minute(sms, client, account):
    sid = _finished_call(sms, account, 61)
    assert client.calls(sid).fetch().price == "-0.02600"  # 2 minutes at 0.013
    _finished_call(sms, account, 30, direction="inbound")
    _finished_call(sms, account, 0)  # never answered: free, not usage
    records = client.usage.records.list()
    calls = _record(records, "calls")
    assert (calls.count, calls.usage, calls.usage_unit) == ("2", "3", "minutes")
    assert calls.count_unit == "calls"
    assert Decimal(str(calls.price)) == Decimal("0.0345")
    outbound = _record(records, "calls-outbound")
    assert (outbound.count, outbound.usage) == ("1", "2")
    total = _record(records, "totalprice")
    assert Decimal(str(total.price)) == Decimal("0.0345")


def test_views_and_filters(sms, client, account):
    _finished_call(sms, account, 120)
    today = datetime.now(UTC).date()
    assert _record(client.usage.records.today.list(), "calls").usage == "2"
    assert _record(client.usage.records.this_month.list(), "calls").usage == "2"
    assert _record(client.usage.records.all_time.list(), "calls").usage == "2"
    assert _record(client.usage.records.yesterday.list(), "calls").usage == "0"
    assert _record(client.usage.records.monthly.list(), "calls").usage == "2"
    assert _record(client.usage.records.yearly.list(), "calls").usage == "2"
    daily = client.usage.records.daily.list(
        category="calls", start_date=today - timedelta(days=2), end_date=today
    )
    assert [(r.start_date, r.usage) for r in daily] == [
        (today, "2"),
        (today - timedelta(days=1), "0"),
        (today - timedelta(days=2), "0"),
    ]
    only = client.usage.records.list(category="calls-outbound")
    assert [r.category for r in only] == ["calls-outbound"]
    assert client.usage.records.last_month.list(category="calls")[0].usage == "0"
    links = _record(client.usage.records.list(), "calls").subresource_uris
    assert sorted(links) == [
        "all_time",
        "daily",
        "last_month",
        "monthly",
        "this_month",
        "today",
        "yearly",
        "yesterday",
    ]
    assert links["this_month"].endswith("/Usage/Records/ThisMonth.json?Category=calls")
    with pytest.raises(TwilioException) as error:
        client.usage.records.list(category="nonsense")
    assert "HTTP 400" in str(error.value)


def test_messages_are_billed_per_segment(sms, client, account):
    message = client.messages.create(to="+15550001111", from_="+14155550100", body="a" * 200)
    sms.wait_status(client, message.sid, "sent")
    sms_record = _record(client.usage.records.list(), "sms-outbound")
    assert (sms_record.count, sms_record.usage, sms_record.usage_unit) == ("1", "2", "segments")
    assert Decimal(str(sms_record.price)) == Decimal("0.0158")


def test_trigger_crud(client, app):
    trigger = client.usage.triggers.create(
        callback_url=app.url("/trigger"),
        trigger_value="100",
        usage_category="sms",
        friendly_name="lots",
        recurring="monthly",
        trigger_by="count",
    )
    assert trigger.sid.startswith("UT")
    assert (trigger.recurring, trigger.trigger_by, trigger.usage_category) == (
        "monthly",
        "count",
        "sms",
    )
    assert trigger.callback_method == "POST"
    assert trigger.date_fired is None
    assert trigger.usage_record_uri.endswith("/Usage/Records/ThisMonth.json?Category=sms")
    assert client.usage.triggers(trigger.sid).fetch().friendly_name == "lots"
    updated = client.usage.triggers(trigger.sid).update(
        friendly_name="renamed", callback_method="GET"
    )
    assert (updated.friendly_name, updated.callback_method) == ("renamed", "GET")
    assert [t.sid for t in client.usage.triggers.list(recurring="monthly")] == [trigger.sid]
    assert client.usage.triggers.list(trigger_by="price") == []
    assert client.usage.triggers(trigger.sid).delete() is True
    with pytest.raises(TwilioRestException) as error:
        client.usage.triggers(trigger.sid).fetch()
    assert error.value.status == 404
    with pytest.raises(TwilioRestException) as error:
        client.usage.triggers.create(
            callback_url=app.url("/t"), trigger_value="1", usage_category="bogus"
        )
    assert error.value.status == 400


def test_trigger_on_call_minutes_fires_once_per_period(sms, client, account, app):
    trigger = client.usage.triggers.create(
        callback_url=app.url("/trigger"),
        trigger_value="2",
        usage_category="calls",
        recurring="daily",
    )
    _finished_call(sms, account, 60)
    assert client.usage.triggers(trigger.sid).fetch().date_fired is None
    _finished_call(sms, account, 90)  # 1 + 2 minutes: past 2
    _finished_call(sms, account, 30)
    fired = [
        r
        for r in app.wait_for("/trigger", 1, timeout=30)
        if r.field("UsageTriggerSid") == trigger.sid
    ]
    assert len(fired) == 1
    fields = fired[0].form_dict
    assert fields["CurrentValue"] == "3" and fields["TriggerValue"] == "2"
    assert fields["UsageCategory"] == "calls" and fields["Recurring"] == "daily"
    assert fields["TriggerBy"] == "usage" and fields["AccountSid"] == account.sid
    assert fields["IdempotencyToken"].startswith(trigger.sid)
    assert "DateFired" in fields and fields["UsageRecordUri"].endswith("Today.json?Category=calls")
    assert RequestValidator(account.auth_token).validate(
        fired[0].url, fields, fired[0].headers["X-Twilio-Signature"]
    )
    fetched = client.usage.triggers(trigger.sid).fetch()
    assert fetched.date_fired is not None and fetched.current_value == "3"
    # still the same day: no second firing, however much more is used
    assert sms.call(sms.billing.check_triggers(account.sid)) == 0


def test_balance_is_decremented_and_refuses_when_spent(sms, client, account):
    assert client.api.v2010.account.balance.fetch().balance is None
    sms.call(sms.billing.billing.set_balance(account.sid, Decimal("0.03")))
    assert client.api.v2010.account.balance.fetch().balance == "0.03"
    _finished_call(sms, account, 60)  # 0.013
    balance = client.api.v2010.account.balance.fetch()
    assert (balance.balance, balance.currency) == ("0.02", "USD")
    _finished_call(sms, account, 120)  # 0.026: spent
    assert Decimal(client.api.v2010.account.balance.fetch().balance) < 0
    with pytest.raises(TwilioRestException) as error:
        client.messages.create(to="+15550001111", from_="+14155550100", body="x")
    assert (error.value.status, error.value.code) == (401, 20005)
    with pytest.raises(TwilioRestException) as error:
        client.calls.create(to="+15550001111", from_="+14155550100", url="http://x.example/t")
    assert (error.value.status, error.value.code) == (401, 20005)


def test_bad_usage_queries_are_400(sms, account):
    auth = (account.sid, account.auth_token)
    base = f"{sms.base_url}/2010-04-01/Accounts/{account.sid}/Usage"
    for query in (
        "Records/Daily.json?EndDate=9999-12-31",
        "Records.json?StartDate=yesterday",
        "Records/Daily.json?StartDate=2026-12-03&EndDate=2026-01-01",
        "Records/Daily.json?StartDate=1971-01-01",
    ):
        assert httpx.get(f"{base}/{query}", auth=auth).status_code == 400, query
    assert httpx.get(f"{base}/Records/Weekly.json", auth=auth).status_code == 404
    created = httpx.post(
        f"{base}/Triggers.json",
        auth=auth,
        data={
            "CallbackUrl": "http://x.example/t",
            "TriggerValue": "1" * 40,
            "UsageCategory": "sms",
        },
    )
    assert created.status_code == 400


def test_price_list_prefix(sms):
    from control_api.usage.pricing import PriceList, parse_price

    prices = PriceList(
        (parse_price("calls-outbound:+44=0.02"), parse_price("calls-outbound:+447=0.1"))
    )
    assert prices.unit_price("calls-outbound", "+4420") == Decimal("0.02")
    assert prices.unit_price("calls-outbound", "+447700") == Decimal("0.1")
    assert prices.unit_price("calls-outbound", "+1415") == Decimal("0.013")
    with pytest.raises(ValueError):
        parse_price("calls=1")
