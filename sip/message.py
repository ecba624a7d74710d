"""SIP message codec (RFC 3261 §7, §8.2.6, §18.3, §20, §21, §25); sans-I/O.

``parse_message`` turns one datagram or one framed stream message into a
``Request`` or ``Response``; ``StreamFramer`` cuts a TCP/TLS byte stream into
messages; ``make_response`` builds the answer to a request.

Parsing splits the start line and the header lines eagerly and checks the
headers every transaction and dialog needs (Via, From, To, Call-ID, CSeq,
Max-Forwards, Content-Length), so bad input fails here with a reason fit for a
400, not later inside the transaction layer. The typed values it builds on the
way are cached; other typed headers (all Vias, Contact, Route, Request-URI,
Content-Type) are parsed on first use. Anything a peer sends raises
``SipParseError`` or parses: no other exception escapes.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from sip.errors import SipParseError
from sip.headers import CSeq, NameAddress, SipUri, Via, is_token, split_header_values

__all__ = [
    "KEEPALIVE_PING",
    "KEEPALIVE_PONG",
    "MAX_BODY_SIZE",
    "MAX_HEADER_SIZE",
    "PONG",
    "REASON_PHRASES",
    "Headers",
    "KeepAlive",
    "Request",
    "Response",
    "SipParseError",
    "StreamFramer",
    "canonical_name",
    "generate_branch",
    "generate_call_id",
    "generate_tag",
    "make_response",
    "parse_message",
]

MAGIC_COOKIE = "z9hG4bK"
MAX_HEADER_SIZE = 64 * 1024
MAX_BODY_SIZE = 1024 * 1024

# RFC 3261 §7.3.3 and the IANA registry of compact forms.
_COMPACT = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "b": "Referred-By",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "y": "Identity",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
}

# Names whose canonical spelling is not plain Title-Case, and the common ones,
# so that ordinary traffic canonicalises with one dict lookup.
_WELL_KNOWN = """
    Accept Accept-Contact Accept-Encoding Accept-Language Accept-Resource-Priority
    Alert-Info Allow Allow-Events Authentication-Info Authorization Call-ID Call-Info
    Contact Content-Disposition Content-Encoding Content-ID Content-Language Content-Length
    Content-Type CSeq Date Diversion Error-Info Event Expires From History-Info Identity
    Identity-Info In-Reply-To Join Max-Breadth Max-Forwards MIME-Version Min-Expires Min-SE
    Organization P-Access-Network-Info P-Asserted-Identity P-Associated-URI
    P-Called-Party-ID P-Charging-Vector P-Charging-Function-Addresses P-Early-Media
    P-Preferred-Identity P-Visited-Network-ID Path Priority Privacy Proxy-Authenticate
    Proxy-Authorization Proxy-Require RAck Reason Record-Route Refer-Sub Refer-To
    Referred-By Reject-Contact Remote-Party-ID Replaces Reply-To Request-Disposition Require
    Resource-Priority Retry-After Route RSeq Security-Client Security-Server Security-Verify
    Server Service-Route Session-Expires SIP-ETag SIP-If-Match Subject Subscription-State
    Supported Target-Dialog Timestamp To Unsupported User-Agent User-to-User Via Warning
    WWW-Authenticate
