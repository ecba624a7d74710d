"""Parsing SIP messages (RFC 3261 §7, §8.1.1, §8.2.2, §18.3, §20, §25); sans-I/O.

``parse_message`` turns one datagram or one framed stream message
(sip/framing.py) into a ``Request`` or ``Response`` (sip/message.py).

It splits the start line and the header lines eagerly and checks the headers
every transaction and dialog needs (Via, From, To, Call-ID, CSeq, Max-Forwards,
Content-Length), so bad input fails here with a reason fit for a 400, not later
inside the transaction layer. The typed values it builds on the way are cached
in the headers; other typed headers (all Vias, Contact, Route, Request-URI,
Content-Type) are parsed on first use. Anything a peer sends raises
``SipParseError`` or parses: no other exception escapes.
"""

from __future__ import annotations

import re
from typing import Any

from sip.errors import SipParseError
from sip.header_names import CANONICAL, canonical_or_none
from sip.headers import CSeq, NameAddress, is_token, parse_max_forwards, parse_top_via
from sip.message import Headers, Request, Response

__all__ = ["parse_message"]

# Repeating one of these with another value makes the message ambiguous.
_SINGLETON = frozenset(
    {"Call-ID", "CSeq", "From", "To", "Max-Forwards", "Content-Length", "Content-Type"}
)
_RESPONSE_NEEDS = ("Via", "From", "To", "Call-ID", "CSeq")
_RESPONSE_NEEDS_SET = frozenset(_RESPONSE_NEEDS)

_KNOWN_METHODS = frozenset(
    """
    INVITE ACK BYE CANCEL OPTIONS REGISTER PRACK SUBSCRIBE NOTIFY PUBLISH INFO REFER MESSAGE UPDATE
    """.split()  # noqa: SIM905
)

# Printable ASCII except SP, '"', '<' and '>': what any URI may contain. The
# Request-URI is fully parsed on demand; this only refuses what is never a URI.
_REQUEST_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[!#-;=?-~]+")
_SIP_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.I)


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    """Cut ``data`` into header-section lines and the rest (RFC 3261 §7, §7.5).

    Folded lines are left for the caller to join.
    """
    i = data.find(b"\r\n\r\n")
    if i > 0:
        text = data[:i].decode("utf-8", "surrogateescape")
        lines = text.split("\r\n")
        n = len(lines) - 1
        # Only CRLF line ends and no empty first line: the common case is done.
        if lines[0] and text.count("\n") == n and text.count("\r") == n:
            return lines, data[i + 4 :]
    if data[:1] in (b"\r", b"\n"):
        data = data.lstrip(b"\r\n")
    if not data:
        raise SipParseError("Empty message")
    # The empty line ends at the first "\n\r\n" or "\n\n", whichever comes first,
    # so that bare-LF messages work and a CRLF inside a body is never taken for it.
    i = data.find(b"\n\r\n")
    j = data.find(b"\n\n", 0, i + 1 if i >= 0 else len(data))
    if j >= 0:
        head, rest = data[:j], data[j + 2 :]
    elif i >= 0:
        head, rest = data[:i], data[i + 3 :]
    else:
        raise SipParseError("Missing empty line after headers")
    text = head.decode("utf-8", "surrogateescape")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
        if text[-1:] == "\r":
            text = text[:-1]
        # Peers disagree on whether a lone CR ends a line; refusing it keeps
        # one peer's header from becoming two at the next hop.
        if "\r" in text:
            raise SipParseError("Bare CR in headers")
    return text.split("\n"), rest


