"""Typed SIP header values: URIs, name-addr, Via, CSeq (RFC 3261 §19.1, §20, §25.1).

Each type parses one header-field element (after comma-splitting) and writes it
back with ``str()``. Values stay as they were on the wire: URI escapes and quoted
parameter values are not decoded, so a value read and written back is what the
peer sent. Parameter names are lower-cased because RFC 3261 compares them
case-insensitively and callers look them up by their lower-case names.

The objects a message hands out are cached views of its headers: treat them as
read-only, and to change a header build a new value and ``Headers.set`` its str.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sip.errors import SipParseError

__all__ = [
    "CSeq",
    "NameAddress",
    "SipParseError",
    "SipUri",
    "Via",
    "is_token",
    "parse_max_forwards",
    "parse_top_via",
    "split_header_values",
]

# RFC 3261 §25.1 character classes, kept as regex fragments.
_TOKEN = r"A-Za-z0-9\-.!%*_+`'~"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_PARAMCHAR = _UNRESERVED + r"%\[\]/:&+$"
_HNVCHAR = _UNRESERVED + r"%\[\]/?:+$"
_HOST = r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.\-]+"
_QUOTED = r'"(?:[^"\\]|\\.)*"'

_TOKEN_RE = re.compile(f"[{_TOKEN}]+")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_USER_RE = re.compile(f"[{_UNRESERVED}%&=+$,;?/]+")
_PASSWORD_RE = re.compile(f"[{_UNRESERVED}%&=+$,]*")
# Every repeated group is delimited by a character its body cannot contain, so
# matching is linear: no backtracking blow-up on hostile input.
_HOSTPART_RE = re.compile(
    f"({_HOST})"
    r"(?::([0-9]{1,5}))?"
    f"((?:;[{_PARAMCHAR}]++(?:=[{_PARAMCHAR}]++)?)*+)"
    f"(?:\\?([{_HNVCHAR}]++=[{_HNVCHAR}]*+(?:&[{_HNVCHAR}]++=[{_HNVCHAR}]*+)*+))?\\Z"
)
_TEL_RE = re.compile(
    r"([0-9A-Fa-f*#+\-.()]++)"
    f"((?:;[{_PARAMCHAR}]++(?:=[{_PARAMCHAR}]++)?)*+)\\Z"
)
# absoluteURI is opaque to us; only characters that can never be in a URI are refused.
_OPAQUE_RE = re.compile(r"[!#-;=?-~]+")
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)
_ESCAPE_RE = re.compile(r'["\\\x00-\x08\x0b\x0c\x0e-\x1f\x7f]')
# A generic-param (RFC 3261 §25.1): gen-value is token, host (IPv6 unbracketed
# in "received") or quoted-string. LWS is allowed around ";" and "=".
_HPARAM_RE = re.compile(
    f"[ \\t]*;[ \\t]*([{_TOKEN}]+)(?:[ \\t]*=[ \\t]*({_QUOTED}|[{_TOKEN}\\[\\]:]+))?[ \\t]*",
    re.S,
)
_SIMPLE_HPARAMS_RE = re.compile(f"(?:;[{_TOKEN}]++(?:=[{_TOKEN}\\[\\]:]++)?)++")
# The usual sip: URI (no password, URI headers, ";" or "?" in the user part)
# takes one match; possessive quantifiers keep it linear.
_FAST_SIP_RE = re.compile(
    r"(sips?):(?:([A-Za-z0-9\-_.!~*'()%&=+$,]++)@)?"
    r"([A-Za-z0-9_.\-]++|\[[0-9A-Fa-f:.]++\])"
    r"(?::([0-9]{1,5}))?"
    f"((?:;[{_PARAMCHAR}]++(?:=[{_PARAMCHAR}]++)?)*+)\\Z"
)
_NAME_ADDR_RE = re.compile(
    r'[ \t]*+(?:"((?:[^"\\]|\\.)*+)"|'
    f"([{_TOKEN}]++(?:[ \\t]++[{_TOKEN}]++)*+))?"
    r"[ \t]*+<([^<>]*+)>",
    re.S,
)
# Fast paths for what nearly every peer sends: single spaces, plain parameters.
_SIMPLE_PARAMS = f"((?:;[{_TOKEN}]++(?:=[{_TOKEN}\\[\\]:]++)?)*+)\\Z"
_FAST_VIA_RE = re.compile(
    r"SIP/2\.0/(UDP|TCP|TLS|WSS?|SCTP) ([A-Za-z0-9_.\-]++|\[[0-9A-Fa-f:.]++\])(?::([0-9]{1,5}))?"
    + _SIMPLE_PARAMS
)
_FAST_NAME_ADDR_RE = re.compile(
    f'(?:"([^"\\\\]*+)" ?|([{_TOKEN}]++(?: [{_TOKEN}]++)*+) ?)?<([^<>]*+)>' + _SIMPLE_PARAMS
)
_VIA_RE = re.compile(
    f"SIP[ \\t]*/[ \\t]*2\\.0[ \\t]*/[ \\t]*([{_TOKEN}]+)[ \\t]+"
    f"({_HOST})"
    r"(?:[ \t]*:[ \t]*([0-9]{1,5}))?[ \t]*",
    re.I,
)
_CSEQ_RE = re.compile(f"[ \\t]*([0-9]{{1,10}})[ \\t]+([{_TOKEN}]+)[ \\t]*\\Z")
# A list element: runs of ordinary text, quoted strings or <...>. An unclosed
# quote or bracket swallows the rest, so the element parser sees the damage.
_ELEMENT_RE = re.compile(r'(?:[^,"<]++|"(?:[^"\\]|\\.)*+"|<[^>]*+>|["<].*+)++', re.S)

_MAX_PORT = 65535
_MAX_SEQ = 0xFFFFFFFF


def is_token(text: str) -> bool:
    """True if ``text`` is an RFC 3261 §25.1 token (method names, tags, params)."""
    return _TOKEN_RE.fullmatch(text) is not None


def split_header_values(value: str) -> list[str]:
    """Split a comma-separated header value into elements (RFC 3261 §7.3.1).

    Commas inside double quotes (with backslash escapes) or ``<...>`` do not
    split. Elements are stripped; empty elements are dropped.
    """
    if "," not in value:
        value = value.strip()
        return [value] if value else []
    parts = _ELEMENT_RE.findall(value) if '"' in value or "<" in value else value.split(",")
    return [p for p in (p.strip() for p in parts) if p]


def _split_params(text: str) -> dict[str, str | None]:
    # text is ";a=b;c..." already validated by a regex, so plain splitting is safe.
    params: dict[str, str | None] = {}
    for item in text[1:].split(";"):
        name, eq, value = item.partition("=")
        params[name.lower()] = value if eq else None
    return params


def _parse_header_params(text: str, pos: int) -> dict[str, str | None]:
    """Parse ``*( SEMI generic-param )`` from ``text[pos:]`` to the end."""
    if _SIMPLE_HPARAMS_RE.fullmatch(text, pos):
        # The common case (no LWS, no quoted values) needs no regex per parameter.
        return _split_params(text[pos:])
    params: dict[str, str | None] = {}
    end = len(text)
    while pos < end:
        m = _HPARAM_RE.match(text, pos)
        if m is None:
            if not text[pos:].strip(" \t"):
                break
            raise SipParseError("Bad parameter")
        params[m.group(1).lower()] = m.group(2)
        pos = m.end()
    return params


def _format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _quote(text: str) -> str:
    # CR and LF cannot be escaped in a quoted-string (RFC 3261 §25.1); dropping
    # them here stops a display name taken from user input injecting headers.
    if "\r" in text or "\n" in text:
        text = text.replace("\r", " ").replace("\n", " ")
    return '"' + _ESCAPE_RE.sub(lambda m: "\\" + m.group(0), text) + '"'


@dataclass(slots=True)
class SipUri:
    """A SIP, SIPS or tel URI (RFC 3261 §19.1.1, §25.1; RFC 3966), or an opaque one.

    ``scheme`` is lower-cased. For tel URIs the number is ``user`` and ``host``
    is empty. Any other scheme (RFC 3261 allows absoluteURI in To/From/Contact)
    keeps everything after the colon in ``opaque``; servers answer 416 to those
    in a Request-URI. Escapes are not decoded.
    """

    scheme: str
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    opaque: str | None = None

    @classmethod
    def parse(cls, text: str) -> SipUri:
        m = _FAST_SIP_RE.match(text)
        if m is not None:
            scheme, user, host, port_text, params_text = m.groups()
            port = None
            if port_text is not None:
                port = int(port_text)
                if port > _MAX_PORT:
                    raise SipParseError("Bad URI")
            params = _split_params(params_text) if params_text else {}
            return cls(scheme, user, None, host, port, params, {})
        scheme, colon, rest = text.partition(":")
        if not colon or _SCHEME_RE.fullmatch(scheme) is None:
            raise SipParseError("Bad URI")
        scheme = scheme.lower()
        if scheme == "sip" or scheme == "sips":
            return cls._parse_sip(scheme, rest)
        if scheme == "tel":
            m = _TEL_RE.match(rest)
            if m is None:
                raise SipParseError("Bad URI")
            params = _split_params(m.group(2)) if m.group(2) else {}
            return cls(scheme, m.group(1), None, "", None, params)
        if _OPAQUE_RE.fullmatch(rest) is None:
            raise SipParseError("Bad URI")
        return cls(scheme, opaque=rest)

    @classmethod
    def _parse_sip(cls, scheme: str, rest: str) -> SipUri:
        user = password = None
        # user and password cannot hold a raw "@", so the first one ends userinfo
        # even though user may contain ";" and "?" (RFC 4475 "semiuri").
        at = rest.find("@")
        if at >= 0:
            user, colon, pw = rest[:at].partition(":")
            if _USER_RE.fullmatch(user) is None:
                raise SipParseError("Bad URI")
            if colon:
                if _PASSWORD_RE.fullmatch(pw) is None:
                    raise SipParseError("Bad URI")
                password = pw
            rest = rest[at + 1 :]
        m = _HOSTPART_RE.match(rest)
        if m is None:
            raise SipParseError("Bad URI")
        host, port_text, params_text, headers_text = m.groups()
        port = None
        if port_text is not None:
            port = int(port_text)
            if port > _MAX_PORT:
                raise SipParseError("Bad URI")
        params = _split_params(params_text) if params_text else {}
        headers: dict[str, str] = {}
        if headers_text:
            for item in headers_text.split("&"):
                name, _, value = item.partition("=")
                headers[name] = value
        return cls(scheme, user, password, host, port, params, headers)

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        if self.scheme == "tel":
            text = f"tel:{self.user or ''}"
        else:
            text = f"{self.scheme}:"
            if self.user is not None:
                text += self.user
                if self.password is not None:
                    text += ":" + self.password
                text += "@"
            text += self.host
            if self.port is not None:
                text += f":{self.port}"
        if self.params:
            text += _format_params(self.params)
        if self.headers:
            text += "?" + "&".join(f"{k}={v}" for k, v in self.headers.items())
        return text

    @property
    def host_port(self) -> str:
        """``host:port``, or ``host`` when the URI has no port."""
        return self.host if self.port is None else f"{self.host}:{self.port}"


@dataclass(slots=True)
class NameAddress:
    """A name-addr or addr-spec with header parameters (RFC 3261 §20.10, §20.20, §20.39).

    Used for From, To, Contact, Route, Record-Route, Refer-To and the like.
    ``display_name`` is unquoted and unescaped (None when absent). In the
    addr-spec form without ``<>`` everything after the first ";" is a header
    parameter (RFC 3261 §20); a URI there may not hold ",", "?" or ";".
    Quoted parameter values keep their quotes. ``Contact: *`` is not a
    name-addr: callers test for it before parsing.
    """

    display_name: str | None
    uri: SipUri
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> NameAddress:
        m = _FAST_NAME_ADDR_RE.match(text)
        if m is not None:
            quoted, display, uri_text, params_text = m.groups()
            return cls(
                quoted if quoted is not None else display,
                SipUri.parse(uri_text),
                _split_params(params_text) if params_text else {},
            )
        m = _NAME_ADDR_RE.match(text)
        if m is not None:
            quoted, display, uri_text = m.groups()
            if quoted is not None:
                display = _UNESCAPE_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
            uri = SipUri.parse(uri_text)
            pos = m.end()
        else:
            s = text.strip(" \t")
            if s[:1] == '"':
                raise SipParseError(
                    "Unterminated quoted string" if s.count('"') == 1 else "Bad name-addr"
                )
            if "<" in s:
                raise SipParseError("Bad name-addr")
            # addr-spec: everything after the first ";" belongs to the header.
            pos = s.find(";")
            if pos < 0:
                pos = len(s)
            uri_text = s[:pos].rstrip(" \t")
            if not uri_text or "," in uri_text or "?" in uri_text:
                raise SipParseError("Bad addr-spec")
            uri = SipUri.parse(uri_text)
            display = None
            text = s
        params = _parse_header_params(text, pos) if pos < len(text) else {}
        return cls(display, uri, params)

    def __str__(self) -> str:
        # Always bracketed: safe whatever the URI holds, and never ambiguous
        # about whose parameters follow.
        text = f"<{self.uri}>"
        if self.display_name is not None:
            text = f"{_quote(self.display_name)} {text}"
        if self.params:
            text += _format_params(self.params)
        return text

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (RFC 3261 §19.3), or None."""
        return self.params.get("tag")


