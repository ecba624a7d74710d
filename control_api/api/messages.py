"""The Messages resource (reference §7).

``POST Messages.json`` queues a message (201), ``GET`` lists them (filters ``To``,
``From``, ``DateSent`` with ``<`` and ``>``), and ``GET``/``POST``/``DELETE
Messages/{Sid}.json`` fetch one, redact its body (``Body=""``) and delete it.
The sending itself is the message service's (``control_api/sms/service.py``).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import API_VERSION, account_uri
from control_api.api.auth import PathAccount
from control_api.api.balance import require_funds
from control_api.api.filters import Filter, TimeRange, equal
from control_api.api.params import (
    form_params,
    parse_method,
    parse_url,
    restore_plus,
)
from control_api.api.resource import Resource, found, stored_dates
from control_api.errors import (
    CANNOT_DELETE_UNFINISHED,
    INVALID_PARAMETER,
    ApiError,
)
from control_api.sids import is_sid, rfc2822
from control_api.store import MessageRecord, normalize_e164

__all__ = ["message_json", "router"]

router = APIRouter()

LIST = "/2010-04-01/Accounts/{account_sid}/Messages.json"
INSTANCE = "/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json"

# Twilio's codes for message parameters (twilio.com/docs/api/errors/<code>).
BODY_REQUIRED = 21602  # neither Body nor MediaUrl
FROM_REQUIRED = 21603
TO_REQUIRED = 21604
STATUS_CALLBACK_INVALID = 21609
TO_INVALID = 21211
FROM_INVALID = 21212
BODY_TOO_LONG = 21617  # over 1600 characters
MEDIA_URL_INVALID = 21620
TOO_MANY_MEDIA = 21623
MAX_BODY_CHARACTERS = 1600
MAX_MEDIA = 10
MAX_VALIDITY_S = 36000
_ALPHANUMERIC_SENDER = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}")


def _address_filter(name: str, value: str) -> str:
    """A number in E.164 if it is one (an alphanumeric sender ID stays as it is)."""
    value = restore_plus(value)
    return normalize_e164(value) or value


# The list's query parameter -> (the store's filter, parser); DateSent apart.
FILTERS: dict[str, Filter] = {
    "To": equal("to", _address_filter),
    "From": equal("from_", _address_filter),
    "DateSent": TimeRange.filter("sent"),
}


def message_uri(message: MessageRecord) -> str:
    return f"{account_uri(message.account_sid)}/Messages/{message.sid}.json"


def message_json(message: MessageRecord) -> dict:
    uri = message_uri(message)
    created, updated = stored_dates(message)
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": created,
        "date_sent": rfc2822(message.date_sent) if message.date_sent else None,
        "date_updated": updated,
        "direction": message.direction,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": str(len(message.media_urls)),
        "num_segments": str(message.num_segments),
        "price": message.price,
        "price_unit": message.price_unit,
        "sid": message.sid,
        "status": message.status,
        # Twilio's "feedback" is not built.
        "subresource_uris": {"media": f"{uri.removesuffix('.json')}/Media.json"},
        "to": message.to,
        "uri": uri,
    }


def _messaging(request: Request):
    messaging = request.app.state.messaging
    if messaging is None:
        raise ApiError(501, INVALID_PARAMETER, "This node sends no messages")
    return messaging


def _address(name: str, value: str | None, required: int, invalid: int) -> str:
    value = restore_plus(value)
    if not value:
        raise ApiError.bad_parameter(f"A '{name}' phone number is required.", required)
    number = normalize_e164(value)
    if number is not None:
        return number
    if name == "From" and _ALPHANUMERIC_SENDER.fullmatch(value):
        return value  # an alphanumeric sender ID
    raise ApiError.bad_parameter(
        f"The '{name}' number {value[:64]} is not a valid phone number.", invalid
    )


def _validity(value: str | None) -> int | None:
    if not value:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_VALIDITY_S:
        raise ApiError.bad_parameter(
            f"ValidityPeriod must be a number of seconds from 1 to {MAX_VALIDITY_S}",
            INVALID_PARAMETER,
        )
    return int(value)


@router.post(LIST)
async def create_message(request: Request, account: PathAccount) -> Response:
    params = await form_params(request)
    messaging = _messaging(request)
    to = _address("To", params.get("To"), TO_REQUIRED, TO_INVALID)
    service = params.get("MessagingServiceSid") or None
    if service is not None and not is_sid(service, "MG"):
        raise ApiError.bad_parameter("MessagingServiceSid is not a Messaging Service SID")
    if service is not None and not params.get("From"):
        raise ApiError.bad_parameter(
            "Messaging services are not supported: give a From number", FROM_REQUIRED
        )
    from_ = _address("From", params.get("From"), FROM_REQUIRED, FROM_INVALID)
    body = params.get("Body") or ""
    media = [url for url in params.getlist("MediaUrl") if url]
    if not body and not media:
        raise ApiError.bad_parameter("Message body is required.", BODY_REQUIRED)
    if len(body) > MAX_BODY_CHARACTERS:
        raise ApiError.bad_parameter(
            f"The concatenated message body exceeds the {MAX_BODY_CHARACTERS} character limit.",
            BODY_TOO_LONG,
        )
    if len(media) > MAX_MEDIA:
        raise ApiError.bad_parameter(f"At most {MAX_MEDIA} MediaUrl may be given", TOO_MANY_MEDIA)
    for url in media:
        parse_url("MediaUrl", url, MEDIA_URL_INVALID)
    status_callback = parse_url(
        "StatusCallback", params.get("StatusCallback", ""), STATUS_CALLBACK_INVALID
    )
    method = parse_method(
        "StatusCallbackMethod", params.get("StatusCallbackMethod", ""), INVALID_PARAMETER
    )
    validity = _validity(params.get("ValidityPeriod"))
    await require_funds(request, account.sid)
    message = await messaging.create(
        account.sid,
        to=to,
        from_=from_,
        body=body,
        media_urls=media,
        status_callback=status_callback,
        status_callback_method=method,
        validity_period=validity,
        messaging_service_sid=service,
    )
    return JSONResponse(message_json(message), status_code=201)


UNFINISHED = ("accepted", "queued", "sending", "receiving")


async def _refuse_unsent(request: Request, message: MessageRecord) -> None:
    if message.status in UNFINISHED:
        raise ApiError.bad_parameter(
            "A message cannot be deleted before it is sent", CANNOT_DELETE_UNFINISHED
        )


MESSAGES = Resource(
    INSTANCE, (("SM", "MM"),), lambda r: _messaging(r).messages, message_json, FILTERS
)
MESSAGES.add_routes(router, refuse_delete=_refuse_unsent)


@router.post(INSTANCE)
async def update_message(request: Request, sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    message = await MESSAGES.existing(request, account.sid, sid)
    if "Body" in params:
        if params["Body"] != "":
            raise ApiError.bad_parameter("Body can only be updated to an empty string (redacted)")
        if message.status in UNFINISHED:
            raise ApiError.bad_parameter(
                "A message cannot be redacted before it is sent", CANNOT_DELETE_UNFINISHED
            )
        message = found(request, await _messaging(request).messages.update(sid, body=""))
    return JSONResponse(message_json(message))
