"""Settings: one table, three sources (flags > environment > callswitch.toml).

The names here are a public interface (DESIGN.md): a flag ``--sip-port``, an
environment variable ``CALLSWITCH_SIP_PORT`` and a TOML key ``sip_port`` all
set the same field.
"""

from __future__ import annotations

import argparse
import fcntl
import ipaddress
import os
import re
import socket
import struct
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from control_api.calls.trunks import Trunk, parse_trunk
from control_api.sip_locator import parse_dns_server
from control_api.sms.smpp_carrier import SmppSettings, parse_smpp
from control_api.speech_provider import parse_speech_provider
from control_api.usage.pricing import PriceEntry, parse_price

__all__ = ["LINK_LOCAL", "PLANES", "ConfigError", "Settings", "add_arguments", "load_settings"]

PLANES = frozenset({"sip", "api", "turn", "webrtc"})


class ConfigError(ValueError):
    """A setting has a value we cannot use; the message names the setting."""


def _port(value: Any) -> int:
    port = int(value)
    if not 0 <= port <= 65535:
        raise ValueError("not a port number")
    return port


def _port_range(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = value
    else:
        low, _, high = str(value).partition("-")
    low, high = _port(low), _port(high)
    if not 0 < low < high:
        raise ValueError("expected A-B with 0 < A < B")
    return low, high


def _string_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return [str(item) for item in value]


def _planes(value: Any) -> frozenset[str]:
    names = frozenset(_string_list(value))
    unknown = names - PLANES - {"all"}
    if unknown:
        raise ValueError(
            f"unknown plane(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(sorted(PLANES))}"
        )
    return PLANES if "all" in names or not names else names


def _seconds(value: Any) -> float:
    seconds = float(value)
    if not 0 <= seconds < 86400:
        raise ValueError("expected seconds from 0 to 86399")
    return seconds


def _log_level(value: Any) -> str:
    level = str(value).lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError("expected debug, info, warning or error")
    return level


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _cidr(value: Any) -> list[str]:
    items = _string_list(value)
    for item in items:
        ipaddress.ip_network(item, strict=False)
    return items


# Cloud metadata services (169.254.169.254 and its IPv6 kin) answer on link-local
# addresses: no webhook ever needs them, so --fetch-deny always includes them.
LINK_LOCAL = ("169.254.0.0/16", "fe80::/10")


def _rtpengines(value: Any) -> list[str]:
    """``HOST:PORT[=WEIGHT]`` of each rtpengine instance (media/rtpengine/selection.py)."""
    from media.rtpengine.selection import parse_engine

    items = _string_list(value)
    for item in items:
        parse_engine(item)
    return items


def _dtmf_log(value: Any) -> str:
    """``--rtpengine-dtmf-log``: ``HOST:PORT`` to bind, or ``ng-tcp``."""
    from media.rtpengine.dtmf_listener import NG_TCP, parse_listen_address

    text = str(value).strip()
    if text.lower() == NG_TCP:
        return NG_TCP
    try:
        parse_listen_address(text)
    except ValueError:
        raise ValueError(f"expected HOST:PORT or {NG_TCP}") from None
    return text


def _fetch_deny(value: Any) -> list[str]:
    items = _cidr(value)
    return [*LINK_LOCAL, *(item for item in items if item not in LINK_LOCAL)]


def _existing_file(value: Any) -> str:
    path = str(value)
    if not Path(path).is_file():
        raise ValueError("no such file")
    return path


def _database_url(value: Any) -> str:
    """A SQLAlchemy URL of SQLite or PostgreSQL; the asyncio driver is chosen by the store."""
    text = str(value).strip()
    # libpq and most hosting providers also spell the scheme postgres://.
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://") :]
    try:
        url = make_url(text)
    except ArgumentError as exc:
        raise ValueError("expected postgresql://USER:PASS@HOST:PORT/DB or sqlite:///FILE") from exc
    backend, _, driver = url.drivername.partition("+")
    if (backend, driver) not in {
        ("postgresql", ""),
        ("postgresql", "asyncpg"),
        ("sqlite", ""),
        ("sqlite", "aiosqlite"),
    }:
        raise ValueError(f"unsupported database {url.drivername!r}: use postgresql:// or sqlite://")
    if backend == "postgresql" and not url.database:
        raise ValueError("name the database: postgresql://USER:PASS@HOST:PORT/DB")
    return text


# Where CALLSWITCH_TRUNK's next trunk starts: a comma before NAME=sip: (or sips:).
_NEXT_TRUNK = re.compile(r",\s*(?=[A-Za-z0-9_.-]{1,64}=sips?:)", re.IGNORECASE)


def _trunks(value: Any) -> list[Trunk]:
    if isinstance(value, str):
        items: list[Any] = [item for item in _NEXT_TRUNK.split(value) if item.strip()]
    else:
        items = [value] if isinstance(value, Mapping) else list(value)
    trunks = [parse_trunk(item) for item in items]
    names = [trunk.name for trunk in trunks]
    if len(set(names)) != len(names):
        raise ValueError("two trunks have the same name")
    return trunks


def _turn_users(value: Any) -> list[str]:
    items = _string_list(value)
    for item in items:
        if ":" not in item:
            raise ValueError("expected USER:PASS")
    return items


def _prices(value: Any) -> list[PriceEntry]:
    return [parse_price(item) for item in _string_list(value)]


def _smpp(value: Any) -> list[SmppSettings]:
    items = [value] if isinstance(value, str) else list(value)
    carriers = [parse_smpp(item) for item in items]
    names = [carrier.name for carrier in carriers]
    if len(set(names)) != len(names):
        raise ValueError("two SMPP carriers have the same name")
    return carriers


def _dns_server(value: Any) -> tuple[str, int]:
    return parse_dns_server(str(value))


def _http_url(value: Any) -> str:
    url = str(value)
    if not url.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return url


def _node_id(value: Any) -> str:
    text = str(value).strip()
    if not 0 < len(text) <= 64 or not text.isprintable() or " " in text:
        raise ValueError("expected 1 to 64 printable characters without spaces")
    return text


def _speech_provider(value: Any) -> str:
    text = str(value).strip()
    parse_speech_provider(text)  # ValueError names the fault
    return text


def _count(value: Any) -> int:
    count = int(value)
    if count < 0:
        raise ValueError("expected a whole number, 0 or more")
    return count


def _rate(value: Any) -> float:
    rate = float(value)
    if not 0 <= rate <= 1_000_000:
        raise ValueError("expected a rate from 0 to 1000000 per second")
    return rate


def _lease(value: Any) -> float:
    seconds = _seconds(value)
    if seconds < 1:
        raise ValueError("expected at least 1 second")
    return seconds


def _ice_servers(value: Any) -> list[str]:
    """``stun:HOST[:PORT]`` or ``turn[s]:USER:PASS@HOST[:PORT][?transport=udp|tcp]``."""
    items = _string_list(value)
    for item in items:
        scheme, colon, rest = item.partition(":")
        if not colon or scheme not in ("stun", "stuns", "turn", "turns") or not rest:
            raise ValueError("expected stun:HOST:PORT or turn:USER:PASS@HOST:PORT")
        if scheme.startswith("turn") and "@" not in rest:
            raise ValueError("a TURN server needs USER:PASS@ before its host")
    return items


@dataclass(frozen=True, slots=True)
class Option:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    help: str
    metavar: str | None = None
    repeatable: bool = False
    switch: bool = False  # a flag without a value (``--demo``)
    secret: bool = False  # may hold a password: never repeated in an error

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "CALLSWITCH_" + self.name.upper()


OPTIONS: tuple[Option, ...] = (
    Option("data_dir", str, "./callswitch-data", "SQLite store, recordings, caches", "DIR"),
    Option(
        "database_url",
        _database_url,
        None,
        "the store: postgresql://USER:PASS@HOST:PORT/DB (default: SQLite under --data-dir)",
        "URL",
        secret=True,
    ),
    Option("bind", str, "0.0.0.0", "address every listener binds", "ADDR"),
    Option(
        "public_address",
        str,
        None,
        "address written into SDP, Via/Contact, TURN relays (default: first non-loopback)",
        "ADDR",
    ),
    Option("http_port", _port, 8080, "REST API, browser signaling, /phone, /metrics", "N"),
    Option("sip_port", _port, 5060, "SIP over UDP and TCP", "N"),
    Option("sip_tls_port", _port, 5061, "SIP over TLS", "N"),
    Option(
        "sip_tls_cert",
        _existing_file,
        None,
        "PEM certificate chain for SIP over TLS (no TLS listener without it)",
        "FILE",
    ),
    Option(
        "sip_tls_key",
        _existing_file,
        None,
        "PEM private key of --sip-tls-cert (default: read from the certificate file)",
        "FILE",
    ),
    Option(
        "sip_tls_ca",
        _existing_file,
        None,
        "CA file to verify SIP TLS peers we connect to (default: not verified)",
        "FILE",
    ),
    Option("sip_ws_port", _port, 5066, "SIP over WebSocket (RFC 7118; 0: no listener)", "N"),
    Option(
        "sip_wss_port",
        _port,
        5067,
        "SIP over secure WebSocket, with --http-tls-cert (0: no listener)",
        "N",
    ),
    Option(
        "http_tls_cert",
        _existing_file,
        None,
        "PEM certificate chain for HTTPS/WSS (and SIP over WSS)",
        "FILE",
    ),
    Option(
        "http_tls_key",
        _existing_file,
        None,
        "PEM private key of --http-tls-cert (default: read from the certificate file)",
        "FILE",
    ),
    Option("turn_port", _port, 3478, "TURN over UDP and TCP", "N"),
    Option("turn_tls_port", _port, 5349, "TURN over TLS", "N"),
    Option("rtp_ports", _port_range, (20000, 29999), "RTP ports", "A-B"),
    Option("relay_ports", _port_range, (30000, 39999), "TURN relay ports", "A-B"),
    Option("turn_realm", str, "callswitch", "TURN realm", "R"),
    Option("turn_user", _turn_users, [], "static TURN user (repeatable)", "USER:PASS", True),
    Option("turn_secret", str, None, "shared secret for TURN REST credentials", "S"),
    Option(
        "turn_allow_peer", _cidr, [], "let TURN relay to a denied range (repeatable)", "CIDR", True
    ),
    Option(
        "trunk",
        _trunks,
        [],
        "outbound SIP trunk NAME=sip:USER:PASS@HOST:PORT;prefix=+1;caller_id=+1555... (repeatable)",
        "TRUNK",
        True,
    ),
    Option(
        "smpp",
        _smpp,
        [],
        "SMPP 3.4 SMSC for SMS, NAME=smpp://SYSTEM_ID:PASSWORD@HOST:PORT;system_type=..;"
        "window=10;prefix=+1 (repeatable)",
        "SMSC",
        True,
    ),
    Option(
        "price",
        _prices,
        [],
        "price of a usage category, CATEGORY[:PREFIX]=AMOUNT, e.g. sms-outbound=0.0079 "
        "(repeatable; see docs/billing.md)",
        "PRICE",
        True,
    ),
    Option(
        "billing_webhook",
        _http_url,
        None,
        "URL that gets a signed billing event per priced call and message",
        "URL",
    ),
    Option(
        "ice_server",
        _ice_servers,
        [],
        "STUN/TURN server for browser (WebRTC) calls, e.g. turn:u:p@host:3478 (repeatable)",
        "URL",
        True,
    ),
    Option("only", _planes, PLANES, "run only these planes, e.g. turn or sip,api", "PLANES"),
    Option(
        "drain_timeout",
        _seconds,
        0.0,
        "on SIGTERM, refuse new calls and let current ones finish for up to this long "
        "before hanging them up (default 0: hang up at once); a second signal stops at once",
        "S",
    ),
    Option(
        "node_id",
        _node_id,
        None,
        "this node's name among nodes sharing one --database-url (default: HOSTNAME:SIP_PORT)",
        "ID",
    ),
    Option(
        "node_url",
        _http_url,
        None,
        "where other nodes reach this node's HTTP port (default: http://PUBLIC_ADDRESS:HTTP_PORT)",
        "URL",
    ),
    Option(
        "node_lease",
        _lease,
        30.0,
        "a node whose heartbeat is older than this is lost: its live calls are marked failed",
        "S",
    ),
    Option(
        "rtp_timeout",
        _seconds,
        60.0,
        "hang up a call whose legs receive no RTP or RTCP for this long (0: never)",
        "S",
    ),
    Option(
        "rtp_hold_timeout",
        _seconds,
        3600.0,
        "the same for a call on hold (sendonly or inactive) (0: never)",
        "S",
    ),
    Option(
        "dial_deny",
        _cidr,
        [],
        "addresses that sip: targets of <Dial>, REST calls and REFER may not reach (repeatable)",
        "CIDR",
        True,
    ),
    Option(
        "dns_server",
        _dns_server,
        None,
        "DNS server for trunk hosts and sip: targets (NAPTR/SRV/A, RFC 3263; default: the "
        "system's resolvers)",
        "HOST[:PORT]",
    ),
    Option(
        "fetch_deny",
        _fetch_deny,
        list(LINK_LOCAL),
        "addresses webhook, <Play>, callback and stream URLs may not reach (repeatable; "
        "always added to link-local, where cloud metadata lives)",
        "CIDR",
        True,
    ),
    Option(
        "sip_rate_limit",
        _rate,
        20.0,
        "INVITEs and REGISTERs per second one source address may send (bursts of 5x; 0: no limit)",
        "N",
    ),
    Option(
        "max_calls_per_ip",
        _count,
        100,
        "concurrent inbound calls from one source address (0: no limit)",
        "N",
    ),
    Option(
        "max_connections_per_ip",
        _count,
        100,
        "concurrent TCP, TLS and WebSocket connections from one source address (0: no limit)",
        "N",
    ),
    Option(
        "trusted_peer",
        _cidr,
        [],
        "sources exempt from the per-source limits, e.g. a proxy in front (repeatable)",
        "CIDR",
        True,
    ),
    Option(
        "auth_max_failures",
        _count,
        10,
        "failed digests per (username, source) within --auth-lockout before further "
        "attempts are refused (0: no limit)",
        "N",
    ),
    Option(
        "auth_lockout",
        _seconds,
        60.0,
        "the window of --auth-max-failures and how long a locked-out source waits",
        "S",
    ),
    Option(
        "audio_cache_mb",
        _count,
        256,
        "bound on decoded audio held for <Play>, in megabytes",
        "N",
    ),
    Option(
        "metrics_token",
        str,
        None,
        "bearer token /metrics requires (default: none required)",
        "T",
        secret=True,
    ),
    Option(
        "speech_provider",
        _speech_provider,
        "embedded",
        "speech recognition: embedded (PocketSphinx, offline) or openai:URL "
        "(an OpenAI-compatible /v1/audio/transcriptions endpoint)",
        "SPEC",
    ),
    Option(
        "speech_api_key",
        str,
        None,
        "bearer key for the speech provider (never logged)",
        "KEY",
        secret=True,
    ),
    Option("speech_model", str, None, "the speech provider's model (openai: whisper-1)", "NAME"),
    Option(
        "rtpengine",
        _rtpengines,
        [],
        "hand SIP-to-SIP <Dial> bridges to rtpengine over its ng protocol, "
        "HOST:PORT[=WEIGHT] (repeatable; docs/rtpengine.md)",
        "HOST:PORT",
        True,
    ),
    Option(
        "rtpengine_dtmf_log",
        _dtmf_log,
        None,
        "how rtpengine's DTMF events reach this node (hangupOnStar on its bridges): "
        "HOST:PORT to bind, where its --dtmf-log-dest sends them, or ng-tcp, a "
        "connection to each instance's ng port (--dtmf-log-ng-tcp; docs/rtpengine.md)",
        "HOST:PORT|ng-tcp",
    ),
    Option(
        "admin_token",
        str,
        None,
        "bearer token of the operator endpoints (/admin/rtpengine: drain an "
        "instance); none: they are off",
        "T",
        secret=True,
    ),
    Option("log_level", _log_level, "info", "debug, info, warning or error", "LEVEL"),
    Option("demo", _boolean, False, "create the demo number 1000 and its TwiML app", switch=True),
    Option(
        "verified_caller_ids",
        _boolean,
        False,
        "REST calls' From must be a number of the account or a verified caller ID (21210)",
        switch=True,
    ),
)


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: str = "./callswitch-data"
    database_url: str | None = None
    bind: str = "0.0.0.0"
    public_address: str = "127.0.0.1"
    http_port: int = 8080
    sip_port: int = 5060
    sip_tls_port: int = 5061
    sip_tls_cert: str | None = None
    sip_tls_key: str | None = None
    sip_tls_ca: str | None = None
    sip_ws_port: int = 5066
    sip_wss_port: int = 5067
    http_tls_cert: str | None = None
    http_tls_key: str | None = None
    turn_port: int = 3478
    turn_tls_port: int = 5349
    rtp_ports: tuple[int, int] = (20000, 29999)
    relay_ports: tuple[int, int] = (30000, 39999)
    turn_realm: str = "callswitch"
    turn_user: list[str] = field(default_factory=list)
    turn_secret: str | None = None
    turn_allow_peer: list[str] = field(default_factory=list)
    trunk: list[Trunk] = field(default_factory=list)
    smpp: list[SmppSettings] = field(default_factory=list)
    price: list[PriceEntry] = field(default_factory=list)
    billing_webhook: str | None = None
    ice_server: list[str] = field(default_factory=list)
    only: frozenset[str] = PLANES
    drain_timeout: float = 0.0
    node_id: str = "localhost:5060"
    node_url: str | None = None
    node_lease: float = 30.0
    rtp_timeout: float = 60.0
    rtp_hold_timeout: float = 3600.0
    dial_deny: list[str] = field(default_factory=list)
    dns_server: tuple[str, int] | None = None
    fetch_deny: list[str] = field(default_factory=lambda: list(LINK_LOCAL))
    sip_rate_limit: float = 20.0
    max_calls_per_ip: int = 100
    max_connections_per_ip: int = 100
    trusted_peer: list[str] = field(default_factory=list)
    auth_max_failures: int = 10
    auth_lockout: float = 60.0
    audio_cache_mb: int = 256
    metrics_token: str | None = None
    speech_provider: str = "embedded"
    speech_api_key: str | None = None
    speech_model: str | None = None
    rtpengine: list[str] = field(default_factory=list)
    rtpengine_dtmf_log: str | None = None
    admin_token: str | None = None
    log_level: str = "info"
    demo: bool = False
    verified_caller_ids: bool = False
    config: str | None = None
    account_sid: str | None = None
    auth_token: str | None = None

    def runs(self, plane: str) -> bool:
        return plane in self.only


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add every setting as a flag; unset flags stay None so lower sources show through."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="settings file (default: callswitch.toml if present)",
    )
    for option in OPTIONS:
        if option.switch:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action="store_const",
                const=True,
                default=None,
                help=f"{option.help} [env {option.env}]",
            )
            continue
        parser.add_argument(
            option.flag,
            dest=option.name,
            metavar=option.metavar,
            default=None,
            action="append" if option.repeatable else "store",
            help=f"{option.help} [env {option.env}]",
        )