""".split()  # noqa: SIM905 (a word list reads better than 88 quoted lines)

_CANON: dict[str, str] = {}
for _name in _WELL_KNOWN:
    _CANON[_name] = _name
    _CANON[_name.lower()] = _name
for _short, _name in _COMPACT.items():
    _CANON[_short] = _name
    _CANON[_short.upper()] = _name
del _name, _short

# Spellings met at run time. Peers choose header names, so the cache is bounded.
_SEEN: dict[str, str] = {}
_SEEN_LIMIT = 4096

# Header fields whose grammar is a comma-separated list (RFC 3261 §7.3.1, §20).
_LIST_HEADERS = frozenset(
    """
    Via Contact Route Record-Route Allow Supported Require Proxy-Require Unsupported Accept
    Accept-Encoding Accept-Language Allow-Events Content-Encoding In-Reply-To Path
    Service-Route
    """.split()  # noqa: SIM905
)

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
_FOLD_RE = re.compile(r"\n[ \t]+")
_CONTENT_LENGTH_RE = re.compile(r"^(?:content-length|l)[ \t]*:(.*)$", re.I | re.M)
_CRLF_RUN_RE = re.compile(rb"[\r\n]*")

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    412: "Conditional Request Failed",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    417: "Unknown Resource-Priority",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    428: "Use Identity Header",
    429: "Provide Referrer Identity",
    433: "Anonymity Disallowed",
    436: "Bad Identity-Info",
    437: "Unsupported Certificate",
    438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded",
    469: "Bad Info Package",
    470: "Consent Needed",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
    607: "Unwanted",
    608: "Rejected",
}


def _canonical(name: str) -> str | None:
    """Canonical spelling of a header name, or None if it is not a token."""
    found = _CANON.get(name) or _SEEN.get(name)
    if found is not None:
        return found
    # RFC 3261 §7.3.1 allows whitespace between the name and the colon.
    key = name.rstrip(" \t")
    found = _CANON.get(key.lower())
    if found is None:
        if not is_token(key):
            return None
        found = "-".join(w[:1].upper() + w[1:].lower() for w in key.split("-"))
    if len(_SEEN) < _SEEN_LIMIT:
        _SEEN[name] = found
    return found


def canonical_name(name: str) -> str:
    """Canonical spelling of a header name (RFC 3261 §7.3.3 compact forms expanded).

    Raises ValueError if ``name`` is not a token.
    """
    found = _canonical(name) if is_token(name) else None
    if found is None:
        raise ValueError(f"not a header name: {name!r}")
    return found


def _check_value(value: str) -> str:
    # A CR or LF in a value we write would let its source inject header lines.
    if "\r" in value or "\n" in value:
        raise ValueError("header value contains CR or LF")
    return value


class Headers:
    """Ordered multi-map of SIP header fields (RFC 3261 §7.3).

    Names are case-insensitive and stored canonically (compact forms expanded).
    Values are kept as written, with folding undone. Iteration yields
    ``(name, value)`` in message order.
    """

    __slots__ = ("_cache", "_first", "_items")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        self._first: dict[str, str] = {}
        # Typed values parsed from these headers; any change drops them.
        self._cache: dict[str, Any] = {}
        for name, value in items:
            self.add(name, value)

    @classmethod
    def _from_parsed(cls, items: list[tuple[str, str]], first: dict[str, str]) -> Headers:
        self = cls.__new__(cls)
        self._items = items
        self._first = first
        self._cache = {}
        return self

    def _changed(self) -> None:
        first: dict[str, str] = {}
        for name, value in self._items:
            first.setdefault(name, value)
        self._first = first
        self._cache.clear()

    def get(self, name: str, default: str | None = None) -> str | None:
        """Value of the first header line called ``name``, as written."""
        return self._first.get(_canonical(name) or name, default)

    def get_lines(self, name: str) -> list[str]:
        """Values of every header line called ``name``, as written (not split)."""
        cname = _canonical(name) or name
        return [v for n, v in self._items if n == cname]

    def get_all(self, name: str) -> list[str]:
        """All values of ``name``; comma-lists by grammar are split into elements."""
        cname = _canonical(name) or name
        if cname not in self._first:
            return []
        values = [v for n, v in self._items if n == cname]
        if cname not in _LIST_HEADERS:
            return values
        out: list[str] = []
        for value in values:
            out.extend(split_header_values(value))
        return out

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` line by one, where the first of them was."""
        cname = canonical_name(name)
        _check_value(value)
        items: list[tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n != cname:
                items.append((n, v))
            elif not placed:
                items.append((cname, value))
                placed = True
        if not placed:
            items.append((cname, value))
        self._items = items
        self._changed()

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        cname = canonical_name(name)
        self._items.append((cname, _check_value(value)))
        self._first.setdefault(cname, value)
        self._cache.clear()

    def prepend(self, name: str, value: str) -> None:
        """Insert before the first ``name`` line, or at the top (e.g. a new Via)."""
        cname = canonical_name(name)
        _check_value(value)
        index = next((i for i, (n, _) in enumerate(self._items) if n == cname), 0)
        self._items.insert(index, (cname, value))
        self._changed()

    def remove(self, name: str) -> None:
        """Remove every ``name`` line (no error if there is none)."""
        cname = _canonical(name) or name
        self._items = [(n, v) for n, v in self._items if n != cname]
        self._changed()

    def copy(self) -> Headers:
        return Headers._from_parsed(list(self._items), dict(self._first))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (_canonical(name) or name) in self._first

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._items == other._items

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def _first_element(value: str) -> str:
    if "," not in value:
        return value
    parts = split_header_values(value)
    return parts[0] if parts else ""


def _parse_top_via(raw: str) -> Via:
    return Via.parse(_first_element(raw))


def _parse_max_forwards(raw: str) -> int:
    # 1*DIGIT in 0..255 (RFC 3261 §20.22); the length guard keeps int() cheap.
    if not (raw.isdigit() and raw.isascii() and len(raw) <= 5) or int(raw) > 255:
        raise SipParseError("Bad Max-Forwards")
    return int(raw)


class _Message:
    """Typed, cached views of the headers shared by requests and responses."""

    __slots__ = ()
    headers: Headers
    body: bytes

    def _typed(self, key: str, name: str, parse: Callable[[str], Any]) -> Any:
        headers = self.headers
        cache = headers._cache
        if key in cache:
            return cache[key]
        raw = headers._first.get(name)
        if raw is None:
            raise SipParseError(f"Missing {name}")
        try:
            value = parse(raw)
        except SipParseError:
            raise SipParseError(f"Bad {name}") from None
        cache[key] = value
        return value

    def _typed_list(self, key: str, name: str, parse: Callable[[str], Any]) -> list[Any]:
        cache = self.headers._cache
        if key in cache:
            return cache[key]
        try:
            value = [parse(v) for v in self.headers.get_all(name)]
        except SipParseError:
            raise SipParseError(f"Bad {name}") from None
        cache[key] = value
        return value

    @property
    def call_id(self) -> str:
        value = self.headers._first.get("Call-ID")
        if value is None:
            raise SipParseError("Missing Call-ID")
        return value

    @property
    def cseq(self) -> CSeq:
        try:
            return self.headers._cache["cseq"]
        except KeyError:
            return self._typed("cseq", "CSeq", CSeq.parse)

    @property
    def via(self) -> Via:
        """The topmost Via (RFC 3261 §8.2.6.2, §17.2.3 transaction matching)."""
        try:
            return self.headers._cache["via"]
        except KeyError:
            return self._typed("via", "Via", _parse_top_via)

    @property
    def vias(self) -> list[Via]:
        return self._typed_list("vias", "Via", Via.parse)

    @property
    def from_(self) -> NameAddress:
        try:
            return self.headers._cache["from"]
        except KeyError:
            return self._typed("from", "From", NameAddress.parse)

    @property
    def to(self) -> NameAddress:
        try:
            return self.headers._cache["to"]
        except KeyError:
            return self._typed("to", "To", NameAddress.parse)

    @property
    def contacts(self) -> list[NameAddress]:
        """Contact values; raises SipParseError for ``Contact: *`` (test for it first)."""
        return self._typed_list("contacts", "Contact", NameAddress.parse)

    @property
    def routes(self) -> list[NameAddress]:
        return self._typed_list("routes", "Route", NameAddress.parse)

    @property
    def record_routes(self) -> list[NameAddress]:
        return self._typed_list("record_routes", "Record-Route", NameAddress.parse)

    @property
    def from_tag(self) -> str | None:
        return self.from_.params.get("tag")

    @property
    def to_tag(self) -> str | None:
        return self.to.params.get("tag")

    @property
    def branch(self) -> str | None:
        return self.via.params.get("branch")

    @property
    def content_type(self) -> str | None:
        """Lower-cased media type without parameters, e.g. ``application/sdp``."""
        raw = self.headers._first.get("Content-Type")
        if raw is None:
            return None
        media = raw.partition(";")[0].strip().lower()
        return media or None

    @property
    def max_forwards(self) -> int | None:
        """Max-Forwards; a request without one counts as 70 (RFC 3261 §8.1.1.6)."""
        headers = self.headers
        if "max_forwards" in headers._cache:
            return headers._cache["max_forwards"]
        if "Max-Forwards" not in headers._first:
            return 70 if isinstance(self, Request) else None
        return self._typed("max_forwards", "Max-Forwards", _parse_max_forwards)


def _serialize(start_line: str, headers: Headers, body: bytes) -> bytes:
    # Content-Length is always recomputed: a stale one would desynchronise
    # stream framing (RFC 3261 §18.3) at the receiver.
    length = f"Content-Length: {len(body)}"
    lines = [start_line]
    wrote_length = False
    for name, value in headers._items:
        if name == "Content-Length":
            if not wrote_length:
                lines.append(length)
                wrote_length = True
        else:
            lines.append(f"{name}: {value}")
    if not wrote_length:
        lines.append(length)
    lines.append("\r\n")
    data = "\r\n".join(lines).encode("utf-8", "surrogateescape")
    return data + body if body else data


@dataclass(slots=True)
class Request(_Message):
    """A SIP request (RFC 3261 §7.1). ``uri`` is the Request-URI as written."""

    method: str
    uri: str
    headers: Headers
    body: bytes = b""
    _ruri: tuple[str, SipUri] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def request_uri(self) -> SipUri:
        """The parsed Request-URI; other schemes come back opaque (answer 416)."""
        cached = self._ruri
        if cached is not None and cached[0] == self.uri:
            return cached[1]
        try:
            uri = SipUri.parse(self.uri)
        except SipParseError:
            raise SipParseError("Bad Request-URI") from None
        self._ruri = (self.uri, uri)
        return uri

    def serialize(self) -> bytes:
        return _serialize(f"{self.method} {self.uri} SIP/2.0", self.headers, self.body)


@dataclass(slots=True)
class Response(_Message):
    """A SIP response (RFC 3261 §7.2)."""

    status: int
    reason: str
    headers: Headers
    body: bytes = b""

    @property
    def is_provisional(self) -> bool:
        return self.status < 200

    @property
    def is_final(self) -> bool:
        return self.status >= 200

    def serialize(self) -> bytes:
        return _serialize(f"SIP/2.0 {self.status} {self.reason}", self.headers, self.body)


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
    canon = _CANON
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
            cname = _canonical(name) if colon else None
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

    headers = Headers._from_parsed(items, first)
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
        error = _check(message, headers, first, is_request)
    if error is not None:
        raise SipParseError(error, message if is_request else None, status=status)  # type: ignore[arg-type]
    return message


def _check(
    message: Request | Response, headers: Headers, first: dict[str, str], is_request: bool
) -> str | None:
    """Parse and cache what every transaction needs; return the first problem."""
    cache = headers._cache
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
        cache["via"] = _parse_top_via(first["Via"])
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
                cache["max_forwards"] = _parse_max_forwards(raw)
            except SipParseError:
                return "Bad Max-Forwards"
    return None


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    """Build a response to ``request`` (RFC 3261 §8.2.6, §12.1.1).

    Copies every Via in order, From, To, Call-ID and CSeq; Record-Route for
    dialog-creating INVITE responses (101-299); Timestamp into a 100 (§8.2.6.1).
    ``to_tag`` is added when the To has none, never on a 100 Trying.
    Works on the partially parsed request attached to a ``SipParseError``.
    """
    if not 100 <= status <= 699:
        raise ValueError(f"bad status code {status}")
    if reason is None:
        reason = REASON_PHRASES.get(status) or REASON_PHRASES[status // 100 * 100]
    elif "\r" in reason or "\n" in reason:
        reason = reason.replace("\r", " ").replace("\n", " ")
    src = request.headers._items
    items = [(n, v) for n, v in src if n == "Via"]
    if 101 <= status <= 299 and request.method == "INVITE":
        items += [(n, v) for n, v in src if n == "Record-Route"]
    first = request.headers._first
    for name in ("From", "To", "Call-ID", "CSeq"):
        value = first.get(name)
        if value is None:
            continue
        if name == "To" and to_tag is not None and status != 100 and not _has_tag(request):
            if not is_token(to_tag):
                raise ValueError(f"bad tag {to_tag!r}")
            value = f"{value};tag={to_tag}"
        items.append((name, value))
    if status == 100 and "Timestamp" in first:
        items.append(("Timestamp", first["Timestamp"]))
    out_first: dict[str, str] = {}
    for name, value in items:
        out_first.setdefault(name, value)
    out = Headers._from_parsed(items, out_first)
    if headers:
        for name, value in headers:
            out.add(name, value)
    if content_type is not None:
        out.set("Content-Type", content_type)
    return Response(status, reason, out, body)


def _has_tag(request: Request) -> bool:
    try:
        return request.to.params.get("tag") is not None
    except SipParseError:
        # An unparseable To (answering a bad request): look for the text.
        return ";tag=" in request.headers._first.get("To", "").replace(" ", "").lower()


def generate_tag() -> str:
    """A random From/To tag (RFC 3261 §19.3): 64 bits, hex."""
    return secrets.token_hex(8)


def generate_branch() -> str:
    """A random Via branch with the RFC 3261 §8.1.1.7 magic cookie."""
    return MAGIC_COOKIE + secrets.token_hex(8)


def generate_call_id(host: str) -> str:
    """A random Call-ID (RFC 3261 §8.1.1.4), ``<96 random bits>@host``."""
    token = secrets.token_hex(12)
    return f"{token}@{host}" if host else token


class KeepAlive(Enum):
    """CRLF keep-alives between messages on a stream (RFC 5626 §3.5.1, §4.4.1)."""

    PING = "ping"  # "\r\n\r\n": answer with PONG
    PONG = "pong"  # a lone "\r\n"


KEEPALIVE_PING = KeepAlive.PING
KEEPALIVE_PONG = KeepAlive.PONG
PONG = b"\r\n"


class StreamFramer:
    """Cut a TCP/TLS byte stream into SIP messages (RFC 3261 §18.3).

    ``feed`` returns, in order, complete raw messages (bytes, for
    ``parse_message``) and ``KeepAlive`` items for CRLF runs between messages.
    A lone CRLF is reported as PONG at once, so a ping split after its first
    CRLF shows up as PONG then PING. Content-Length is mandatory on streams.
    After a ``SipParseError`` the stream cannot be resynchronised: close it.
    """

    def __init__(
        self, *, max_header_size: int = MAX_HEADER_SIZE, max_body_size: int = MAX_BODY_SIZE
    ) -> None:
        self._buf = bytearray()
        self._max_header = max_header_size
        self._max_body = max_body_size
        self._in_message = False
        self._scan = 0  # where the search for the empty line resumes
        self._end = -1  # end of the current message once its length is known
        self._lfs = 0  # line feeds in the current run of CRLFs, modulo a ping
        self._pong_reported = False
        self._error: SipParseError | None = None

    @property
    def pending(self) -> bool:
        """Whether part of a message has arrived and its end has not."""
        return self._in_message

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        if self._error is not None:
            raise self._error
        buf = self._buf
        buf += data
        out: list[bytes | KeepAlive] = []
        pos = 0
        try:
            while True:
                if not self._in_message:
                    pos = self._skip_crlf(pos, out)
                    if pos == len(buf):
                        break
                    self._in_message = True
                    self._scan = pos
                    self._end = -1
                if self._end < 0 and not self._find_end(pos):
                    break
                if len(buf) < self._end:
                    break
                out.append(bytes(buf[pos : self._end]))
                pos = self._end
                self._in_message = False
        except SipParseError as exc:
            self._error = exc
            raise
        finally:
            if pos:
                del buf[:pos]
                self._scan -= pos
                if self._end >= 0:
                    self._end -= pos
        return out

    def _skip_crlf(self, pos: int, out: list[bytes | KeepAlive]) -> int:
        buf = self._buf
        end = _CRLF_RUN_RE.match(buf, pos).end()  # type: ignore[union-attr]
        if end > pos:
            lfs = self._lfs + buf.count(b"\n", pos, end)
            if lfs >= 2:
                out.extend([KEEPALIVE_PING] * (lfs // 2))
                self._pong_reported = False
            self._lfs = lfs % 2
        if self._lfs and not self._pong_reported:
            out.append(KEEPALIVE_PONG)
            self._pong_reported = True
        if end < len(buf):
            # A message starts: the run is over.
            self._lfs = 0
            self._pong_reported = False
        return end

    def _find_end(self, start: int) -> bool:
        buf = self._buf
        i = buf.find(b"\n\r\n", self._scan)
        j = buf.find(b"\n\n", self._scan, i + 1 if i >= 0 else len(buf))
        if j < 0 and i < 0:
            # Two bytes of a split "\n\r\n" may already be here.
            self._scan = max(start, len(buf) - 2)
            if len(buf) - start > self._max_header + 2:
                raise SipParseError("Header section too large")
            return False
        head_end, body_start = (j, j + 2) if j >= 0 else (i, i + 3)
        if head_end - start > self._max_header:
            raise SipParseError("Header section too large")
        head = buf[start:head_end].decode("latin-1").replace("\r\n", "\n")
        head = _FOLD_RE.sub(" ", head)
        values = {v.strip(" \t\r") for v in _CONTENT_LENGTH_RE.findall(head)}
        if not values:
            raise SipParseError("Missing Content-Length")
        if len(values) > 1:
            raise SipParseError("Duplicate Content-Length")
        text = values.pop()
        if not (text.isdigit() and text.isascii() and len(text) <= 10):
            raise SipParseError("Bad Content-Length")
        length = int(text)
        if length > self._max_body:
            raise SipParseError("Content-Length too large")
        self._end = body_start + length
        return True
