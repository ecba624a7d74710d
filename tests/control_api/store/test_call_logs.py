"""Call logs in the store, on each backend: notifications and events, capped per call."""

from __future__ import annotations

from datetime import timedelta

from control_api.sids import new_sid, utcnow
from control_api.store import CallEvent, NotificationRecord, Store


def notification(account_sid: str, call_sid: str | None, **fields) -> NotificationRecord:
    fields.setdefault("message_date", utcnow())
    return NotificationRecord(
        sid=new_sid("NO"),
        account_sid=account_sid,
        call_sid=call_sid,
        log=fields.pop("log", 0),
        error_code=fields.pop("error_code", "11200"),
        message_text=fields.pop("message_text", "Msg=HTTP+500"),
        **fields,
    )


def event(account_sid: str, call_sid: str, n: int) -> CallEvent:
    return CallEvent(
        call_sid=call_sid,
        account_sid=account_sid,
        request_method="POST",
        request_url=f"https://app.example/{n}",
        request_parameters=[["CallSid", call_sid], ["Digits", str(n)]],
        response_code=200,
        request_duration=12,
        content_type="text/xml",
        response_body="<Response/>",
        error=None,
        date_created=utcnow() + timedelta(milliseconds=n),
    )


async def test_notifications_are_kept_up_to_the_cap_of_each_call(store: Store, account):
    call, other = new_sid("CA"), new_sid("CA")
    first = [notification(account.sid, call) for _ in range(3)]
    assert await store.notifications.add(first, per_call=4) == 3
    more = [notification(account.sid, call) for _ in range(3)] + [notification(account.sid, other)]
    assert await store.notifications.add(more, per_call=4) == 2  # one more of call, other's
    assert len(await store.notifications.page(account.sid, call_sid=call)) == 4
    assert len(await store.notifications.page(account.sid, call_sid=other)) == 1
    fetched = await store.notifications.get(account.sid, first[0].sid)
    assert fetched is not None and fetched.error_code == "11200" and fetched.date_created


async def test_notifications_list_newest_first_with_log_and_date_filters(store: Store, account):
    call = new_sid("CA")
    now = utcnow()
    old = notification(account.sid, call, message_date=now - timedelta(days=2))
    warning = notification(account.sid, call, log=1, error_code="12200", message_date=now)
    await store.notifications.add([old, warning], per_call=10)
    assert [n.sid for n in await store.notifications.page(account.sid)] == [
        warning.sid,
        old.sid,
    ]
    assert [n.sid for n in await store.notifications.page(account.sid, log=1)] == [warning.sid]
    recent = await store.notifications.page(account.sid, message_date_after=now - timedelta(days=1))
    assert [n.sid for n in recent] == [warning.sid]
    other = await store.accounts.create("other")
    assert await store.notifications.page(other.sid) == []
    assert await store.notifications.get(other.sid, old.sid) is None


async def test_events_list_in_order_and_capped(store: Store, account):
    call = new_sid("CA")
    assert await store.call_events.add([event(account.sid, call, n) for n in range(5)], per_call=3)
    assert await store.call_events.count(call) == 3
    listed = await store.call_events.page(account.sid, call)
    assert [e.request_url for e in listed] == [f"https://app.example/{n}" for n in range(3)]
    assert listed[0].request_parameters == [["CallSid", call], ["Digits", "0"]]
    assert await store.call_events.page(account.sid, new_sid("CA")) == []
