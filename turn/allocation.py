"""TURN allocations, permissions and channels (RFC 8656 §§6-12), sans-I/O.

``AllocationManager.handle`` takes one STUN message from a client (its bytes,
the five-tuple it came on, and the time) and returns the bytes to answer. The
few things that touch the world are callbacks the asyncio server gives it:
``open_relay`` binds a relayed transport address, ``close_relay`` releases it,
``send_to_peer`` sends a Send indication's data. ``tick(now)`` expires what has
run out; ``next_deadline()`` says when that next happens.

The relay path itself (ChannelData and peer datagrams) is not here: the server
reads ``Allocation.channels``, ``channel_peers`` and ``permissions`` directly,
which hold only live entries because ``tick`` runs at least once a second.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from turn.auth import Authenticated, AuthError, Credentials
from turn.policy import PeerPolicy, Quotas
from turn.stun import (
    ALLOCATE,
    BINDING,
    CHANNEL_BIND,
    CREATE_PERMISSION,
    INDICATION,
    REFRESH,
    REQUEST,
    SEND,
    SUCCESS,
    Attr,
    Message,
    StunParseError,
    UnknownAttributes,
    parse,
)

__all__ = [
    "CHANNEL_LIFETIME",
    "DEFAULT_LIFETIME",
    "MAX_LIFETIME",
    "PERMISSION_LIFETIME",
    "Allocation",
    "AllocationManager",
    "FiveTuple",
    "RelayPorts",
    "TurnError",
]

UDP = 17
DEFAULT_LIFETIME = 600  # §7.2
MAX_LIFETIME = 3600
PERMISSION_LIFETIME = 300  # §9
CHANNEL_LIFETIME = 600  # §12
RESERVATION_LIFETIME = 30  # §7.2 (a reserved odd port waits this long)
CHANNEL_MIN, CHANNEL_MAX = 0x4000, 0x7FFF  # RFC 5766's range; RFC 8656 narrows it to 0x4FFF
SOFTWARE = "callswitch"


class TurnError(Exception):
    """A request we refuse; ``code`` is the STUN error code to answer with."""

    def __init__(self, code: int, reason: str | None = None) -> None:
        super().__init__(reason or str(code))
        self.code = code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class FiveTuple:
    """Client address, server address and transport of an allocation (§2)."""

    transport: str  # "udp", "tcp" or "tls"
    client: tuple[str, int]
    server: tuple[str, int]


@dataclass(eq=False, slots=True)
class Allocation:
    """One relayed transport address and what may flow through it (§6)."""

    five_tuple: FiveTuple
    relayed: tuple[str, int]  # as advertised in XOR-RELAYED-ADDRESS
    family: int  # 4 or 6
    username: str
    auth: Authenticated
    expires: float
    dont_fragment: bool = False
    permissions: dict[str, float] = field(default_factory=dict)  # peer IP → expiry
    channels: dict[int, tuple[str, int]] = field(default_factory=dict)  # number → peer
    channel_peers: dict[tuple[str, int], int] = field(default_factory=dict)  # peer → number
    channel_expiry: dict[int, float] = field(default_factory=dict)
    allocate_tid: bytes = b""
    allocate_answer: bytes = b""
    reserved_token: int | None = None  # the odd port we hold for the client (EVEN-PORT R)
    budget: int = 1 << 62  # bytes left this second (Quotas.bytes_per_second)
    handle: Any = None  # the server's relay socket
    client: Any = None  # the server's way back to the client

    def refresh_permission(self, host: str, now: float) -> None:
        self.permissions[host] = now + PERMISSION_LIFETIME

    def expire(self, now: float) -> None:
        for host in [h for h, t in self.permissions.items() if t <= now]:
            del self.permissions[host]
        for number in [n for n, t in self.channel_expiry.items() if t <= now]:
            del self.channel_expiry[number]
            peer = self.channels.pop(number)
            self.channel_peers.pop(peer, None)

    def next_deadline(self) -> float:
        return min(
            [self.expires, *self.permissions.values(), *self.channel_expiry.values()],
        )


@dataclass(slots=True)
class RelayPorts:
    """The relay port range: free ports, and odd ports reserved by token (§7.2)."""

    low: int
    high: int
    in_use: set[int] = field(default_factory=set)
    # token → (port, expiry, address family of the allocation that reserved it)
    reservations: dict[int, tuple[int, float, int]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def candidates(self, even: bool) -> Iterator[int]:
        """Free ports in a random order starting point, for ``open_relay`` to try."""
        size = self.high - self.low + 1
        start = self.rng.randrange(size)
        reserved = {entry[0] for entry in self.reservations.values()}
        for i in range(size):
            port = self.low + (start + i) % size
            if port in self.in_use or port in reserved:
                continue
            if even and (port % 2 or port + 1 > self.high or port + 1 in self.in_use):
                continue
            yield port

    def reserve(self, port: int, now: float, family: int = 4) -> int:
        token = int.from_bytes(os.urandom(8), "big")
        self.reservations[token] = (port, now + RESERVATION_LIFETIME, family)
        return token

    def claim(self, token: int, now: float) -> tuple[int, int] | None:
        """(port, family) reserved under ``token``, once; None if unknown or expired."""
        entry = self.reservations.pop(token, None)
        if entry is None or entry[1] <= now:
            return None
        return entry[0], entry[2]

    def expire(self, now: float) -> None:
        for token in [t for t, entry in self.reservations.items() if entry[1] <= now]:
            del self.reservations[token]


OpenRelay = Callable[[Allocation, int], bool]
CloseRelay = Callable[[Allocation], None]
SendToPeer = Callable[[Allocation, bytes, tuple[str, int]], None]


def _not_told(reason: str, source_ip: str, **fields: object) -> None:
    pass


def _family(host: str) -> int:
    return 6 if ":" in host else 4


class AllocationManager:
    """The server side of TURN (RFC 8656) and STUN Binding (RFC 8489 §6.3), sans-I/O."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        ports: RelayPorts,
        relay_address: str | None,
        relay_address6: str | None = None,
        policy: PeerPolicy | None = None,
        quotas: Quotas | None = None,
        open_relay: OpenRelay | None = None,
        close_relay: CloseRelay | None = None,
        send_to_peer: SendToPeer | None = None,
        protected_ports: frozenset[int] = frozenset(),
        refused: Callable[..., None] = _not_told,
    ) -> None:
        self.credentials = credentials
        # Told of each allocation refused for its owner's quota: refused(reason, source_ip).
        self.refused = refused
        self.ports = ports
        self.relay_address = {4: relay_address, 6: relay_address6}
        self.policy = policy or PeerPolicy()
        self.quotas = quotas or Quotas()
        self.open_relay: OpenRelay = open_relay or (lambda allocation, port: True)
        self.close_relay: CloseRelay = close_relay or (lambda allocation: None)
        self.send_to_peer: SendToPeer = send_to_peer or (lambda a, d, p: None)
        # Our own listeners: never a peer even when the operator allows our address.
        self.protected_ports = protected_ports
        self.allocations: dict[FiveTuple, Allocation] = {}
        # Allocations per owner: a static user, or the account behind REST usernames.
        self.per_user: Counter[str] = Counter()
        # Bytes the relays carried, both ways: the relay path only takes each packet off
        # its allocation's budget, and what was taken is added up here when the budget is
        # refilled (each second) or the allocation ends. Up to a second behind.
        self.bytes_relayed = 0

    # -- entry points ---------------------------------------------------------------

    def handle(self, data: bytes, five_tuple: FiveTuple, now: float, wall: float) -> bytes | None:
        """One STUN message from a client; the answer to send back, if any."""
        try:
            message = parse(data)
        except UnknownAttributes as exc:
            if exc.cls != REQUEST or exc.method is None or exc.transaction_id is None:
                return None
            answer = Message(exc.method, REQUEST, exc.transaction_id).error(420)
            answer.add(Attr.UNKNOWN_ATTRIBUTES, exc.types)
            return answer.encode()
        except StunParseError as exc:
            if exc.cls != REQUEST or exc.method is None or exc.transaction_id is None:
                return None
            return Message(exc.method, REQUEST, exc.transaction_id).error(400).encode()
        if message.cls == INDICATION:
            if message.method == SEND:
                self._send_indication(message, five_tuple)
            return None
        if message.cls != REQUEST:
            return None
        if message.method == BINDING:
            answer = message.response()
            answer.add(Attr.XOR_MAPPED_ADDRESS, five_tuple.client)
            return answer.encode()
        client_ip = five_tuple.client[0]
        try:
            auth = self.credentials.authenticate(message, client_ip, wall)
        except AuthError as exc:
            answer = message.error(exc.code)
            if exc.code != 400:
                self.credentials.challenge(answer, client_ip, wall)
            return answer.encode()
        try:
            answer = self._request(message, five_tuple, auth, now)
        except _Replay as replay:
            return replay.answer
        except TurnError as exc:
            answer = message.error(exc.code, exc.reason)
        answer.add(Attr.SOFTWARE, SOFTWARE)
        encoded = answer.encode(auth.key, sha256=auth.sha256)
        if message.method == ALLOCATE and answer.cls == SUCCESS:
            self.allocations[five_tuple].allocate_answer = encoded
        return encoded

    def tick(self, now: float) -> list[Allocation]:
        """Expire allocations, permissions, channels and reservations; refill budgets.
        Returns the allocations that ended (their relays are already closed)."""
        ended = [a for a in self.allocations.values() if a.expires <= now]
        for allocation in ended:
            self.delete(allocation)
        budget = self._full_budget()
        for allocation in self.allocations.values():
            allocation.expire(now)
            self.bytes_relayed += budget - allocation.budget
            allocation.budget = budget
        self.ports.expire(now)
        return ended

    def _full_budget(self) -> int:
        return self.quotas.bytes_per_second or 1 << 62

    def next_deadline(self) -> float | None:
        deadlines = [a.next_deadline() for a in self.allocations.values()]
        deadlines += [entry[1] for entry in self.ports.reservations.values()]
        return min(deadlines) if deadlines else None

    def close_all(self) -> None:
        for allocation in list(self.allocations.values()):
            self.delete(allocation)

    # -- requests -------------------------------------------------------------------

    def _request(
        self, message: Message, five_tuple: FiveTuple, auth: Authenticated, now: float
    ) -> Message:
        method = message.method
        if method == ALLOCATE:
            return self._allocate(message, five_tuple, auth, now)
        allocation = self.allocations.get(five_tuple)
        if method not in (REFRESH, CREATE_PERMISSION, CHANNEL_BIND):
            raise TurnError(400, "Unknown method")
        if allocation is None:
            raise TurnError(437)
        if allocation.username != auth.username:
            raise TurnError(441)
        if method == REFRESH:
            return self._refresh(message, allocation, now)
        if method == CREATE_PERMISSION:
            return self._create_permission(message, allocation, now)
        return self._channel_bind(message, allocation, now)

    def _allocate(
        self, message: Message, five_tuple: FiveTuple, auth: Authenticated, now: float
    ) -> Message:
        existing = self.allocations.get(five_tuple)
        if existing is not None:
            if existing.allocate_tid == message.transaction_id:
                # A retransmission whose answer was lost (§7.2): same answer again.
                raise _Replay(existing.allocate_answer)
            raise TurnError(437)
        transport = message.get(Attr.REQUESTED_TRANSPORT)
        if transport is None:
            raise TurnError(400, "REQUESTED-TRANSPORT missing")
        if transport != UDP:
            raise TurnError(442)
        token = message.get(Attr.RESERVATION_TOKEN)
        even = message.get(Attr.EVEN_PORT)
        family_code = message.get(Attr.REQUESTED_ADDRESS_FAMILY)
        if token is not None and (even is not None or family_code is not None):
            raise TurnError(400, "RESERVATION-TOKEN with EVEN-PORT or REQUESTED-ADDRESS-FAMILY")
        if family_code not in (None, 1, 2):
            raise TurnError(440)
        claimed = None
        if token is not None:
            # The reserved port's family is the one of the allocation that reserved it.
            claimed = self.ports.claim(token, now)
            if claimed is None:
                raise TurnError(508, "Reservation token unknown or expired")
            family = claimed[1]
        else:
            family = 6 if family_code == 2 else 4
        relay_host = self.relay_address[family]
        if relay_host is None:
            raise TurnError(440)
        if self.per_user[auth.owner] >= self.quotas.per_user:
            self.refused("turn.quota", five_tuple.client[0], owner=auth.owner)
            raise TurnError(486)
        if len(self.allocations) >= self.quotas.total:
            raise TurnError(508)
        lifetime = _lifetime(message)
        allocation = Allocation(
            five_tuple=five_tuple,
            relayed=("", 0),
            family=family,
            username=auth.username,
            auth=auth,
            expires=now + lifetime,
            dont_fragment=Attr.DONT_FRAGMENT in message,
            allocate_tid=message.transaction_id,
            budget=self._full_budget(),
        )
        reserved_token = None
        if claimed is not None:
            port = claimed[0]
            if not self._open(allocation, port):
                raise TurnError(508, "Reserved port no longer free")
        else:
            found = None
            for candidate in self.ports.candidates(even is not None):
                if self._open(allocation, candidate):
                    found = candidate
                    break
            if found is None:
                raise TurnError(508)
            port = found
            if even:
                reserved_token = self.ports.reserve(port + 1, now, family)
        allocation.relayed = (relay_host, port)
        allocation.reserved_token = reserved_token
        self.allocations[five_tuple] = allocation
        self.per_user[auth.owner] += 1
        answer = message.response()
        answer.add(Attr.XOR_RELAYED_ADDRESS, allocation.relayed)
        answer.add(Attr.LIFETIME, lifetime)
        if reserved_token is not None:
            answer.add(Attr.RESERVATION_TOKEN, reserved_token)
        answer.add(Attr.XOR_MAPPED_ADDRESS, five_tuple.client)
        return answer

    def _open(self, allocation: Allocation, port: int) -> bool:
        if not self.open_relay(allocation, port):
            return False
        self.ports.in_use.add(port)
        allocation.relayed = (allocation.relayed[0], port)
        return True

    def _refresh(self, message: Message, allocation: Allocation, now: float) -> Message:
        family_code = message.get(Attr.REQUESTED_ADDRESS_FAMILY)
        if family_code is not None and family_code != (2 if allocation.family == 6 else 1):
            raise TurnError(443)
        requested = message.get(Attr.LIFETIME)
        answer = message.response()
        if requested == 0:
            self.delete(allocation)
            answer.add(Attr.LIFETIME, 0)
            return answer
        lifetime = _lifetime(message)
        allocation.expires = now + lifetime
        answer.add(Attr.LIFETIME, lifetime)
        return answer

    def _check_peer(self, allocation: Allocation, peer: tuple[str, int]) -> None:
        if _family(peer[0]) != allocation.family:
            raise TurnError(443)
        if not self.policy.permits(peer[0]):
            raise TurnError(403, "Peer address not allowed")

    def _create_permission(self, message: Message, allocation: Allocation, now: float) -> Message:
        peers = message.get_all(Attr.XOR_PEER_ADDRESS)
        if not peers:
            raise TurnError(400, "XOR-PEER-ADDRESS missing")
        for peer in peers:  # all or nothing (§9.2)
            self._check_peer(allocation, peer)
        for peer in peers:
            allocation.refresh_permission(peer[0], now)
        return message.response()

    def _channel_bind(self, message: Message, allocation: Allocation, now: float) -> Message:
        number = message.get(Attr.CHANNEL_NUMBER)
        peer = message.get(Attr.XOR_PEER_ADDRESS)
        if number is None or peer is None:
            raise TurnError(400, "CHANNEL-NUMBER or XOR-PEER-ADDRESS missing")
        if not CHANNEL_MIN <= number <= CHANNEL_MAX:
            raise TurnError(400, "Channel number out of range")
        self._check_peer(allocation, peer)
        if peer[1] in self.protected_ports and peer[0] in self.policy.own_addresses:
            raise TurnError(403, "Peer is this server")
        peer = (peer[0], peer[1])
        bound = allocation.channels.get(number)
        if bound is not None and bound != peer:
            raise TurnError(400, "Channel bound to another peer")
        other = allocation.channel_peers.get(peer)
        if other is not None and other != number:
            raise TurnError(400, "Peer bound to another channel")
        allocation.channels[number] = peer
        allocation.channel_peers[peer] = number
        allocation.channel_expiry[number] = now + CHANNEL_LIFETIME
        allocation.refresh_permission(peer[0], now)
        return message.response()

    # -- indications ----------------------------------------------------------------

    def _send_indication(self, message: Message, five_tuple: FiveTuple) -> None:
        allocation = self.allocations.get(five_tuple)
        if allocation is None:
            return
        peer = message.get(Attr.XOR_PEER_ADDRESS)
        payload = message.get(Attr.DATA)
        if peer is None or payload is None or peer[0] not in allocation.permissions:
            return  # §11.2: silently discarded
        if peer[1] in self.protected_ports and peer[0] in self.policy.own_addresses:
            return
        self.send_to_peer(allocation, payload, (peer[0], peer[1]))

    # -- teardown -------------------------------------------------------------------

    def delete(self, allocation: Allocation) -> None:
        if self.allocations.pop(allocation.five_tuple, None) is None:
            return
        self.bytes_relayed += self._full_budget() - allocation.budget
        owner = allocation.auth.owner
        self.per_user[owner] -= 1
        if self.per_user[owner] <= 0:
            del self.per_user[owner]
        self.ports.in_use.discard(allocation.relayed[1])
        self.close_relay(allocation)


class _Replay(TurnError):
    def __init__(self, answer: bytes) -> None:
        super().__init__(0)
        self.answer = answer


def _lifetime(message: Message) -> int:
    """§7.2: the client's LIFETIME within [default, max]; the default without one."""
    requested: int | None = message.get(Attr.LIFETIME)
    if requested is None:
        return DEFAULT_LIFETIME
    return max(DEFAULT_LIFETIME, min(requested, MAX_LIFETIME))
