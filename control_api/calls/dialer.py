"""Where a dialled address goes, and the calls that go there.

``To`` of a REST call and the nouns of ``<Dial>`` name a party four ways
(reference §2): an E.164 number (one of ours loops back in as an inbound
call; any other leaves through the trunk with the longest matching prefix),
``client:alice`` (every phone registered as alice for the account), a
``sip:`` URI of a registered user at our address (the same), or any other
``sip:`` URI (called directly). :class:`Dialer` turns each into
:class:`~control_api.calls.outbound_call.Destination` values and places calls.

Hosts are located as RFC 3263 says (NAPTR, SRV, A/AAAA; control_api/sip_locator.py),
and a call tries every target in turn (control_api/calls/failover.py): a number
every trunk serving it, each trunk's entry points, each entry point's DNS targets.

Policy (docs/security.md): a ``sip:`` URI any of whose targets is in
``--dial-deny`` is refused (:class:`DialRefused`, reason ``dial.denied``); one
whose targets include an address of a trunk's entry point goes through that
trunk's rules (its prefixes, login, transport and caller ID) as the number in its
user part, or not at all (``dial.trunk``). :meth:`Dialer.refer_address` says what a
REFER may ask for.
A trunk's numbers are dialled and its caller shown by its rules (numbers.py,
caller_presentation.py: national forms, ``P-Asserted-Identity``, ``Privacy``).
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import logging
import re
from collections.abc import Awaitable, Callable, Sequence

from control_api.address_policy import DenyList, not_told
from control_api.calls.call import MediaSettings
from control_api.calls.failover import Hop, report_attempt, usable_hops
from control_api.calls.numbers import dialled_number
from control_api.calls.outbound_call import Destination, OutboundCall
from control_api.calls.trunk_health import TrunkHealth
from control_api.calls.trunks import Trunk, select_trunks
from control_api.sip_locator import SipLocator
from sip.errors import SipParseError
from sip.headers import SipUri
from sip.rfc3263 import Target
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
        locator: SipLocator | None = None,
        health: TrunkHealth | None = None,
        call_log=None,
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
        self.locator = locator or SipLocator()  # RFC 3263, --dns-server
        self.health = health or TrunkHealth()  # trunk hosts the OPTIONS pings found down
        self.call_log = call_log  # every INVITE's target and status (Calls/{CA}/Events)
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
        found = await self._resolve(account_sid, address, username, password, source_ip)
        return [dataclasses.replace(d, account_sid=account_sid) for d in found]

    async def _resolve(
        self,
        account_sid: str,
        address: str,
        username: str | None,
        password: str | None,
        source_ip: str,
    ) -> list[Destination]:
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
        trunks = select_trunks(self.trunks, number)
        if not trunks:
            raise DialError(f"no trunk serves {number}")
        return [await self._via_trunks(trunks, number, number, credentials)]

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
        hosts = {h.strip("[]").lower() for t in self.trunks for h, _ in t.entry_points()}
        if number is not None and host in hosts:
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
        secure = uri.scheme == "sips"
        targets = await self.locator.locate(
            uri.host, uri.port, uri.params.get("transport"), secure=secure
        )
        if not targets:
            raise DialError(f"cannot resolve {uri.host}")
        denied = self.deny.first_denied(t.address for t in targets)
        if denied is not None:
            address, network = denied
            self._refuse("dial.denied", source_ip, account_sid, label, address=address)
            raise DialRefused(f"{label}: {address} is in --dial-deny {network}", "dial.denied")
        trunks = await self._trunks_at([t.address for t in targets])
        if not trunks:
            hops = [_hop(str(uri), t, credentials) for t in targets]
            return self._destination(hops, kind="sip", label=label)
        number = _number(uri.user or "")
        serving = select_trunks(trunks, number) if number else []
        if number is None or not serving:
            self._refuse("dial.trunk", source_ip, account_sid, label, trunk=trunks[0].name)
            raise DialRefused(
                f"{label}: the host of trunk {trunks[0].name} is reached through its rules "
                "only, and they do not serve this address",
                "dial.trunk",
            )
        return await self._via_trunks(serving, number, label, None)

    async def _trunks_at(self, addresses: list[str]) -> list[Trunk]:
        """The trunks one of whose entry points has one of ``addresses``."""
        wanted = {_canonical(a) for a in addresses}
        return [t for t in self.trunks if wanted & await self._trunk_addresses(t)]

    async def _trunk_addresses(self, trunk: Trunk) -> set[str]:
        """Every address of every entry point of ``trunk``: its DNS targets and the
        A/AAAA addresses of its host names."""
        found: set[str] = set()
        for host, port in trunk.entry_points():
            found |= {_canonical(t.address) for t in await self.locate_trunk(trunk, host, port)}
            found |= {_canonical(a) for a in await self.locator.addresses(host)}
        if trunk.outbound_proxy:  # reached through the trunk too (its rules apply)
            found |= {_canonical(t.address) for t in await self.locate_proxy(trunk)}
            proxy = SipUri.parse(trunk.outbound_proxy).host
            found |= {_canonical(a) for a in await self.locator.addresses(proxy)}
        return found

    async def locate_trunk(self, trunk: Trunk, host: str, port: int | None) -> list[Target]:
        """The targets of one entry point of ``trunk`` (RFC 3263): its transport when it
        names one, else (UDP, the default) whatever the NAPTR records offer."""
        transport = None if trunk.transport == "udp" else trunk.transport
        return await self.locator.locate(host, port, transport)

    async def locate_proxy(self, trunk: Trunk) -> list[Target]:
        """The targets of ``trunk``'s ``outbound_proxy`` (none without one), located as
        its entry points are: the proxy URI's ``transport=``, else the trunk's."""
        if trunk.outbound_proxy is None:
            return []
        uri = SipUri.parse(trunk.outbound_proxy)  # checked when the trunk was parsed
        transport = (uri.params.get("transport") or "").lower() or None
        if transport is None and trunk.transport != "udp" and uri.scheme != "sips":
            transport = trunk.transport
        return await self.locator.locate(uri.host, uri.port, transport, secure=uri.scheme == "sips")

    async def _via_trunks(
        self, trunks: list[Trunk], number: str, label: str, credentials: SipCredentials | None
    ) -> Destination:
        """A call to ``number`` over ``trunks``: every entry point of each and every DNS
        target of those, in order; hosts marked down are skipped unless all are."""
        hops: list[Hop] = []
        for trunk in trunks:
            login = credentials
            if login is None and trunk.username:
                login = SipCredentials(trunk.username, trunk.password or "")
            dialled = dialled_number(number, trunk)
            # With an outbound proxy every entry point's INVITE goes to the proxy's targets.
            proxied = await self.locate_proxy(trunk) if trunk.outbound_proxy else None
            for host, port in trunk.entry_points():
                target = dataclasses.replace(trunk, host=host, port=port).request_uri(dialled)
                located = proxied
                if located is None:
                    located = await self.locate_trunk(trunk, host, port)
                for found in located:
                    hop = _hop(target, found, login, trunk, trunk.outbound_proxy)
                    if hop not in hops:
                        hops.append(hop)
        if not hops:
            raise DialError(f"cannot resolve the hosts of trunk {trunks[0].name}")
        hops = usable_hops(hops, self.health.is_down)
        return self._destination(hops, kind="trunk", label=label)

    def _destination(self, hops: list[Hop], *, kind: str, label: str) -> Destination:
        """The destination trying ``hops`` in turn (the first one's flow opened now)."""
        for index, hop in enumerate(hops):
            flow = self.ua.flow_for(hop.transport, hop.address, hop.port)
            if flow is None:
                continue
            return Destination(
                hop.target,
                flow,
                hop.credentials,
                kind=kind,
                label=label,
                trunk=hop.trunk,
                hops=tuple(hops[index:]),
            )
        first = hops[0]
        raise DialError(f"cannot open a {first.transport} flow to {first.where}")

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

    def call(
        self,
        destination: Destination,
        *,
        from_user: str,
        from_display: str | None = None,
        timeout: float = 60.0,
        sid: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        trunk_caller_id: bool = False,
    ) -> OutboundCall:
        """A call to ``destination`` from ``from_user``, shown on each hop as that hop's
        trunk wants it, or withheld (caller_presentation.py); with ``trunk_caller_id`` a
        trunk's ``caller_id`` replaces ``from_user`` on the hops through it."""
        call: OutboundCall = OutboundCall(
            self.ua,
            self.media,
            destination,
            from_user=from_user,
            from_display=from_display,
            timeout=timeout,
            call_sid=sid,
            headers=list(headers or ()),
            trunk_caller_id=trunk_caller_id,
        )
        call.on_attempt.append(
            functools.partial(self._attempted, destination.account_sid, call.sid)
        )
        self._calls = [c for c in self._calls if not c.ended.is_set()]
        self._calls.append(call)
        return call

    def _attempted(self, account_sid: str, call_sid: str, attempt) -> None:
        report_attempt(self.call_log, account_sid, call_sid, attempt)

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


def _hop(
    target: str,
    found: Target,
    credentials: SipCredentials | None,
    trunk: Trunk | None = None,
    proxy: str | None = None,
) -> Hop:
    return Hop(
        target, found.transport, found.address, found.port, found.name, credentials, trunk, proxy
    )
