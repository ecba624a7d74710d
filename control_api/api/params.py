"""Request parameters: the form-encoded body of a POST and the query string of a GET.

Twilio's API takes ``application/x-www-form-urlencoded`` bodies with PascalCase names.
The body is read here rather than by python-multipart so that its size, its encoding
and the number of fields are bounded, and any malformed body is a 400 in Twilio's shape.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, overload
from urllib.parse import parse_qsl, urlsplit

from fastapi import Request
from starlette.datastructures import ImmutableMultiDict

from control_api.errors import INVALID_FRIENDLY_NAME, INVALID_PARAMETER, ApiError
from control_api.store import MAX_FRIENDLY_NAME

__all__ = [
    "Params",
    "Parser",
    "choice_parser",
    "day_after",
    "form_boolean",
    "form_params",
    "method_parser",
    "parse_boolean",
    "parse_choice",
    "parse_fields",
    "parse_friendly_name",
    "parse_method",
    "parse_time",
    "parse_url",
    "query_params",
    "restore_plus",
    "settings",
    "snake_case",
    "url_parser",
]

Params = ImmutableMultiDict  # name -> value; a repeated name keeps every value (getlist)
# A parameter's parser: (its name, its value) -> the value to store; raises ApiError
# (400, with the parameter's Twilio code) for a value it refuses.
Parser = Callable[[str, str], Any]

MAX_BODY_BYTES = 64 * 1024
MAX_FIELDS = 200
MAX_URL_LENGTH = 4000
FORM_TYPE = "application/x-www-form-urlencoded"
_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


async def form_params(request: Request) -> Params:
    """The parameters of a form-encoded request body (an empty body has none)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise ApiError(413, INVALID_PARAMETER, "Request body is too large")
    if not body:
        return Params()
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != FORM_TYPE:
        raise ApiError.bad_parameter(f"Request body must be {FORM_TYPE}")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise ApiError.bad_parameter("Request body is not valid form-encoded UTF-8") from None
    return _checked(pairs)


def query_params(request: Request) -> Params:
    """The parameters of the query string."""
    return _checked(request.query_params.multi_items())


def _checked(pairs: Iterable[tuple[str, str]]) -> Params:
    pairs = list(pairs)
    for name, value in pairs:
        # PostgreSQL text cannot hold NUL; no parameter has a use for it.
        if "\x00" in name or "\x00" in value:
            raise ApiError.bad_parameter("Parameters must not contain NUL characters")
    return Params(pairs)


@overload
def restore_plus(value: str) -> str: ...
@overload
def restore_plus(value: None) -> None: ...
def restore_plus(value: str | None) -> str | None:
    """Undo a '+' that the client did not percent-encode and the form decoding made a space."""
    if value is not None and value.startswith(" ") and value[1:2].isdigit():
        return "+" + value[1:]
    return value


def parse_url(
    name: str,
    value: str,
    code: int,
    schemes: tuple[str, ...] = ("http", "https"),
    what: str = "a valid URL",
) -> str | None:
    """An absolute URL of one of ``schemes`` (http(s) by default), or None for an
    empty value (which clears a setting)."""
    if value == "":
        return None
    error = ApiError.bad_parameter(f"{name} is not {what}: {value[:200]}", code)
    if len(value) > MAX_URL_LENGTH or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise error
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise error from None
    if parts.scheme.lower() not in schemes or not hostname:
        raise error
    return value


def parse_method(name: str, value: str, code: int) -> str:
    """GET or POST, in any case; empty means the default, POST."""
    method = value.upper() or "POST"
    if method not in ("GET", "POST"):
        raise ApiError.bad_parameter(f"{name} must be GET or POST", code)
    return method


def url_parser(code: int) -> Parser:
    """``parse_url`` for a resource whose URLs are refused with ``code``."""
    return lambda name, value: parse_url(name, value, code)


def method_parser(code: int) -> Parser:
    """``parse_method`` for a resource whose methods are refused with ``code``."""
    return lambda name, value: parse_method(name, value, code)


def parse_friendly_name(name: str, value: str) -> str:
    """A FriendlyName of at most ``MAX_FRIENDLY_NAME`` characters (empty too)."""
    if len(value) > MAX_FRIENDLY_NAME:
        raise ApiError.bad_parameter(
            f"{name} must have at most {MAX_FRIENDLY_NAME} characters", INVALID_FRIENDLY_NAME
        )
    return value


def choice_parser(choices: Sequence[str]) -> Parser:
    """``parse_choice`` of ``choices``."""
    return lambda name, value: parse_choice(name, value, choices)


def parse_choice(name: str, value: str | None, choices: Sequence[str]) -> str | None:
    """One of ``choices`` (which the error lists in their order); None when empty."""
    if not value:
        return None
    if value not in choices:
        raise ApiError.bad_parameter(f"{name} must be one of {', '.join(choices)}")
    return value


def form_boolean(params: Params, name: str) -> bool | None:
    """The form's ``name`` as Twilio's ``true``/``false``; None when absent or empty."""
    return parse_boolean(name, params.get(name))


def parse_boolean(name: str, value: str | None) -> bool | None:
    """Twilio's ``true``/``false`` (any case); None when absent or empty."""
    if not value:
        return None
    lowered = value.lower()
    if lowered not in ("true", "false"):
        raise ApiError.bad_parameter(f"{name} must be true or false")
    return lowered == "true"


def parse_fields(params: Params, parsers: Mapping[str, tuple[str, Parser]]) -> dict[str, Any]:
    """The fields a request sets: ``parsers`` maps a parameter to the field it sets and
    its parser, in the order they are checked; a parameter not given sets nothing."""
    return {
        field: parse(name, params[name])
        for name, (field, parse) in parsers.items()
        if name in params
    }


def snake_case(name: str) -> str:
    """A Twilio name in snake case, as its field and its JSON key are: ``VoiceUrl``,
    ``voice_url``; ``IncomingPhoneNumbers``, ``incoming_phone_numbers``."""
    return _WORD.sub("_", name).lower()


def settings(parse: Parser, *names: str) -> dict[str, tuple[str, Parser]]:
    """Entries of a ``parse_fields`` table: each of ``names`` sets the field of its
    name in snake case, as ``parse`` reads it."""
    return {name: (snake_case(name), parse) for name in names}


def parse_time(name: str, value: str) -> tuple[datetime, bool]:
    """A query-filter time: ``YYYY-MM-DD`` (midnight UTC) or an ISO 8601 date-time.

    Returns the instant and whether a bare date was given. Date-times without an offset
    are UTC.
    """
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), UTC), True
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ApiError.bad_parameter(
            f"{name} must be a date (YYYY-MM-DD) or an ISO 8601 date-time"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC), False
    except OverflowError:
        raise ApiError.bad_parameter(f"{name} is out of range") from None


def day_after(instant: datetime) -> datetime | None:
    """Midnight UTC after ``instant``'s day, or None past the end of the calendar."""
    try:
        return datetime.combine(instant.date(), time(), UTC) + timedelta(days=1)
    except OverflowError:
        return None
