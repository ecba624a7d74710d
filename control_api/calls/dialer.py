"""Where a dialled address goes, and the calls that go there.

``To`` of a REST call and the nouns of ``<Dial>`` name a party four ways
(reference §2): an E.164 number (one of ours loops back in as an inbound
call; any other leaves through the trunk with the longest matching prefix),
``client:alice`` (every phone registered as alice for the account), a
``sip:`` URI of a registered user at our address (the same), or any other
``sip:`` URI (called directly). :class:`Dialer` turns each into
:class:`~control_api.calls.outbound_call.Destination` values and places calls.

Policy (docs/security.md): a ``sip:`` URI whose host resolves into
``--dial-deny`` is refused (:class:`DialRefused`, reason ``dial.denied``); one
whose host is a trunk's goes through that trunk's rules (its prefixes, login,
transport and caller ID) as the number in its user part, or not at all
(``dial.trunk``). :meth:`Dialer.refer_address` says what a REFER may ask for.
A trunk's numbers are dialled and its caller shown by its rules (numbers.py,
caller_presentation.py: national forms, ``P-Asserted-Identity``, ``Privacy``).
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from control_api.address_policy import DenyList, ResolveError, not_told, resolve_all
from control_api.calls.call import MediaSettings
from control_api.calls.caller_presentation import present_caller
from control_api.calls.numbers import dialled_number
from control_api.calls.outbound_call import Destination, OutboundCall
from control_api.calls.trunks import Trunk, select_trunk
from sip.errors import SipParseError
from sip.headers import SipUri
from sip.ua import UserAgent
from sip.uac import SipCredentials

__all__ = ["DialError", "DialRefused", "Dialer"]

log = logging.getLogger("callswitch.calls")

PHONE = re.compile(r"\+?[0-9]{3,15}")


class DialError(Exception):
    """The address cannot be called: nothing routes there."""


class DialRefused(DialError):
    """Policy forbids calling the address (``--dial-deny``, a trunk's rules)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


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
        deny: Sequence[str] = (),
        refused: Callable[..., None] = not_told,
    ) -> None:
        self.ua = ua
        self.media = media
        self.trunks = list(trunks)
        self.local_addresses = local_addresses  # hosts that mean "this node"
        self.self_address = self_address  # where our own SIP listener is reachable
        self.is_our_number = is_our_number
        self.registrar = registrar
        self.deny = DenyList(deny)  # --dial-deny: sip: targets never go there
        self.refused = refused  # refused(reason, source_ip, **fields): logged and counted
        self._calls: list[OutboundCall] = []

    async def resolve(
        self,
        account_sid: str,
        address: str,
        *,
        username: str | None = None,
        password: str | None = None,
        source_ip: str = "",
    ) -> list[Destination]:
        """Every destination ``address`` rings (several for a user on several phones).

        ``source_ip`` is who asked (the REST client, the caller whose TwiML dials, the
        phone that sent REFER), for the log line of a refusal."""
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
            return [await self._sip(uri, address, credentials, account_sid, source_ip)]
        number = _number(address)
        if number is None:
            raise DialError(f"not a phone number, client: or sip: address: {address}")
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
        return [await self._via_trunk(trunk, number, number, credentials)]

    def refer_address(self, target: str) -> str | None:
        """What a REFER's ``Refer-To`` may be dialled as, routed like ``<Dial>``: a
        number (``tel:``, or ``sip:NUMBER@`` our address or a trunk's host), a client
        (``sip:alice@`` our address); None for anything else, which is not dialled."""
        scheme, _, rest = target.partition(":")
        if scheme.lower() == "tel":
            return _number(rest.split(";", 1)[0])
        if scheme.lower() not in ("sip", "sips"):
            return None
        try:
            uri = SipUri.parse(target)
        except SipParseError:
            return None
        if not uri.user:
            return None
        number = _number(uri.user)
        if self._is_local(uri):
            return number or f"client:{uri.user}"
        host = uri.host.strip("[]").lower()
        if number is not None and any(t.host.strip("[]").lower() == host for t in self.trunks):
            return number
        return None

    async def _sip(
        self,
        uri: SipUri,
        label: str,
        credentials: SipCredentials | None,
        account_sid: str,
        source_ip: str,
    ) -> Destination:
        """A ``sip:`` URI not of a registered user: through policy, then its trunk or
        directly."""
        try:
            addresses = await resolve_all(uri.host)
        except ResolveError as exc:
            raise DialError(str(exc)) from None
        denied = self.deny.first_denied(addresses)
        if denied is not None:
            address, network = denied
            self._refuse("dial.denied", source_ip, account_sid, label, address=address)
            raise DialRefused(f"{label}: {address} is in --dial-deny {network}", "dial.denied")
        trunks = await self._trunks_at(addresses)
        if not trunks:
            return await self._direct(uri, label, credentials, address=addresses[0])
        number = _number(uri.user or "")
        trunk = select_trunk(trunks, number) if number else None
        if number is None or trunk is None or trunk.serves(number) < 0:
            self._refuse("dial.trunk", source_ip, account_sid, label, trunk=trunks[0].name)
            raise DialRefused(
                f"{label}: the host of trunk {trunks[0].name} is reached through its rules "
                "only, and they do not serve this address",
                "dial.trunk",
            )
        return await self._via_trunk(trunk, number, label, None)

    async def _trunks_at(self, addresses: list[str]) -> list[Trunk]:
        """The trunks whose host is one of ``addresses``."""
        wanted = {_canonical(a) for a in addresses}
        found = []
        for trunk in self.trunks:
            try:
                hosts = await resolve_all(trunk.host)
            except ResolveError:
                continue
            if wanted & {_canonical(h) for h in hosts}:
                found.append(trunk)
        return found

    async def _via_trunk(
        self, trunk: Trunk, number: str, label: str, credentials: SipCredentials | None
    ) -> Destination:
        uri = SipUri.parse(trunk.request_uri(dialled_number(number, trunk)))
        login = credentials
        if login is None and trunk.username:
            login = SipCredentials(trunk.username, trunk.password or "")
        destination = await self._direct(uri, number, login, transport=trunk.transport)
        return Destination(
            destination.target, destination.flow, login, kind="trunk", label=label, trunk=trunk
        )

    def _refuse(self, reason: str, source_ip: str, account_sid: str, target: str, **fields):
        self.refused(reason, source_ip or "-", account_sid=account_sid, target=target, **fields)

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
        address: str | None = None,
    ) -> Destination:
        transport = (transport or uri.params.get("transport") or "udp").upper()
        if uri.scheme == "sips":
            transport = "TLS"
        host = address or await _resolve_host(uri.host.strip("[]"))
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
        # The caller as the trunk wants it, or withheld (caller_presentation.py).
        shown = present_caller(
            from_user, from_display, destination.trunk, self.ua.host_port(destination.flow)
        )
        call = OutboundCall(
            self.ua,
            self.media,
            destination,
            from_user=shown.from_user,
            from_display=shown.from_display,
            timeout=timeout,
            call_sid=sid,
            headers=[*shown.headers, *(headers or ())],
        )
        self._calls = [c for c in self._calls if not c.ended.is_set()]
        self._calls.append(call)
        return call

    def live_calls(self) -> list[OutboundCall]:
        """The calls placed that have not ended (for metrics)."""
        self._calls = [c for c in self._calls if not c.ended.is_set()]
        return list(self._calls)


def _number(text: str) -> str | None:
    """``text`` as an E.164 number (``+`` added), or None when it is not one."""
    number = text.replace(" ", "").replace("-", "")
    if not PHONE.fullmatch(number):
        return None
    return number if number.startswith("+") else "+" + number


def _canonical(address: str) -> str:
    try:
        return str(ipaddress.ip_address(address.split("%", 1)[0]))
    except ValueError:
        return address.lower()


async def _resolve_host(host: str) -> str:
    """An IP address for ``host`` (A/AAAA lookup; RFC 3263 NAPTR/SRV are not done)."""
    try:
        return (await resolve_all(host))[0]
    except ResolveError as exc:
        raise DialError(str(exc)) from None
