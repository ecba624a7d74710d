"""An outbound proxy for the dialogs we start (RFC 3261 §8.1.2, §12.2.1.1), sans-I/O.

A carrier that gives an outbound proxy wants every request of a call to pass through
it. The INVITE carries a pre-loaded ``Route: <proxy;lr>`` (:func:`loose_route`) and
goes to the proxy's address while its Request-URI stays the carrier's; CANCEL and the
ACK of a non-2xx copy the INVITE's Route (sip/transaction.py). Requests within the
dialog follow its route set (the 2xx's Record-Route, reversed) with the proxy still
first (:func:`proxied_route_set`): when the proxy record-routed itself it already is,
else it is put in front, as Asterisk's ``outbound_proxy`` and FreeSWITCH's
``outbound-proxy`` do.
"""

from __future__ import annotations

from sip.errors import SipParseError
from sip.headers import NameAddress, SipUri

__all__ = ["loose_route", "proxied_route_set"]


def loose_route(proxy: str) -> str:
    """The Route header value naming ``proxy`` (a ``sip:``/``sips:`` URI, in angle
    brackets or not) as a loose router: ``<sip:host:port;lr>``."""
    uri = SipUri.parse(proxy.strip().removeprefix("<").removesuffix(">"))
    if "lr" not in uri.params:
        uri.params["lr"] = None
    return f"<{uri}>"


def proxied_route_set(
    route_set: list[str], proxy: str, remote: tuple[str, int] | None = None
) -> list[str]:
    """A UAC dialog's ``route_set`` (the 2xx's Record-Route, reversed) with ``proxy``
    first: unchanged when its first entry is the proxy (its host and port, or the
    address ``remote`` the INVITE was sent to), else the proxy in front of it."""
    if route_set and _is_proxy(route_set[0], proxy, remote):
        return list(route_set)
    return [loose_route(proxy), *route_set]


def _is_proxy(route: str, proxy: str, remote: tuple[str, int] | None) -> bool:
    try:
        first = NameAddress.parse(route).uri
        ours = SipUri.parse(proxy.strip().removeprefix("<").removesuffix(">"))
    except SipParseError:
        return False
    host, port = _host(first), _port(first)
    if host == _host(ours) and port == _port(ours):
        return True
    return remote is not None and host == remote[0].strip("[]").lower() and port == remote[1]


def _host(uri: SipUri) -> str:
    return uri.host.strip("[]").lower()


def _port(uri: SipUri) -> int:
    if uri.port is not None:
        return uri.port
    tls = uri.scheme == "sips" or (uri.params.get("transport") or "").lower() == "tls"
    return 5061 if tls else 5060