@dataclass(slots=True)
class Via:
    """One Via element (RFC 3261 §20.42, §18.2.1).

    ``transport`` is upper-cased and may be any token (RFC 4475 "transports"
    has SCTP and UNKNOWN). Flag parameters such as ``rport`` map to None.
    """

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Via:
        m = _FAST_VIA_RE.match(text)
        if m is not None:
            transport, host, port_text, params_text = m.groups()
            port = None
            if port_text is not None:
                port = int(port_text)
                if port > _MAX_PORT:
                    raise SipParseError("Bad Via")
            return cls(transport, host, port, _split_params(params_text) if params_text else {})
        s = text.strip(" \t")
        m = _VIA_RE.match(s)
        if m is None:
            raise SipParseError("Bad Via")
        transport, host, port_text = m.groups()
        port = None
        if port_text is not None:
            port = int(port_text)
            if port > _MAX_PORT:
                raise SipParseError("Bad Via")
        pos = m.end()
        params = _parse_header_params(s, pos) if pos < len(s) else {}
        return cls(transport.upper(), host, port, params)

    def __str__(self) -> str:
        text = f"SIP/2.0/{self.transport} {self.sent_by}"
        if self.params:
            text += _format_params(self.params)
        return text

    @property
    def branch(self) -> str | None:
        """The branch parameter; RFC 3261 §8.1.1.7 branches start with ``z9hG4bK``."""
        return self.params.get("branch")

    @property
    def sent_by(self) -> str:
        """``host:port``, or ``host`` when no port was sent (RFC 3261 §18.2.2)."""
        return self.host if self.port is None else f"{self.host}:{self.port}"


@dataclass(slots=True)
class CSeq:
    """The CSeq header (RFC 3261 §20.16): a 32-bit unsigned number and a method."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        m = _CSEQ_RE.match(text)
        if m is None:
            raise SipParseError("Bad CSeq")
        seq = int(m.group(1))
        if seq > _MAX_SEQ:
            raise SipParseError("Bad CSeq")
        return cls(seq, m.group(2))

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


def _first_element(value: str) -> str:
    if "," not in value:
        return value
    parts = split_header_values(value)
    return parts[0] if parts else ""


def parse_top_via(raw: str) -> Via:
    """The first Via of a Via header line (which may list several)."""
    return Via.parse(_first_element(raw))


def parse_max_forwards(raw: str) -> int:
    """A Max-Forwards value; raises SipParseError."""
    # 1*DIGIT in 0..255 (RFC 3261 §20.22); the length guard keeps int() cheap.
    if not (raw.isdigit() and raw.isascii() and len(raw) <= 5) or int(raw) > 255:
        raise SipParseError("Bad Max-Forwards")
    return int(raw)
