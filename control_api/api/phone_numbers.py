"""The IncomingPhoneNumbers resource: the numbers an account answers, and where to.

``POST IncomingPhoneNumbers.json`` provisions a number (201), ``GET`` lists them
(filters ``PhoneNumber``, partial with '*' for any digit, and ``FriendlyName``), and
``GET``/``POST``/``DELETE IncomingPhoneNumbers/{Sid}.json`` fetch, update and release one.
There is no carrier behind callswitch: any E.164 number not held by an account can be
provisioned.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.filters import Filter, equal, number_text
from control_api.api.paging import page_response
from control_api.api.params import (
    Parser,
    form_params,
    method_parser,
    parse_boolean,
    parse_fields,
    url_parser,
)
from control_api.api.resource import Resource, found
from control_api.api.state import store_of
from control_api.errors import (
    INVALID_FRIENDLY_NAME,
    INVALID_PARAMETER,
    NUMBER_METHOD_INVALID,
    NUMBER_URL_INVALID,
    PHONE_NUMBER_INVALID,
    PHONE_NUMBER_UNAVAILABLE,
    ApiError,
)
from control_api.sids import is_sid, rfc2822
from control_api.store import (
    MAX_FRIENDLY_NAME,
    Account,
    NumberTaken,
    PhoneNumber,
    normalize_e164,
)

__all__ = ["list_page", "number_json", "provision", "router"]

router = APIRouter()

INSTANCE = "/2010-04-01/Accounts/{account_sid}/IncomingPhoneNumbers/{sid}.json"


def _friendly_name(name: str, value: str) -> str:
    if not 1 <= len(value) <= MAX_FRIENDLY_NAME:
        raise ApiError.bad_parameter(
            f"{name} must have 1 to {MAX_FRIENDLY_NAME} characters", INVALID_FRIENDLY_NAME
        )
    return value


def _application_sid(name: str, value: str) -> str | None:
    if value == "":
        return None
    if not is_sid(value, "AP"):
        raise ApiError.bad_parameter(f"{name} is not an Application SID", INVALID_PARAMETER)
    return value


def _boolean(name: str, value: str) -> bool:
    return bool(parse_boolean(name, value))


_url = url_parser(NUMBER_URL_INVALID)
_method = method_parser(NUMBER_METHOD_INVALID)

# Request parameter -> (store field, parser). The parsers raise Twilio's code for the field.
SETTINGS: dict[str, tuple[str, Parser]] = {
    "FriendlyName": ("friendly_name", _friendly_name),
    "VoiceUrl": ("voice_url", _url),
    "VoiceMethod": ("voice_method", _method),
    "VoiceFallbackUrl": ("voice_fallback_url", _url),
    "VoiceFallbackMethod": ("voice_fallback_method", _method),
    "StatusCallback": ("status_callback", _url),
    "StatusCallbackMethod": ("status_callback_method", _method),
    "SmsUrl": ("sms_url", _url),
    "SmsMethod": ("sms_method", _method),
    "SmsFallbackUrl": ("sms_fallback_url", _url),
    "SmsFallbackMethod": ("sms_fallback_method", _method),
    "VoiceApplicationSid": ("voice_application_sid", _application_sid),
    "SmsApplicationSid": ("sms_application_sid", _application_sid),
    "VoiceCallerIdLookup": ("voice_caller_id_lookup", _boolean),
}


# The list's query parameter -> (the store's filter, parser).
FILTERS: dict[str, Filter] = {
    "PhoneNumber": equal("phone_number", number_text),
    "FriendlyName": equal("friendly_name"),
}


def number_uri(number: PhoneNumber) -> str:
    return f"{account_uri(number.account_sid)}/IncomingPhoneNumbers/{number.sid}.json"


def number_json(number: PhoneNumber) -> dict:
    return {
        "account_sid": number.account_sid,
        "address_requirements": "none",
        "address_sid": None,
        "api_version": API_VERSION,
        "beta": False,
        "bundle_sid": None,
        "capabilities": {"voice": True, "sms": True, "mms": False, "fax": False},
        "date_created": rfc2822(number.date_created),
        "date_updated": rfc2822(number.date_updated),
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "emergency_status": "Inactive",
        "friendly_name": number.friendly_name,
        "identity_sid": None,
        "origin": "hosted",
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_application_sid": number.sms_application_sid,
        "sms_fallback_method": number.sms_fallback_method,
        "sms_fallback_url": number.sms_fallback_url,
        "sms_method": number.sms_method,
        "sms_url": number.sms_url,
        "status": "in-use",
        "status_callback": number.status_callback,
        "status_callback_method": number.status_callback_method,
        "trunk_sid": None,
        "type": number.number_type,
        "uri": number_uri(number),
        "voice_application_sid": number.voice_application_sid,
        "voice_caller_id_lookup": number.voice_caller_id_lookup,
        "voice_fallback_method": number.voice_fallback_method,
        "voice_fallback_url": number.voice_fallback_url,
        "voice_method": number.voice_method,
        "voice_receive_mode": "voice",
        "voice_url": number.voice_url,
    }


NUMBERS = Resource(INSTANCE, ("PN",), lambda r: store_of(r).numbers, number_json, FILTERS)
NUMBERS.add_routes(router)


@router.post(NUMBERS.list_path)
async def create_number(request: Request, account: PathAccount) -> Response:
    return JSONResponse(number_json(await provision(request, account)), status_code=201)


async def provision(
    request: Request, account: Account, number_type: str | None = None
) -> PhoneNumber:
    """The number a create request asks for, provisioned; ``number_type`` as the store's
    ``create`` takes it (None: from the number)."""
    params = await form_params(request)
    given = params.get("PhoneNumber")
    if not given:
        message = "A PhoneNumber is required"
        if params.get("AreaCode"):
            message += " (AreaCode is not supported: there is no pool of numbers to pick from)"
        raise ApiError.bad_parameter(message, PHONE_NUMBER_INVALID)
    phone_number = normalize_e164(given)
    if phone_number is None:
        raise ApiError.bad_parameter(
            f"The phone number {given[:64]} is not a valid E.164 number", PHONE_NUMBER_INVALID
        )
    try:
        return await store_of(request).numbers.create(
            account.sid, phone_number, number_type=number_type, **parse_fields(params, SETTINGS)
        )
    except NumberTaken:
        raise ApiError.bad_parameter(
            f"The phone number {phone_number} is not available", PHONE_NUMBER_UNAVAILABLE
        ) from None


async def list_page(
    request: Request,
    account: Account,
    shown: Callable[[PhoneNumber], dict],
    number_type: str | None = None,
) -> Response:
    """A page of the account's numbers of ``number_type``, each as ``shown`` makes it
    (``phone_number_types``' lists; ``NUMBERS`` lists them all)."""
    numbers = partial(store_of(request).numbers.page, account.sid, number_type=number_type)
    return await page_response(request, "incoming_phone_numbers", numbers, shown, FILTERS)


@router.post(INSTANCE)
async def update_number(request: Request, sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    await NUMBERS.existing(request, account.sid, sid)
    target = params.get("AccountSid")
    if target and target != account.sid:
        raise ApiError.bad_parameter(
            "Moving a number to another account is not supported", INVALID_PARAMETER
        )
    number = await store_of(request).numbers.update(
        account.sid, sid, **parse_fields(params, SETTINGS)
    )
    return JSONResponse(number_json(found(request, number)))  # None: released meanwhile
