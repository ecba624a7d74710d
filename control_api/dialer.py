"""Where a dialled address goes, and the calls that go there.

``To`` of a REST call and the nouns of ``<Dial>`` name a party four ways
(reference §2): an E.164 number (one of ours loops back in as an inbound
call; any other leaves through the trunk with the longest matching prefix),
``client:alice`` (every phone registered as alice for the account), a
``sip:`` URI of a registered user at our address (the same), or any other
``sip:`` URI (called directly). :class:`Dialer` turns each into
:class:`~control_api.outbound_call.Destination` values and places calls.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Sequence

from control_api.call import MediaSettings
from control_api.outbound_call import Destination, OutboundCall
from control_api.trunks import Trunk, select_trunk
from sip.errors import SipParseError
from sip.headers import SipUri
from sip.ua import UserAgent
from sip.uac import SipCredentials

__all__ = ["DialError", "Dialer"]

log = logging.getLogger("callswitch.calls")

PHONE = re.compile(r"\+?[0-9]{3,15}")


class DialError(Exception):
    """The address cannot be called: nothing routes there."""


class Dialer:
    def __init__(
        self,
        ua: UserAgent,
        media: MediaSettings,
        trunks: Sequence[Trunk],
        *,
        local_addresses: frozenset[str],
        self_address: tuple[str, int],
        is_our_number: Callable[[str], Awaitable[bool]],
        registrar=None,
    ) -> None:
        self.ua = ua
        self.media = media
        self.trunks = list(trunks)
        self.local_addresses = local_addresses  # hosts that mean "this node"
        self.self_address = self_address  # where our own SIP listener is reachable
        self.is_our_number = is_our_number
        self.registrar = registrar
        self._calls: list[OutboundCall] = []

    async def resolve(
        self,
        account_sid: str,
        address: str,
        *,
        username: str | None = None,
        password: str | None = None,
    ) -> list[Destination]:
        """Every destination ``address`` rings (several for a user on several phones)."""
        address = address.strip()
        credentials = SipCredentials(username, password or "") if username else None
        if address.lower().startswith("client:"):
            return self._registered(account_sid, address[7:], address)
        if address.lower().startswith(("sip:", "sips:")):
            try:
                uri = SipUri.parse(address)
            except SipParseError:
                raise DialError(f"not a SIP URI: {address}") from None
            if uri.user and self._is_local(uri):
                registered = self._registered(account_sid, uri.user, address)
                if registered:
                    return registered
            return [await self._direct(uri, address, credentials)]
        number = address.replace(" ", "").replace("-", "")
        if not PHONE.fullmatch(number):
            raise DialError(f"not a phone number, client: or sip: address: {address}")
        if not number.startswith("+"):
            number = "+" + number
        if await self.is_our_number(number):
            host, port = self.self_address
            flow = self.ua.flow_for("UDP", host, port)
            if flow is None:
                raise DialError("cannot reach our own SIP port")
            target = f"sip:{number}@{self.ua.host_port()}"
            return [Destination(target, flow, kind="number", label=number)]
        trunk = select_trunk(self.trunks, number)
        if trunk is None:
            raise DialError(f"no trunk serves {number}")
        uri = SipUri.parse(trunk.request_uri(number))
        login = credentials
        if login is None and trunk.username:
            login = SipCredentials(trunk.username, trunk.password or "")
        destination = await self._direct(uri, number, login, transport=trunk.transport)
        return [
            Destination(destination.target, destination.flow, login, kind="trunk", label=number)
        ]

    def trunk_for(self, number: str) -> Trunk | None:
        return select_trunk(self.trunks, number)

    def _is_local(self, uri: SipUri) -> bool:
        host = uri.host.strip("[]")
        port = uri.port or 5060
        return host in self.local_addresses and port == self.ua.port

    def _registered(self, account_sid: str, user: str, label: str) -> list[Destination]:
        if self.registrar is None:
            return []
        destinations = []
        for binding in self.registrar.contacts(user, account_sid):
            if binding.owner != account_sid:  # kept per account already: belt and braces
                continue
            transport, host, port, flow = binding.target()
            if flow is None or not flow.is_open:
                flow = self.ua.flow_for(transport.upper(), host, port)
            if flow is not None:
                destinations.append(Destination(binding.contact, flow, kind="client", label=label))
        return destinations

    async def _direct(
        self,
        uri: SipUri,
        label: str,
        credentials: SipCredentials | None,
        transport: str | None = None,
    ) -> Destination:
        transport = (transport or uri.params.get("transport") or "udp").upper()
        if uri.scheme == "sips":
            transport = "TLS"
        host = await _resolve_host(uri.host.strip("[]"))
        port = uri.port or (5061 if transport == "TLS" else 5060)
        flow = self.ua.flow_for(transport, host, port)
        if flow is None:
            raise DialError(f"cannot open a {transport} flow to {host}:{port}")
        return Destination(str(uri), flow, credentials, kind="sip", label=label)

    def call(
        self,
        destination: Destination,
        *,
        from_user: str,
        from_display: str | None = None,
        timeout: float = 60.0,
        sid: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> OutboundCall:
        call = OutboundCall(
            self.ua,
            self.media,
            destination,
            from_user=from_user,
            from_display=from_display,
            timeout=timeout,
            sid=sid,
            headers=headers,
        )
        self._calls = [c for c in self._calls if not c.ended.is_set()]
        self._calls.append(call)
        return call

    def live_calls(self) -> list[OutboundCall]:
        """The calls placed that have not ended (for metrics)."""
        self._calls = [c for c in self._calls if not c.ended.is_set()]
        return list(self._calls)


async def _resolve_host(host: str) -> str:
    """An IP address for ``host`` (A/AAAA lookup; RFC 3263 NAPTR/SRV are not done)."""
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_DGRAM), timeout=5.0
        )
    except (OSError, TimeoutError) as exc:
        raise DialError(f"cannot resolve {host}: {exc}") from None
    if not infos:
        raise DialError(f"cannot resolve {host}")
    return infos[0][4][0]