def load_settings(
    args: argparse.Namespace | Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Merge flags, environment and file, validate, and fill in derived defaults."""
    flags = vars(args) if isinstance(args, argparse.Namespace) else dict(args or {})
    environ = os.environ if environ is None else environ
    config_path = flags.get("config") or environ.get("CALLSWITCH_CONFIG")
    file_values: dict[str, Any] = {}
    if config_path or Path("callswitch.toml").is_file():
        path = Path(config_path or "callswitch.toml")
        try:
            with path.open("rb") as handle:
                document = tomllib.load(handle)
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config file {path}: {exc}") from exc
        file_values = {key.replace("-", "_"): value for key, value in document.items()}
        known = {option.name for option in OPTIONS}
        unknown = set(file_values) - known
        if unknown:
            raise ConfigError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {"config": config_path}
    for option in OPTIONS:
        raw, source = None, None
        if flags.get(option.name) is not None:
            raw, source = flags[option.name], option.flag
            if option.repeatable:
                raw = [item for value in raw for item in _string_list(value)]
        elif option.env in environ:
            raw, source = environ[option.env], option.env
        elif option.name in file_values:
            raw, source = file_values[option.name], f"{option.name} in the config file"
        if source is None:
            values[option.name] = option.default
            continue
        try:
            values[option.name] = option.parse(raw)
        except (ValueError, TypeError) as exc:
            shown = "" if option.secret else f" {raw!r}"
            raise ConfigError(f"{source}: bad value{shown}: {exc}") from exc
    if values.get("http_tls_key") and not values.get("http_tls_cert"):
        raise ConfigError("--http-tls-key needs --http-tls-cert")
    if values["public_address"] is None:
        values["public_address"] = default_public_address(values["bind"])
    if values["node_id"] is None:
        values["node_id"] = f"{socket.gethostname()}:{values['sip_port']}"[:64]
    values["account_sid"] = environ.get("CALLSWITCH_ACCOUNT_SID")
    values["auth_token"] = environ.get("CALLSWITCH_AUTH_TOKEN")
    return Settings(**{f.name: values[f.name] for f in fields(Settings) if f.name in values})


def default_public_address(bind: str) -> str:
    """The bind address when it is a specific one, else the first non-loopback address."""
    try:
        address = ipaddress.ip_address(bind)
    except ValueError:
        return bind
    if not address.is_unspecified:
        return bind
    for candidate in _interface_addresses():
        if not ipaddress.ip_address(candidate).is_loopback:
            return candidate
    return "127.0.0.1"


def _interface_addresses() -> list[str]:
    """IPv4 addresses of the interfaces, in interface order (Linux ioctl, no traffic)."""
    found = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            try:
                reply = fcntl.ioctl(sock.fileno(), 0x8915, request)  # SIOCGIFADDR
            except OSError:
                continue
            found.append(socket.inet_ntoa(reply[20:24]))
    return found
