"""SIP messages (RFC 3261 §7, §8.2.6, §20, §21): ``Request``, ``Response``, ``Headers``.

The message model and its serializer, sans-I/O. ``make_response`` builds the
answer to a request; ``serialize`` writes a message out (Content-Length always
recomputed). Parsing is in sip/parser.py, stream framing in sip/framing.py.
Typed header values (CSeq, Via, From, To…) are cached in the ``Headers`` and
dropped whenever they change.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sip.errors import SipParseError
from sip.header_names import canonical_name, canonical_or_none
from sip.headers import (
    CSeq,
    NameAddress,
    SipUri,
    Via,
    is_token,
    parse_max_forwards,
    parse_top_via,
    split_header_values,
)

_T = TypeVar("_T")

__all__ = [
    "MAGIC_COOKIE",
    "REASON_PHRASES",
    "Headers",
    "Request",
    "Response",
    "generate_branch",
    "generate_call_id",
    "generate_tag",
    "make_response",
]

MAGIC_COOKIE = "z9hG4bK"

# Header fields whose grammar is a comma-separated list (RFC 3261 §7.3.1, §20).
_LIST_HEADERS = frozenset(
    """
    Via Contact Route Record-Route Allow Supported Require Proxy-Require Unsupported Accept
    Accept-Encoding Accept-Language Allow-Events Content-Encoding In-Reply-To Path
    Service-Route
    """.split()  # noqa: SIM905
)

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
    def from_parsed(
        cls,
        items: list[tuple[str, str]],
        first: dict[str, str],
        typed: dict[str, Any] | None = None,
    ) -> Headers:
        """Headers from already checked lines: canonical names, values without CR or
        LF; ``first`` maps each name to its first value and ``typed`` holds typed
        values already parsed from them (the parser's; the headers own it now)."""
        self = cls.__new__(cls)
        self._items = items
        self._first = first
        self._cache = typed if typed is not None else {}
        return self

    def _changed(self) -> None:
        first: dict[str, str] = {}
        for name, value in self._items:
            first.setdefault(name, value)
        self._first = first
        self._cache.clear()

    def get(self, name: str, default: str | None = None) -> str | None:
        """Value of the first header line called ``name``, as written."""
        return self._first.get(canonical_or_none(name) or name, default)

    def get_lines(self, name: str) -> list[str]:
        """Values of every header line called ``name``, as written (not split)."""
        cname = canonical_or_none(name) or name
        return [v for n, v in self._items if n == cname]

    def get_all(self, name: str) -> list[str]:
        """All values of ``name``; comma-lists by grammar are split into elements."""
        cname = canonical_or_none(name) or name
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
        cname = canonical_or_none(name) or name
        self._items = [(n, v) for n, v in self._items if n != cname]
        self._changed()

    def copy(self) -> Headers:
        return Headers.from_parsed(list(self._items), dict(self._first))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (canonical_or_none(name) or name) in self._first

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


class _Message:
    """Typed, cached views of the headers shared by requests and responses."""

    __slots__ = ()
    headers: Headers
    body: bytes

    def _typed(self, key: str, name: str, parse: Callable[[str], _T]) -> _T:
        headers = self.headers
        cache = headers._cache
        if key in cache:
            cached: _T = cache[key]
            return cached
        raw = headers._first.get(name)
        if raw is None:
            raise SipParseError(f"Missing {name}")
        try:
            value = parse(raw)
        except SipParseError:
            raise SipParseError(f"Bad {name}") from None
        cache[key] = value
        return value

    def _typed_list(self, key: str, name: str, parse: Callable[[str], _T]) -> list[_T]:
        cache = self.headers._cache
        if key in cache:
            cached: list[_T] = cache[key]
            return cached
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
            value: CSeq = self.headers._cache["cseq"]
        except KeyError:
            return self._typed("cseq", "CSeq", CSeq.parse)
        return value

    @property
    def via(self) -> Via:
        """The topmost Via (RFC 3261 §8.2.6.2, §17.2.3 transaction matching)."""
        try:
            value: Via = self.headers._cache["via"]
        except KeyError:
            return self._typed("via", "Via", parse_top_via)
        return value

    @property
    def vias(self) -> list[Via]:
        return self._typed_list("vias", "Via", Via.parse)

    @property
    def from_(self) -> NameAddress:
        try:
            value: NameAddress = self.headers._cache["from"]
        except KeyError:
            return self._typed("from", "From", NameAddress.parse)
        return value

    @property
    def to(self) -> NameAddress:
        try:
            value: NameAddress = self.headers._cache["to"]
        except KeyError:
            return self._typed("to", "To", NameAddress.parse)
        return value

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
            value: int = headers._cache["max_forwards"]
            return value
        if "Max-Forwards" not in headers._first:
            return 70 if isinstance(self, Request) else None
        return self._typed("max_forwards", "Max-Forwards", parse_max_forwards)


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
    out = Headers.from_parsed(items, out_first)
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
