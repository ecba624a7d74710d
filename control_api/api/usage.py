"""Usage records and usage triggers (reference §8).

``GET Usage/Records.json`` and its views ``Daily``, ``Monthly``, ``Yearly``,
``AllTime``, ``Today``, ``Yesterday``, ``ThisMonth``, ``LastMonth`` (filters
``Category``, ``StartDate``, ``EndDate``) sum the priced usage of the account
(``usage_items``) into Twilio's categories. ``Usage/Triggers.json`` is plain CRUD;
the billing service fires them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.filters import Filter, equal
from control_api.api.paging import PageRequest, page_body
from control_api.api.params import (
    Parser,
    form_params,
    method_parser,
    parse_choice,
    parse_fields,
    parse_friendly_name,
    parse_method,
    parse_url,
    query_params,
    snake_case,
)
from control_api.api.resource import Resource, found, stored_dates
from control_api.errors import INVALID_PARAMETER, ApiError
from control_api.sids import new_sid, rfc2822
from control_api.store import BillingStore, UsageTriggerRecord
from control_api.usage.billing import trigger_record_uri
from control_api.usage.records import CATEGORIES, Period, category_total, periods, view_range

__all__ = ["router"]

router = APIRouter()

RECORDS = "/2010-04-01/Accounts/{account_sid}/Usage/Records.json"
VIEW = "/2010-04-01/Accounts/{account_sid}/Usage/Records/{view}.json"
TRIGGERS = "/2010-04-01/Accounts/{account_sid}/Usage/Triggers.json"
TRIGGER = "/2010-04-01/Accounts/{account_sid}/Usage/Triggers/{sid}.json"

VIEWS = (
    "Daily",
    "Monthly",
    "Yearly",
    "AllTime",
    "Today",
    "Yesterday",
    "ThisMonth",
    "LastMonth",
)
RECURRING = ("daily", "monthly", "yearly", "alltime")
TRIGGER_BY = ("usage", "count", "price")
TRIGGER_URL_INVALID = 21402  # not an absolute http(s) URL, as for numbers' URLs
MAX_PERIODS = 4000


def _billing(request: Request):
    billing = getattr(request.app.state, "billing", None)
    if billing is None:
        raise ApiError(501, INVALID_PARAMETER, "Usage is not recorded on this node")
    return billing


def _date(name: str, value: str | None) -> date | None:
    if not value:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ApiError.bad_parameter(f"{name} must be a date (YYYY-MM-DD)") from None
    if not 1970 <= day.year <= 9000:
        raise ApiError.bad_parameter(f"{name} is out of range")
    return day


def _record_json(
    account_sid: str, category, span: Period, totals, view: str | None, as_of: str
) -> dict:
    count, usage, price = totals
    base = account_uri(account_sid) + "/Usage/Records"
    query = f"?Category={category.name}&StartDate={span.start}&EndDate={span.end}"
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "as_of": as_of,
        "category": category.name,
        "count": str(count),
        "count_unit": category.count_unit,
        "description": category.description,
        "end_date": span.end.isoformat(),
        "price": f"{price:.5f}",
        "price_unit": "usd",
        "start_date": span.start.isoformat(),
        "subresource_uris": {
            snake_case(v): f"{base}/{v}.json?Category={category.name}" for v in VIEWS
        },
        "uri": f"{base}{'/' + view if view else ''}.json{query}",
        "usage": _usage_text(usage, category.usage_unit),
        "usage_unit": category.usage_unit,
    }


def _usage_text(usage: Decimal, unit: str) -> str:
    if unit == "usd":
        return f"{usage:.5f}"
    return str(int(usage))


async def _records(request: Request, account, view: str | None) -> Response:
    params = query_params(request)
    page = PageRequest.from_params(params)
    billing = _billing(request)
    wanted = params.get("Category") or None
    if wanted is not None and wanted not in CATEGORIES:
        raise ApiError.bad_parameter(f"Category {wanted[:64]} is not a usage category")
    now = datetime.now(UTC)
    first = await billing.billing.first_usage_at(account.sid)
    span = view_range(view, now.date(), first.date() if first else None)
    start = _date("StartDate", params.get("StartDate"))
    end = _date("EndDate", params.get("EndDate"))
    # The fixed views (Today, ThisMonth...) keep their own range, as Twilio's do.
    if view not in ("Today", "Yesterday", "ThisMonth", "LastMonth"):
        span = Period(start or span.start, end or span.end)
    if span.end < span.start:
        raise ApiError.bad_parameter("EndDate is before StartDate")
    cut = periods(view, span)
    if len(cut) > MAX_PERIODS:
        raise ApiError.bad_parameter("The date range has too many periods")
    categories = [CATEGORIES[wanted]] if wanted else list(CATEGORIES.values())
    as_of = now.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    # Only the periods this page shows are summed.
    first_index = page.offset // len(categories)
    last_index = (page.offset + page.fetch_limit) // len(categories) + 1
    rows: list[dict] = []
    for index, period in enumerate(cut[first_index:last_index], start=first_index):
        sums = await billing.billing.usage_sums(account.sid, period.start_at, period.end_before)
        for position, category in enumerate(categories):
            if index * len(categories) + position < page.offset:
                continue
            totals = category_total(category, sums)
            rows.append(_record_json(account.sid, category, period, totals, view, as_of))
    return JSONResponse(page_body(request, params, "usage_records", rows[: page.fetch_limit], page))


@router.get(RECORDS)
async def list_records(request: Request, account: PathAccount) -> Response:
    return await _records(request, account, None)


@router.get(VIEW)
async def list_view(request: Request, view: str, account: PathAccount) -> Response:
    if view not in VIEWS:
        raise ApiError.not_found(request.url.path)
    return await _records(request, account, view)


# Triggers


def trigger_json(trigger: UsageTriggerRecord) -> dict:
    created, updated = stored_dates(trigger)
    return {
        "account_sid": trigger.account_sid,
        "api_version": API_VERSION,
        "callback_method": trigger.callback_method,
        "callback_url": trigger.callback_url,
        "current_value": trigger.current_value,
        "date_created": created,
        "date_fired": rfc2822(trigger.date_fired) if trigger.date_fired else None,
        "date_updated": updated,
        "friendly_name": trigger.friendly_name,
        "recurring": trigger.recurring,
        "sid": trigger.sid,
        "trigger_by": trigger.trigger_by,
        "trigger_value": trigger.trigger_value,
        "uri": f"{account_uri(trigger.account_sid)}/Usage/Triggers/{trigger.sid}.json",
        "usage_category": trigger.usage_category,
        "usage_record_uri": trigger_record_uri(trigger),
    }


def _callback_url(name: str, value: str) -> str:
    url = parse_url(name, value, TRIGGER_URL_INVALID)
    if url is None:
        raise ApiError.bad_parameter(f"{name} is required", TRIGGER_URL_INVALID)
    return url


# What ``POST Triggers/{Sid}.json`` may change: parameter -> (field, parser).
UPDATABLE: dict[str, tuple[str, Parser]] = {
    "CallbackUrl": ("callback_url", _callback_url),
    "CallbackMethod": ("callback_method", method_parser(INVALID_PARAMETER)),
    "FriendlyName": ("friendly_name", parse_friendly_name),
}


@router.post(TRIGGERS)
async def create_trigger(request: Request, account: PathAccount) -> Response:
    params = await form_params(request)
    billing = _billing(request)
    callback_url = _callback_url("CallbackUrl", params.get("CallbackUrl", ""))
    value = params.get("TriggerValue", "")
    if len(value) > 32:
        raise ApiError.bad_parameter("TriggerValue must have at most 32 characters")
    try:
        amount = Decimal(value)
        if not amount.is_finite() or amount < 0:
            raise ValueError
    except (ArithmeticError, ValueError):
        raise ApiError.bad_parameter("TriggerValue must be a number of at least 0") from None
    category = params.get("UsageCategory", "")
    if category not in CATEGORIES:
        raise ApiError.bad_parameter("UsageCategory is not a usage category")
    recurring = parse_choice("Recurring", params.get("Recurring"), RECURRING)
    trigger_by = parse_choice("TriggerBy", params.get("TriggerBy"), TRIGGER_BY) or "usage"
    name = params.get("FriendlyName")
    trigger = UsageTriggerRecord(
        sid=new_sid("UT"),
        account_sid=account.sid,
        callback_url=callback_url,
        callback_method=parse_method(
            "CallbackMethod", params.get("CallbackMethod", ""), INVALID_PARAMETER
        ),
        trigger_value=value,
        usage_category=category,
        friendly_name=None if name is None else parse_friendly_name("FriendlyName", name),
        recurring=recurring,
        trigger_by=trigger_by,
    )
    await billing.billing.insert_trigger(trigger)
    # Usage that already reaches the value fires it at once, as on Twilio.
    await billing.check_triggers(account.sid)
    trigger = await billing.billing.get_trigger(account.sid, trigger.sid) or trigger
    return JSONResponse(trigger_json(trigger), status_code=201)


# The list's query parameter -> (the store's filter, parser).
TRIGGER_FILTERS: dict[str, Filter] = {
    "Recurring": equal("recurring"),
    "TriggerBy": equal("trigger_by"),
    "UsageCategory": equal("usage_category"),
}


@dataclass(frozen=True, slots=True)
class _Triggers:
    """The billing store's usage triggers, as a ``Resource`` reads its rows."""

    billing: BillingStore

    async def get(self, account_sid: str, sid: str) -> UsageTriggerRecord | None:
        return await self.billing.get_trigger(account_sid, sid)

    async def delete(self, account_sid: str, sid: str) -> bool:
        return await self.billing.delete_trigger(account_sid, sid)

    async def page(self, account_sid: str, **query: Any) -> list[UsageTriggerRecord]:
        return await self.billing.list_triggers(account_sid, **query)


USAGE_TRIGGERS = Resource(
    TRIGGER,
    ("UT",),
    lambda r: _Triggers(_billing(r).billing),
    trigger_json,
    TRIGGER_FILTERS,
    key="usage_triggers",
)
USAGE_TRIGGERS.add_routes(router)


@router.post(TRIGGER)
async def update_trigger(request: Request, sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    await USAGE_TRIGGERS.existing(request, account.sid, sid)
    values = parse_fields(params, UPDATABLE)
    trigger = await _billing(request).billing.update_trigger(account.sid, sid, **values)
    return JSONResponse(trigger_json(found(request, trigger)))  # None: deleted meanwhile
