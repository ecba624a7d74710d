"""The OutgoingCallerIds resource and its ValidationRequest.

``POST OutgoingCallerIds.json`` (``PhoneNumber``; ``FriendlyName``, ``CallDelay``,
``Extension``, ``StatusCallback``, ``StatusCallbackMethod``) starts a validation: the
node calls the number and asks for the six-digit code this answer shows
(``validation_code``, with the ``call_sid`` of the call; voice/validation.py). Once the
callee keyed it, the number is a caller ID of the account: ``GET OutgoingCallerIds.json``
lists them (filters ``PhoneNumber``, ``FriendlyName``), ``GET``/``POST``/``DELETE
OutgoingCallerIds/{PN}.json`` fetch one, rename it (``FriendlyName``) and delete it.

With ``--verified-caller-ids`` (off by default, as callswitch has always let a REST call
show any number), ``POST Calls.json`` takes a ``From`` number only if it is one of the
account's numbers or verified caller IDs (Twilio's 21210); ``client:`` and ``sip:``
callers are not numbers and pass (``require_verified_caller``).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import account_uri
from control_api.api.auth import PathAccount
from control_api.api.filters import Filter, equal, number_text
from control_api.api.params import (
    Params,
    form_params,
    method_parser,
    parse_fields,
    parse_friendly_name,
    restore_plus,
    url_parser,
)
from control_api.api.placing import places_no_calls, unplaceable
from control_api.api.resource import Resource, found
from control_api.api.state import store_of
from control_api.errors import INVALID_PARAMETER, ApiError
from control_api.sids import rfc2822
from control_api.store import CallerId, normalize_e164
from control_api.voice.port import Unroutable
from control_api.voice.validation import (
    CallerIdValidations,
    NewValidation,
    new_validation_code,
)

__all__ = ["caller_id_json", "require_verified_caller", "router", "validation_request_json"]

router = APIRouter()

LIST = "/2010-04-01/Accounts/{account_sid}/OutgoingCallerIds.json"
INSTANCE = "/2010-04-01/Accounts/{account_sid}/OutgoingCallerIds/{sid}.json"

# Twilio's codes (twilio.com/docs/api/errors/<code>).
PHONE_NUMBER_INVALID = 21401  # PhoneNumber missing or not a phone number
ALREADY_VERIFIED = 21450  # the number is a caller ID of the account already
CALLER_NOT_VERIFIED = 21210  # a call's From is neither the account's number nor caller ID
MAX_CALL_DELAY_S = 60
_EXTENSION = re.compile(r"[0-9*#wW]{1,32}")

FILTERS: dict[str, Filter] = {
    "PhoneNumber": equal("phone_number", lambda name, value: _e164(number_text(name, value))),
    "FriendlyName": equal("friendly_name"),
}


def _e164(value: str) -> str:
    return normalize_e164(value) or value


def caller_id_json(caller_id: CallerId) -> dict:
    return {
        "account_sid": caller_id.account_sid,
        "date_created": rfc2822(caller_id.date_created),
        "date_updated": rfc2822(caller_id.date_updated),
        "friendly_name": caller_id.friendly_name,
        "phone_number": caller_id.phone_number,
        "sid": caller_id.sid,
        "uri": f"{account_uri(caller_id.account_sid)}/OutgoingCallerIds/{caller_id.sid}.json",
    }


CALLER_IDS = Resource(INSTANCE, ("PN",), lambda r: store_of(r).caller_ids, caller_id_json, FILTERS)


def validation_request_json(account_sid: str, call_sid: str, new: NewValidation) -> dict:
    return {
        "account_sid": account_sid,
        "call_sid": call_sid,
        "friendly_name": new.friendly_name,
        "phone_number": new.phone_number,
        "validation_code": new.code,
    }


def _call_delay(name: str, value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= MAX_CALL_DELAY_S:
        raise ApiError.bad_parameter(
            f"{name} must be a whole number of seconds from 0 to {MAX_CALL_DELAY_S}"
        )
    return int(value)


def _extension(name: str, value: str) -> str | None:
    if value and _EXTENSION.fullmatch(value) is None:
        raise ApiError.bad_parameter(f"{name} must be digits, '*', '#' and 'w'")
    return value or None


_VALIDATION_FIELDS = {
    "FriendlyName": ("friendly_name", parse_friendly_name),
    "CallDelay": ("call_delay", _call_delay),
    "Extension": ("extension", _extension),
    "StatusCallback": ("status_callback", url_parser(INVALID_PARAMETER)),
    "StatusCallbackMethod": ("status_callback_method", method_parser(INVALID_PARAMETER)),
}


def _new_validation(params: Params) -> NewValidation:
    given = restore_plus(params.get("PhoneNumber"))
    if not given:
        raise ApiError.bad_parameter("A PhoneNumber is required.", PHONE_NUMBER_INVALID)
    number = normalize_e164(given)
    if number is None:
        raise ApiError.bad_parameter(
            f"The phone number {given[:64]} is not valid.", PHONE_NUMBER_INVALID
        )
    fields = parse_fields(params, _VALIDATION_FIELDS)
    fields["friendly_name"] = fields.get("friendly_name") or None
    return NewValidation(phone_number=number, code=new_validation_code(), **fields)


def _validations(request: Request) -> CallerIdValidations:
    validations: CallerIdValidations | None = request.app.state.caller_id_validations
    if validations is None:
        raise places_no_calls()
    return validations


async def require_verified_caller(request: Request, account_sid: str, from_: str) -> None:
    """With ``--verified-caller-ids``: 21210 unless ``from_`` (a number) is one of the
    account's numbers or verified caller IDs."""
    if not getattr(request.app.state, "verified_caller_ids", False):
        return
    number = normalize_e164(from_)
    if number is None:  # client:, sip: (checked as addresses already)
        return
    store = store_of(request)
    owned = await store.numbers.find(number)
    if owned is not None and owned.account_sid == account_sid:
        return
    if await store.caller_ids.find(account_sid, number) is not None:
        return
    raise ApiError.bad_parameter(
        f"The source phone number provided, {number}, is not yet verified for your account."
        " You may only make calls from phone numbers that you've verified or purchased.",
        CALLER_NOT_VERIFIED,
    )


@router.post(LIST)
async def create_validation_request(request: Request, account: PathAccount) -> Response:
    new = _new_validation(await form_params(request))
    validations = _validations(request)
    if await store_of(request).caller_ids.find(account.sid, new.phone_number) is not None:
        raise ApiError.bad_parameter(
            f"Phone number {new.phone_number} is already verified.", ALREADY_VERIFIED
        )
    try:
        call_sid = await validations.start(account.sid, new)
    except Unroutable as exc:
        raise unplaceable(exc) from None
    return JSONResponse(validation_request_json(account.sid, call_sid, new))


@router.post(INSTANCE)
async def update_caller_id(request: Request, sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    caller_id = await CALLER_IDS.existing(request, account.sid, sid)
    if "FriendlyName" in params:
        name = parse_friendly_name("FriendlyName", params["FriendlyName"])
        renamed = await store_of(request).caller_ids.rename(account.sid, sid, name)
        caller_id = found(request, renamed)
    return JSONResponse(caller_id_json(caller_id))


# GET the list (key outgoing_caller_ids), GET and DELETE one.
CALLER_IDS.add_routes(router)
