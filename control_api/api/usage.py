"""Usage records and usage triggers (reference §8).

``GET Usage/Records.json`` and its views ``Daily``, ``Monthly``, ``Yearly``,
``AllTime``, ``Today``, ``Yesterday``, ``ThisMonth``, ``LastMonth`` (filters
``Category``, ``StartDate``, ``EndDate``) sum the priced usage of the account
(``usage_items``) into Twilio's categories. ``Usage/Triggers.json`` is plain CRUD;
the billing service fires them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.paging import PageRequest, page_body
from control_api.api.params import form_params, parse_method, parse_url, query_params
from control_api.errors import INVALID_FRIENDLY_NAME, INVALID_PARAMETER, ApiError
from control_api.sids import is_sid, new_sid, rfc2822
from control_api.store import UsageTriggerRecord
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
        "subresource_uris": {_snake(v): f"{base}/{v}.json?Category={category.name}" for v in VIEWS},
        "uri": f"{base}{'/' + view if view else ''}.json{query}",
        "usage": _usage_text(usage, category.usage_unit),
        "usage_unit": category.usage_unit,
    }


def _snake(view: str) -> str:
    """``ThisMonth`` -> ``this_month``: the view's key in ``subresource_uris``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", view).lower()


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
    created, updated = trigger.date_created, trigger.date_updated
    assert created is not None and updated is not None, "a stored trigger is dated"
    return {
        "account_sid": trigger.account_sid,
        "api_version": API_VERSION,
        "callback_method": trigger.callback_method,
        "callback_url": trigger.callback_url,
        "current_value": trigger.current_value,
        "date_created": rfc2822(created),
        "date_fired": rfc2822(trigger.date_fired) if trigger.date_fired else None,
        "date_updated": rfc2822(updated),
        "friendly_name": trigger.friendly_name,
        "recurring": trigger.recurring,
        "sid": trigger.sid,
        "trigger_by": trigger.trigger_by,
        "trigger_value": trigger.trigger_value,
        "uri": f"{account_uri(trigger.account_sid)}/Usage/Triggers/{trigger.sid}.json",
        "usage_category": trigger.usage_category,
        "usage_record_uri": trigger_record_uri(trigger),
    }


def _friendly_name(value: str | None) -> str | None:
    if value is None:
        return None
    if len(value) > 64:
        raise ApiError.bad_parameter(
            "FriendlyName must have at most 64 characters", INVALID_FRIENDLY_NAME
        )
    return value


def _callback_url(value: str) -> str:
    url = parse_url("CallbackUrl", value, TRIGGER_URL_INVALID)
    if url is None:
        raise ApiError.bad_parameter("CallbackUrl is required", TRIGGER_URL_INVALID)
    return url


@router.post(TRIGGERS)
async def create_trigger(request: Request, account: PathAccount) -> Response:
    params = await form_params(request)
    billing = _billing(request)
    callback_url = _callback_url(params.get("CallbackUrl", ""))
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
    recurring = params.get("Recurring") or None
    if recurring is not None and recurring not in RECURRING:
        raise ApiError.bad_parameter(f"Recurring must be one of {', '.join(RECURRING)}")
    trigger_by = params.get("TriggerBy") or "usage"
    if trigger_by not in TRIGGER_BY:
        raise ApiError.bad_parameter(f"TriggerBy must be one of {', '.join(TRIGGER_BY)}")
    trigger = UsageTriggerRecord(
        sid=new_sid("UT"),
        account_sid=account.sid,
        callback_url=callback_url,
        callback_method=parse_method(
            "CallbackMethod", params.get("CallbackMethod", ""), INVALID_PARAMETER
        ),
        trigger_value=value,
        usage_category=category,
        friendly_name=_friendly_name(params.get("FriendlyName")),
        recurring=recurring,
        trigger_by=trigger_by,
    )
    await billing.billing.insert_trigger(trigger)
    # Usage that already reaches the value fires it at once, as on Twilio.
    await billing.check_triggers(account.sid)
    trigger = await billing.billing.get_trigger(account.sid, trigger.sid) or trigger
    return JSONResponse(trigger_json(trigger), status_code=201)


@router.get(TRIGGERS)
async def list_triggers(request: Request, account: PathAccount) -> Response:
    params = query_params(request)
    page = PageRequest.from_params(params)
    triggers = await _billing(request).billing.list_triggers(
        account.sid,
        recurring=params.get("Recurring") or None,
        trigger_by=params.get("TriggerBy") or None,
        usage_category=params.get("UsageCategory") or None,
        offset=page.offset,
        limit=page.fetch_limit,
    )
    rows = [trigger_json(t) for t in triggers]
    return JSONResponse(page_body(request, params, "usage_triggers", rows, page))


async def _existing(request: Request, account, sid: str) -> UsageTriggerRecord:
    trigger = None
    if is_sid(sid, "UT"):
        trigger = await _billing(request).billing.get_trigger(account.sid, sid)
    if trigger is None:
        raise ApiError.not_found(request.url.path)
    return trigger


@router.get(TRIGGER)
async def fetch_trigger(request: Request, sid: str, account: PathAccount) -> Response:
    return JSONResponse(trigger_json(await _existing(request, account, sid)))


@router.post(TRIGGER)
async def update_trigger(request: Request, sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    await _existing(request, account, sid)
    values: dict = {}
    if "CallbackUrl" in params:
        values["callback_url"] = _callback_url(params["CallbackUrl"])
    if "CallbackMethod" in params:
        values["callback_method"] = parse_method(
            "CallbackMethod", params["CallbackMethod"], INVALID_PARAMETER
        )
    if "FriendlyName" in params:
        values["friendly_name"] = _friendly_name(params["FriendlyName"])
    trigger = await _billing(request).billing.update_trigger(account.sid, sid, **values)
    if trigger is None:
        raise ApiError.not_found(request.url.path)
    return JSONResponse(trigger_json(trigger))


@router.delete(TRIGGER)
async def delete_trigger(request: Request, sid: str, account: PathAccount) -> Response:
    if not (is_sid(sid, "UT") and await _billing(request).billing.delete_trigger(account.sid, sid)):
        raise ApiError.not_found(request.url.path)
    return Response(status_code=204)