def parse_message(data: bytes) -> Request | Response:
    """Parse one whole SIP message: a datagram or one framed stream message.

    RFC 3261 §7 (syntax), §8.1.1 and §8.2.2 (required headers), §18.3
    (Content-Length), §20.16 (CSeq). Liberal where the RFC allows it (bare LF,
    folding, compact forms, leading empty lines, missing Max-Forwards) and
    strict elsewhere. Raises ``SipParseError`` only.
    """
    if not isinstance(data, bytes):
        data = bytes(data)
    lines, rest = _split_head(data)
    start = lines[0]
    error: str | None = None
    status = 400
    is_request = start[:4].upper() != "SIP/"
    if is_request:
        line = start.rstrip(" \t")
        if line != start:
            error = "Bad Request-Line"
        method, _, tail = line.partition(" ")
        uri, _, version = tail.rpartition(" ")
        if method not in _KNOWN_METHODS and not is_token(method):
            raise SipParseError("Bad Request-Line")
        if version != "SIP/2.0" and version.upper() != "SIP/2.0":
            if _SIP_VERSION_RE.fullmatch(version) is None:
                raise SipParseError("Bad Request-Line")
            error, status = "Version Not Supported", 505
        if error is None and _REQUEST_URI_RE.fullmatch(uri) is None:
            error = "Bad Request-URI"
    else:
        version, _, tail = start.partition(" ")
        code, _, reason = tail.partition(" ")
        if version.upper() != "SIP/2.0":
            raise SipParseError("Version Not Supported", status=505)
        if not (len(code) == 3 and code.isdigit() and code.isascii()):
            raise SipParseError("Bad Status-Line")
        status_code = int(code)
        if not 100 <= status_code <= 699:
            raise SipParseError("Bad Status-Line")

    items: list[tuple[str, str]] = []
    first: dict[str, str] = {}
    canon = CANONICAL
    # Parts of the last value while folded lines are joined (joined once, so
    # thousands of continuation lines cost linear time).
    pending: list[str] | None = None
    folded = False
    for i in range(1, len(lines)):
        line = lines[i]
        name, colon, value = line.partition(":")
        cname = canon.get(name)
        if cname is None:
            if line[:1] in (" ", "\t"):
                # RFC 3261 §7.3.1: a line starting with LWS continues the
                # previous one; the fold counts as a single SP.
                if not items:
                    error = error or "Malformed header"
                    continue
                more = line.strip(" \t")
                if more:
                    if pending is None:
                        pending = [items[-1][1]] if items[-1][1] else []
                    pending.append(more)
                continue
            cname = canonical_or_none(name) if colon else None
            if cname is None:
                error = error or "Malformed header"
                continue
        if pending is not None:
            items[-1] = (items[-1][0], " ".join(pending))
            pending = None
            folded = True
        value = value.strip(" \t")
        items.append((cname, value))
        first.setdefault(cname, value)
    if pending is not None:
        items[-1] = (items[-1][0], " ".join(pending))
        folded = True
    if folded:
        first = {}
        for name, value in items:
            first.setdefault(name, value)
    if len(first) != len(items):
        for name, value in items:
            if name in _SINGLETON and first[name] != value:
                error = error or f"Duplicate {name}"
                break

    if not first.keys() >= _RESPONSE_NEEDS_SET:
        missing = next(n for n in _RESPONSE_NEEDS if n not in first)
        raise SipParseError(f"Missing {missing}")

    typed: dict[str, Any] = {}
    headers = Headers.from_parsed(items, first, typed)
    body = rest
    length = first.get("Content-Length")
    if length is not None:
        if not (length.isdigit() and length.isascii() and len(length) <= 10):
            error = error or "Bad Content-Length"
        else:
            n = int(length)
            if n > len(rest):
                error = error or "Content-Length mismatch"
            elif n < len(rest):
                # RFC 3261 §18.3: octets past Content-Length are not part of it.
                body = rest[:n]

    if is_request:
        message: Request | Response = Request(method, uri, headers, body)
    else:
        message = Response(status_code, reason, headers, body)
    if error is None:
        error = _check(message, typed, first, is_request)
    if error is not None:
        raise SipParseError(error, message if is_request else None, status=status)  # type: ignore[arg-type]
    return message


def _check(
    message: Request | Response, cache: dict[str, Any], first: dict[str, str], is_request: bool
) -> str | None:
    """Parse into ``cache`` (the headers' typed values) what every transaction needs;
    return the first problem."""
    try:
        cseq = CSeq.parse(first["CSeq"])
    except SipParseError:
        return "Bad CSeq"
    cache["cseq"] = cseq
    if is_request and cseq.method != message.method:  # type: ignore[union-attr]
        return "CSeq method mismatch"
    call_id = first["Call-ID"]
    if not call_id or " " in call_id or "\t" in call_id:
        return "Bad Call-ID"
    try:
        cache["via"] = parse_top_via(first["Via"])
    except SipParseError:
        return "Bad Via"
    try:
        cache["from"] = NameAddress.parse(first["From"])
    except SipParseError:
        return "Bad From"
    try:
        cache["to"] = NameAddress.parse(first["To"])
    except SipParseError:
        return "Bad To"
    if is_request:
        raw = first.get("Max-Forwards")
        if raw is None:
            cache["max_forwards"] = 70
        else:
            try:
                cache["max_forwards"] = parse_max_forwards(raw)
            except SipParseError:
                return "Bad Max-Forwards"
    return None
