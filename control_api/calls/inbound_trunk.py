"""Which trunk an incoming INVITE came from, and the number it dialled.

A call is a trunk's when it arrives on that trunk's registration (on the flow we
registered over, or with the Request-URI user of the contact we registered, e.g.
``sip:acct@<our address>``), or from the address of one of the trunk's entry
points (its host, its ``host=`` ones, its ``outbound_proxy``; names resolved and
the answers cached, refreshed every few minutes).

The dialled number (the DID) of a trunk's call is where the trunk's ``did`` says:

* ``auto`` (the default): the Request-URI user when it is one of our numbers,
  else the ``To`` user (carriers that send INVITEs to the registered contact
  keep the DID in ``To``);
* ``ruri`` or ``to``: that user only;
* a header name (``X-DID``, ``P-Called-Party-ID``...): the number in it, bare or
  in a ``sip:``/``tel:`` URI.

Numbers are returned as the carrier wrote them (visual separators dropped); the
store's lookup takes them with or without ``+``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Iterable

from control_api.address_policy import ResolveError, resolve_all
from control_api.calls.trunk_registrations import TrunkRegistrations
from control_api.calls.trunks import Trunk
from sip.errors import SipParseError
from sip.headers import NameAddress, SipUri
from sip.message import Request
from sip.transport import Flow

__all__ = ["InboundTrunks", "dialled_number", "number_in"]

log = logging.getLogger("callswitch.calls")

REFRESH_S = 300.0  # how long a trunk host's resolved addresses are trusted
NUMBER = re.compile(r"\+?[0-9]{1,15}")
_SEPARATORS = str.maketrans("", "", " -.()")

Resolver = Callable[[str], Awaitable[list[str]]]


class InboundTrunks:
    """Says which of ``trunks`` an INVITE came from (see the module's docstring)."""

    def __init__(
        self,
        trunks: Iterable[Trunk],
        registrations: TrunkRegistrations | None = None,
        *,
        resolve: Resolver = resolve_all,
    ) -> None:
        self.trunks = list(trunks)
        self.registrations = registrations
        self._resolve = resolve
        self._by_address: dict[str, list[Trunk]] = {}
        for trunk in self.trunks:  # addresses known now; names once resolved (start)
            for host in _hosts(trunk):
                if _is_ip(host):
                    self._by_address.setdefault(_canonical(host), []).append(trunk)
        self._task: asyncio.Task[None] | None = None

    def trunk_of(self, request: Request, flow: Flow) -> Trunk | None:
        """The trunk ``request`` (received on ``flow``) came from, or None."""
        user = request.request_uri.user
        for registration in self.registrations or ():
            if registration.flow is flow and flow.reliable:
                return registration.trunk
            if user is not None and user == registration.contact_user:
                return registration.trunk
        found = self._by_address.get(_canonical(flow.remote[0]))
        return found[0] if found else None

    async def refresh(self) -> None:
        """Resolve every entry point of every trunk again."""
        by_address: dict[str, list[Trunk]] = {}
        for trunk in self.trunks:
            for host in _hosts(trunk):
                try:
                    addresses = [host] if _is_ip(host) else await self._resolve(host)
                except ResolveError as exc:
                    log.info("trunk.unresolved", extra={"trunk": trunk.name, "reason": str(exc)})
                    continue
                for address in addresses:
                    found = by_address.setdefault(_canonical(address), [])
                    if trunk not in found:
                        found.append(trunk)
        self._by_address = by_address

    def start(self) -> None:
        """Resolve the trunks' names in the background, again every ``REFRESH_S``."""
        if any(not _is_ip(host) for trunk in self.trunks for host in _hosts(trunk)):
            self._task = asyncio.get_running_loop().create_task(self._keep_fresh())

    async def _keep_fresh(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


def dialled_number(trunk: Trunk, request: Request, is_ours: Callable[[str], bool]) -> str | None:
    """The number a call from ``trunk`` dialled, per its ``did`` (module docstring);
    ``is_ours(number)`` says whether a Request-URI user is one of our numbers. None
    when the place holds no number."""
    if trunk.did == "ruri":
        return _user_number(request.request_uri)
    if trunk.did == "to":
        return _to_number(request)
    if trunk.did == "auto":
        number = _user_number(request.request_uri)
        if number is not None and is_ours(number):
            return number
        return _to_number(request)
    value = request.headers.get(trunk.did)
    return number_in(value) if value is not None else None


def number_in(value: str) -> str | None:
    """The number a header gives: bare (``+1 555 0100``) or the user of a ``sip:``,
    ``sips:`` or ``tel:`` URI (``<sip:+15550100@carrier>``, ``tel:+15550100``).
    Never raises on what a peer sent."""
    text = value.strip()
    if "<" in text or text.lower().startswith(("sip:", "sips:", "tel:")):
        try:
            if "<" in text:
                uri = NameAddress.parse(text).uri
            else:
                uri = SipUri.parse(text.split(";", 1)[0] if text[:4].lower() == "tel:" else text)
        except SipParseError:
            return None
        return _user_number(uri)
    return _as_number(text)


def _to_number(request: Request) -> str | None:
    try:
        return _user_number(request.to.uri)
    except SipParseError:
        return None


def _user_number(uri: SipUri) -> str | None:
    if uri.scheme not in ("sip", "sips", "tel") or uri.user is None:
        return None
    return _as_number(uri.user.split(";", 1)[0])


def _as_number(text: str) -> str | None:
    number = text.translate(_SEPARATORS)
    return number if NUMBER.fullmatch(number) else None


def _hosts(trunk: Trunk) -> list[str]:
    hosts = [host for host, _ in trunk.entry_points()]
    if trunk.outbound_proxy:
        with contextlib.suppress(SipParseError):
            hosts.append(SipUri.parse(trunk.outbound_proxy).host)
    return [host.strip("[]") for host in dict.fromkeys(hosts) if host]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _canonical(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address.lower()
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)
