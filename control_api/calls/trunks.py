"""Outbound SIP trunks: where calls to phone numbers leave callswitch.

A trunk is a carrier's SIP entry point with the login it gives us, the number
prefixes it serves and its caller-ID rules. On the command line (and in
``CALLSWITCH_TRUNK``) one trunk is one string, a SIP URI after its name::

    carrier=sip:USER:PASS@HOST:PORT;transport=udp;prefix=+1;prefix=+44;caller_id=+15550100

and in ``callswitch.toml`` a ``[[trunk]]`` table with the keys ``name``,
``uri``, ``username``, ``password``, ``transport``, ``prefixes``,
``caller_id``, ``strip_plus``. A call to a number takes the trunk with the
longest matching prefix; a trunk without prefixes serves every number.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

__all__ = ["Trunk", "parse_trunk", "select_trunk"]

TRANSPORTS = ("udp", "tcp", "tls")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_PREFIX = re.compile(r"\+?[0-9]{0,15}")
_HOST_PORT = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?")


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
    headers: tuple[tuple[str, str], ...] = field(default=())

    def request_uri(self, number: str) -> str:
        user = number.lstrip("+") if self.strip_plus else number
        port = f":{self.port}" if self.port else ""
        suffix = "" if self.transport == "udp" else f";transport={self.transport}"
        return f"sip:{user}@{self.host}{port}{suffix}"

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
    scheme, colon, rest = uri.strip().partition(":")
    if not colon or scheme.lower() not in ("sip", "sips"):
        raise ValueError(f"trunk {name}: expected a sip: URI")
    rest, *params = rest.split(";")
    userinfo, at, host_port = rest.rpartition("@")
    username = password = None
    if at:
        user, _, secret = userinfo.partition(":")
        username, password = unquote(user) or None, unquote(secret) or None
    table: dict[str, Any] = {
        "name": name.strip(),
        "host": host_port,
        "username": username,
        "password": password,
        "transport": "tls" if scheme.lower() == "sips" else "udp",
        "prefixes": [],
    }
    for param in params:
        key, _, item = param.partition("=")
        key = key.strip().lower()
        if key == "prefix":
            table["prefixes"].append(item)
        elif key == "strip_plus":
            table["strip_plus"] = item.lower() not in ("0", "false", "no")
        elif key in ("transport", "caller_id"):
            table[key] = item
        else:
            raise ValueError(f"trunk {name}: unknown parameter {key!r}")
    return _from_table(table)


def _from_table(table: Mapping[str, Any]) -> Trunk:
    name = str(table.get("name") or "")
    if not _NAME.fullmatch(name):
        raise ValueError(f"bad trunk name {name!r}")
    host_port = str(table.get("host") or "")
    if "uri" in table:  # the TOML form may give a URI instead of host and port
        parsed = parse_trunk(f"{name}={table['uri']}")
        host_port = parsed.host + (f":{parsed.port}" if parsed.port else "")
        table = {**_as_table(parsed), **{k: v for k, v in table.items() if k != "uri"}}
    match = _HOST_PORT.fullmatch(host_port)
    if match is None:
        raise ValueError(f"trunk {name}: bad host {host_port!r}")
    host, port_text = match.groups()
    port = int(port_text) if port_text else None
    if port is not None and not 0 < port < 65536:
        raise ValueError(f"trunk {name}: bad port {port}")
    transport = str(table.get("transport") or "udp").lower()
    if transport not in TRANSPORTS:
        raise ValueError(f"trunk {name}: transport must be one of {', '.join(TRANSPORTS)}")
    prefixes = tuple(str(p) for p in _iterable(table.get("prefixes")))
    for prefix in prefixes:
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"trunk {name}: bad prefix {prefix!r}")
    caller_id = table.get("caller_id") or None
    return Trunk(
        name=name,
        host=host,
        port=port,
        transport=transport,
        username=table.get("username") or None,
        password=table.get("password") or None,
        prefixes=prefixes,
        caller_id=str(caller_id) if caller_id else None,
        strip_plus=bool(table.get("strip_plus", False)),
    )


def _as_table(trunk: Trunk) -> dict[str, Any]:
    return {
        "name": trunk.name,
        "host": trunk.host,
        "username": trunk.username,
        "password": trunk.password,
        "transport": trunk.transport,
        "prefixes": list(trunk.prefixes),
        "caller_id": trunk.caller_id,
        "strip_plus": trunk.strip_plus,
    }


def _iterable(value: Any) -> Iterable[Any]:
    if value is None:
        return ()
    if isinstance(value, str):
        return [item for item in value.split(",") if item]
    return value


def select_trunk(trunks: Iterable[Trunk], number: str) -> Trunk | None:
    """The trunk for ``number``: the longest matching prefix, first configured on a tie."""
    best, best_length = None, -1
    for trunk in trunks:
        length = trunk.serves(number)
        if length > best_length:
            best, best_length = trunk, length
    return best
