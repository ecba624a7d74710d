"""Twilio's REST error body, and the one place every failure is mapped to it.

Every error answer of the REST API looks like Twilio's::

    {"code": 20404, "message": "...", "more_info": "https://www.twilio.com/docs/errors/20404",
     "status": 404}

which is what the official library turns into ``TwilioRestException(status, code)``.
The codes are Twilio's own, from its error dictionary (twilio.com/docs/errors/<code>).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

__all__ = [
    "ApiError",
    "error_body",
    "error_response",
    "install_error_handlers",
]

log = logging.getLogger("callswitch.api")

# Twilio error codes used by the REST API. The name says when; the number is Twilio's.
INVALID_PARAMETER = 20001  # generic 400 for a parameter with no more specific code
INVALID_FRIENDLY_NAME = 20002  # FriendlyName must have 1 to 64 characters
AUTHENTICATE = 20003  # 401: missing or wrong credentials, or another account's path
ACCOUNT_NOT_ACTIVE = 20005  # 401: the account's balance is spent (twilio.com/docs/api/errors/20005)
METHOD_NOT_ALLOWED = 20004  # the resource exists, the HTTP method does not apply to it
CANNOT_DELETE_UNFINISHED = 20009  # delete of a call that has not ended
NOT_FOUND = 20404
TOO_MANY_REQUESTS = 20429
INTERNAL_ERROR = 20500
SERVICE_UNAVAILABLE = 20503  # 503: the node drains, or the node holding a call is away
TO_REQUIRED = 21201  # Calls: no To
CALL_URL_INVALID = 21205  # Calls: Url missing or not an absolute http(s) URL
CALL_METHOD_INVALID = 21209  # Calls: Method is not GET or POST
TO_INVALID = 21211  # Calls: To is not a number, client: or sip: address
FROM_INVALID = 21212  # Calls: From is not a number, client: or sip: address
FROM_REQUIRED = 21213  # Calls: no From
NOT_ROUTABLE = 21215  # "Account not authorized to call this number": no route, or refused
CALL_NOT_IN_PROGRESS = 21220  # realtime operation (redirect, hang-up) on a call not live
SIP_DOMAIN_INVALID = 21231  # SIP Domains and their mappings: a bad or taken field
IP_ACCESS_CONTROL_INVALID = 21234  # SIP IpAccessControlLists and IpAddresses: a bad field
CREDENTIAL_LIST_INVALID = 21240  # SIP credentials: bad or taken Username, Password, name
NUMBER_URL_INVALID = 21402  # IncomingPhoneNumbers: a *Url or StatusCallback is invalid
NUMBER_METHOD_INVALID = 21403  # IncomingPhoneNumbers: a *Method is not GET or POST
PHONE_NUMBER_INVALID = 21421  # IncomingPhoneNumbers: PhoneNumber missing or not E.164
PHONE_NUMBER_UNAVAILABLE = 21422  # IncomingPhoneNumbers: the number belongs to an account

_HTTP_CODES = {
    400: INVALID_PARAMETER,
    401: AUTHENTICATE,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    429: TOO_MANY_REQUESTS,
}

AUTHENTICATE_HEADERS = {"WWW-Authenticate": 'Basic realm="Twilio API"'}


class ApiError(Exception):
    """A REST request failed in a way the client should hear about, Twilio-style."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers

    @classmethod
    def unauthorized(cls) -> ApiError:
        return cls(401, AUTHENTICATE, "Authenticate", AUTHENTICATE_HEADERS)

    @classmethod
    def not_found(cls, path: str) -> ApiError:
        return cls(404, NOT_FOUND, f"The requested resource {path} was not found")

    @classmethod
    def bad_parameter(cls, message: str, code: int = INVALID_PARAMETER) -> ApiError:
        return cls(400, code, message)


def error_body(status: int, code: int, message: str) -> dict:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        error_body(error.status, error.code, error.message),
        status_code=error.status,
        headers=error.headers,
    )


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    response = error_response(exc)
    # A page's own script (the console) asked: a Basic challenge would make the
    # browser open its credentials prompt instead of letting the page answer.
    scripted = request.headers.get("x-requested-with", "").lower() == "xmlhttprequest"
    if scripted and "www-authenticate" in response.headers:
        del response.headers["www-authenticate"]
    return response


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own errors: unknown routes (404), wrong method (405), bad bodies."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(ApiError.not_found(request.url.path))
    if exc.status_code == 405:
        error = ApiError(405, METHOD_NOT_ALLOWED, "Method not allowed", exc.headers)
        return error_response(error)
    if exc.status_code >= 500:
        code = INTERNAL_ERROR
    else:
        code = _HTTP_CODES.get(exc.status_code, INVALID_PARAMETER)
    headers = dict(exc.headers or {})
    if exc.status_code == 401:
        headers.update(AUTHENTICATE_HEADERS)
    return error_response(ApiError(exc.status_code, code, str(exc.detail), headers or None))


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        "%s: %s" % (".".join(str(part) for part in error.get("loc", ())), error.get("msg", ""))
        for error in exc.errors()
    )
    return error_response(ApiError.bad_parameter(f"Invalid request: {problems}"))


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error(
        "unhandled error in REST request",
        exc_info=exc,
        extra={"method": request.method, "path": request.url.path},
    )
    return error_response(ApiError(500, INTERNAL_ERROR, "Internal Server Error"))


def install_error_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` answer with Twilio's error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
