"""SIP trunks: a carrier's entry points, how we log in, and the rules of its numbers.

A trunk is a carrier's SIP entry point with the login it gives us, the number
prefixes it serves and its caller-ID rules. On the command line (and in
``CALLSWITCH_TRUNK``) one trunk is one string, a SIP URI after its name::

    carrier=sip:USER:PASS@HOST:PORT;transport=udp;prefix=+1;prefix=+44;caller_id=+15550100

and in ``callswitch.toml`` a ``[[trunk]]`` table with the same keys (``uri`` or
``host``, ``username``, ``password``, ``prefixes``, ``hosts`` ...). The
parameters (docs/routing.md has the whole table):

- routing: ``prefix`` (repeatable), ``order`` (lower is tried first among trunks
  serving a number), ``host=HOST[:PORT]`` (repeatable: more entry points, tried in
  turn after the URI's host), ``ping=S`` (OPTIONS every S seconds; 0: never);
- registration: ``register`` (keep a registration with the carrier so its calls
  reach us), ``register_expires=S``, ``register_user=``, ``auth_user=``,
  ``outbound_proxy=sip:...``;
- security: ``srtp=mandatory|optional`` (SDES on calls we place; a ``sips:`` or
  ``transport=tls`` trunk offers it by default, ``srtp=off`` does not);
- numbers: ``caller_id``, ``strip_plus``, ``country_code=CC`` with
  ``national_prefix=P`` (numbers without ``+`` the carrier sends, and how we dial
  numbers of that country), ``did=auto|ruri|to|HEADER`` (where an inbound call's
  dialled number is), ``pai`` (send ``P-Asserted-Identity`` with the caller).

A call to a number takes the trunks that serve it, longest matching prefix
first, then by ``order``, then as configured; a trunk without prefixes serves
every number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from sip.errors import SipParseError
from sip.headers import SipUri

__all__ = ["Trunk", "parse_trunk", "select_trunk", "select_trunks"]

TRANSPORTS = ("udp", "tcp", "tls")
SRTP_MODES = ("off", "optional", "mandatory")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PREFIX = re.compile(r"\+?[0-9]{0,15}")
_DIGITS = re.compile(r"[0-9]{1,4}")
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?")
_HEADER = re.compile(r"[A-Za-z0-9!%*_+`'~.-]{1,64}")
_FALSE = ("0", "false", "no", "off")

# The string form's parameters and the kind of value each takes.
_FLAGS = ("strip_plus", "register", "pai")
_NUMBERS = ("order", "ping", "register_expires")
_TEXTS = (
    "transport",
    "caller_id",
    "register_user",
    "auth_user",
    "outbound_proxy",
    "srtp",
    "did",
    "country_code",
    "national_prefix",
)


@dataclass(frozen=True, slots=True)
class Trunk:
    name: str
    host: str
    port: int | None = None
    transport: str = "udp"
    username: str | None = None
    password: str | None = None
    prefixes: tuple[str, ...] = ()
    caller_id: str | None = None  # forced on every call, else the call's From
    strip_plus: bool = False  # dial 15551234567 rather than +15551234567
    hosts: tuple[tuple[str, int | None], ...] = ()  # more entry points, after host:port
    order: int = 0  # among trunks serving a number, lower is tried first
    ping: int = 0  # OPTIONS keep-alive and health check every S seconds (0: never)
    register: bool = False  # keep a registration with the carrier
    register_expires: int = 3600
    register_user: str | None = None  # the AOR's user; default username
    auth_user: str | None = None  # the digest username; default username
    outbound_proxy: str | None = None  # a sip: URI every request goes through
    srtp: str = "off"  # off, optional or mandatory (SDES on the calls we place)
    did: str = "auto"  # auto, ruri, to or a header name: where the dialled number is
    country_code: str | None = None  # e.g. "44": national numbers are +44...
    national_prefix: str | None = None  # e.g. "0": 020... is +4420...
    pai: bool = False  # send P-Asserted-Identity with the caller's number

    def request_uri(self, number: str) -> str:
        user = number.lstrip("+") if self.strip_plus else number
        port = f":{self.port}" if self.port else ""
        suffix = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"sip:{user}@{self.host}{port}{suffix}"

    def entry_points(self) -> tuple[tuple[str, int | None], ...]:
        """Every configured host of the trunk, in the order they are tried."""
        return ((self.host, self.port), *self.hosts)

    @property
    def aor_user(self) -> str | None:
        """The user of the address of record we register (``register_user``)."""
        return self.register_user or self.username

    @property
    def digest_user(self) -> str | None:
        """The username our digest answers carry (``auth_user``)."""
        return self.auth_user or self.username

    def serves(self, number: str) -> int:
        """The length of the longest prefix matching ``number``; -1 when none does."""
        if not self.prefixes:
            return 0
        digits = number.lstrip("+")
        best = -1
        for prefix in self.prefixes:
            if digits.startswith(prefix.lstrip("+")):
                best = max(best, len(prefix.lstrip("+")))
        return best


def parse_trunk(value: str | Mapping[str, Any]) -> Trunk:
    """A trunk from its string or TOML form; ValueError says what is wrong."""
    if isinstance(value, Mapping):
        return _from_table(value)
    name, equals, uri = str(value).partition("=")
    if not equals:
        raise ValueError("expected NAME=sip:[USER[:PASS]@]HOST[:PORT][;param=value...]")
    table: dict[str, Any] = {"name": name.strip(), **_uri_fields(name.strip(), uri)}
    return _from_table(table)


def _uri_fields(name: str, uri: str) -> dict[str, Any]:
    scheme, colon, rest = uri.strip().partition(":")
    if not colon or scheme.lower() not in ("sip", "sips"):
        raise ValueError(f"trunk {name}: expected a sip: URI")
    rest, *params = rest.split(";")
    userinfo, at, host_port = rest.rpartition("@")
    username = password = None
    if at:
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    fields: dict[str, Any] = {
        "host": host_port,
        "username": username,
        "password": password,
        "transport": "tls" if scheme.lower() == "sips" else "udp",
        "prefixes": [],
        "hosts": [],
    }
    for param in params:
        key, _, item = param.partition("=")
        key = key.strip().lower()
        if key == "prefix":
            fields["prefixes"].append(item)
        elif key == "host":
            fields["hosts"].append(item)
        elif key in _FLAGS:
            fields[key] = item.lower() not in _FALSE
        elif key in _NUMBERS or key in _TEXTS:
            fields[key] = item
        else:
            raise ValueError(f"trunk {name}: unknown parameter {key!r}")
    return fields


def _from_table(table: Mapping[str, Any]) -> Trunk:
    name = str(table.get("name") or "")
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad trunk name {name!r}")
    if "uri" in table:  # the TOML form may give a URI instead of host and port
        from_uri = _uri_fields(name, str(table["uri"]))
        table = {**from_uri, **{k: v for k, v in table.items() if k != "uri"}}
    host, port = _host_port(name, str(table.get("host") or ""))
    transport = str(table.get("transport") or "udp").lower()
    if transport not in TRANSPORTS:
        raise ValueError(f"trunk {name}: transport must be one of {', '.join(TRANSPORTS)}")
    prefixes = tuple(str(p) for p in _iterable(table.get("prefixes")))
    for prefix in prefixes:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"trunk {name}: bad prefix {prefix!r}")
    srtp = str(table.get("srtp") or ("optional" if transport == "tls" else "off")).lower()
    if srtp not in SRTP_MODES:
        raise ValueError(f"trunk {name}: srtp must be one of {', '.join(SRTP_MODES)}")
    did = str(table.get("did") or "auto")
    if did.lower() in ("auto", "ruri", "to"):
        did = did.lower()
    elif not _HEADER.fullmatch(did):
        raise ValueError(f"trunk {name}: did must be auto, ruri, to or a header name")
    proxy = _text(table.get("outbound_proxy"))
    if proxy is not None:
        proxy = proxy.strip().removeprefix("<").removesuffix(">")
    if proxy is not None and not _sip_uri(proxy):
        raise ValueError(f"trunk {name}: outbound_proxy must be a sip: URI")
    for key in ("country_code", "national_prefix"):
        if _text(table.get(key)) is not None and not _DIGITS.fullmatch(str(table[key])):
            raise ValueError(f"trunk {name}: {key} must be 1 to 4 digits")
    return Trunk(
        name=name,
        host=host,
        port=port,
        transport=transport,
        username=_text(table.get("username")),
        password=_text(table.get("password")),
        prefixes=prefixes,
        caller_id=_text(table.get("caller_id")),
        strip_plus=_flag(table.get("strip_plus")),
        hosts=tuple(_host_port(name, str(h)) for h in _iterable(table.get("hosts"))),
        order=_number(name, "order", table.get("order"), 0, low=-(10**6)),
        ping=_number(name, "ping", table.get("ping"), 0, low=0),
        register=_flag(table.get("register")),
        register_expires=_number(name, "register_expires", table.get("register_expires"), 3600),
        register_user=_text(table.get("register_user")),
        auth_user=_text(table.get("auth_user")),
        outbound_proxy=proxy,
        srtp=srtp,
        did=did,
        country_code=_text(table.get("country_code")),
        national_prefix=_text(table.get("national_prefix")),
        pai=_flag(table.get("pai")),
    )


def _sip_uri(text: str) -> bool:
    """Whether ``text`` is a ``sip:``/``sips:`` URI with a host (an outbound proxy)."""
    try:
        uri = SipUri.parse(text)
    except SipParseError:
        return False
    return uri.scheme in ("sip", "sips") and bool(uri.host)


def _host_port(name: str, text: str) -> tuple[str, int | None]:
    match = _HOST_PORT.fullmatch(text)
    if match is None:
        raise ValueError(f"trunk {name}: bad host {text!r}")
    host, port_text = match.groups()
    port = int(port_text) if port_text else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"trunk {name}: bad port {port}")
    return host, port


def _number(name: str, key: str, value: Any, default: int, *, low: int = 1) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"trunk {name}: {key} must be a whole number") from None
    if not low <= number <= 10**6:
        raise ValueError(f"trunk {name}: {key} out of range")
    return number


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() not in _FALSE
    return bool(value)


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _iterable(value: Any) -> Iterable[Any]:
    if value is None:
        return ()
    if isinstance(value, str):
        return [item for item in value.split(",") if item]
    return value


def select_trunks(trunks: Iterable[Trunk], number: str) -> list[Trunk]:
    """Every trunk serving ``number`` in the order to try them: the longest matching
    prefix first, then ``order``, then as configured."""
    ranked = [(-t.serves(number), t.order, i, t) for i, t in enumerate(trunks)]
    return [trunk for length, _, _, trunk in sorted(ranked) if length <= 0]


def select_trunk(trunks: Iterable[Trunk], number: str) -> Trunk | None:
    """The first trunk to try for ``number`` (:func:`select_trunks`)."""
    found = select_trunks(trunks, number)
    return found[0] if found else None
