"""Where rtpengine's DTMF log reaches this node (``--rtpengine-dtmf-log``), asyncio
side of dtmf_log.py. Two ways, as rtpengine offers them:

- ``HOST:PORT``: a UDP socket the instances' ``--dtmf-log-dest`` names, bound
  once when the node starts and kept for as long as it runs (rtpengine sends its
  log from a connected socket: a destination that is not listening makes its
  sends fail). One address per instance: one node hears it. Only datagrams
  from an instance's address are read (:meth:`DtmfLogListener.accept_from`,
  the ``--rtpengine`` hosts resolved when the node starts): anyone else who
  reaches the socket could otherwise end a ``hangupOnStar`` bridge by naming its
  call-id and tag. The others are counted (``stats.foreign``) and reported to
  ``refused`` (reason ``rtpengine.dtmf_source``), which logs once per source
  and window, not once per datagram.
- ``ng-tcp``: a TCP connection to each instance's ng address (rtpengine with
  ``--listen-tcp-ng`` on the same address as ``--listen-ng``, and
  ``--dtmf-log-ng-tcp``), which sends every event to every connected client:
  every node hears every instance. A connection that fails or ends is made anew
  every ``RECONNECT_S``.

Each event is handed to whoever watches its ng call-id (a bridge on rtpengine:
:meth:`DtmfLogListener.watch`); anything that does not parse, or is for no call
watched here (another node's, a stranger's), is counted and dropped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from media.rtpengine.dtmf_log import DtmfEvent, DtmfLogError, NgNotifications, parse_dtmf_event
from media.rtpengine.selection import EngineAddress, split_host_port

__all__ = [
    "NG_TCP",
    "REFUSED_REASON",
    "DtmfLogListener",
    "DtmfLogStats",
    "instance_addresses",
    "parse_listen_address",
    "source_address",
]

NG_TCP = "ng-tcp"  # --rtpengine-dtmf-log's value for the instances' ng TCP ports
RECONNECT_S = 1.0
REFUSED_REASON = "rtpengine.dtmf_source"  # a datagram from no instance's address

log = logging.getLogger("callswitch.media")

OnDigit = Callable[[DtmfEvent], None]


@dataclass(slots=True)
class DtmfLogStats:
    events: int = 0  # events handed to a watching bridge
    unknown: int = 0  # well-formed events for no call watched here
    malformed: int = 0  # datagrams that were not rtpengine DTMF events
    foreign: int = 0  # datagrams from an address that is no instance's (not read)
    connections: int = 0  # ng TCP connections made (ng-tcp)


def parse_listen_address(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets); ValueError names the fault."""
    address = split_host_port(spec.strip())
    if address is None:
        raise ValueError(f"expected HOST:PORT: {spec!r}")
    return address


def source_address(text: str) -> str:
    """An address as datagrams' sources are compared: an IPv4-mapped IPv6 address
    (a dual-stack socket's view of an IPv4 sender) as the IPv4 one, no IPv6 zone,
    the canonical spelling; anything that is not an address unchanged."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        return text
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(address)


async def instance_addresses(instances: Iterable[EngineAddress]) -> set[str]:
    """The addresses of the instances' hosts (a name resolved, every address it has);
    a name that does not resolve adds none and is logged: its digits are refused."""
    loop = asyncio.get_running_loop()
    found: set[str] = set()
    for instance in instances:
        try:
            infos = await loop.getaddrinfo(instance.host, None, type=socket.SOCK_DGRAM)
        except OSError as exc:
            log.warning(
                "rtpengine.dtmf_log_unresolved",
                extra={"instance": str(instance), "reason": str(exc)[:120]},
            )
            continue
        found |= {source_address(str(info[4][0])) for info in infos}
    return found


class DtmfLogListener(asyncio.DatagramProtocol):
    """Receives rtpengine's DTMF log and dispatches it by ng call-id."""

    def __init__(self, *, refused: Callable[..., None] | None = None) -> None:
        """``refused(reason, source_ip)``: told of each datagram from an address that is
        no instance's (the node's refusal counter, callswitch/refusals.py)."""
        self._watchers: dict[str, OnDigit] = {}
        # Whose datagrams are read: none until accept_from names the instances.
        self._sources: frozenset[str] = frozenset()
        self._refused = refused
        self._transport: asyncio.DatagramTransport | None = None
        self.stats = DtmfLogStats()
        self.address: tuple[str, int] | None = None
        self._connectors: list[asyncio.Task[None]] = []

    async def bind(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(host, port))
        self.address = transport.get_extra_info("sockname")[:2]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    def accept_from(self, addresses: Iterable[str]) -> None:
        """Read datagrams from these addresses only (the instances'); called again, the
        set is replaced (names resolved anew)."""
        self._sources = frozenset(source_address(a) for a in addresses)

    def watch(self, call_id: str, on_digit: OnDigit) -> Callable[[], None]:
        """Hand ``call_id``'s events to ``on_digit`` until the returned function is called."""
        self._watchers[call_id] = on_digit

        def unwatch() -> None:
            if self._watchers.get(call_id) is on_digit:
                del self._watchers[call_id]

        return unwatch

    def connect(self, instances: list[EngineAddress], *, retry_s: float = RECONNECT_S) -> None:
        """``ng-tcp``: keep a connection to each instance's ng address."""
        for address in instances:
            self._connectors.append(asyncio.ensure_future(self._follow(address, retry_s)))

    async def _follow(self, address: EngineAddress, retry_s: float) -> None:
        """Follow one instance's notifications; the first failure after a success
        (or at start) is a warning: until it connects, its digits are not heard."""
        warn = True
        while True:
            writer = None
            try:
                reader, writer = await asyncio.open_connection(address.host, address.port)
                self.stats.connections += 1
                warn = True
                stream = NgNotifications()
                while data := await reader.read(65536):
                    for event in stream.feed(data):
                        self.dispatch(event)
                raise ConnectionError("rtpengine closed the connection")
            except (OSError, DtmfLogError) as exc:
                log.log(
                    logging.WARNING if warn else logging.DEBUG,
                    "rtpengine.dtmf_log_unreachable",
                    extra={"instance": str(address), "reason": str(exc)[:120]},
                )
                warn = False
            finally:
                if writer is not None:
                    writer.close()
            await asyncio.sleep(retry_s)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if source_address(addr[0]) not in self._sources:
            self.stats.foreign += 1
            if self._refused is not None:
                self._refused(REFUSED_REASON, addr[0])
            return
        try:
            event = parse_dtmf_event(data)
        except DtmfLogError:
            self.stats.malformed += 1
            return
        self.dispatch(event)

    def dispatch(self, event: DtmfEvent) -> None:
        """Hand ``event`` to the watcher of its call, if any."""
        on_digit = self._watchers.get(event.call_id)
        if on_digit is None:
            self.stats.unknown += 1
            return
        self.stats.events += 1
        try:
            on_digit(event)
        except Exception:  # a watcher's bug must not stop the log for every call
            log.exception("rtpengine.dtmf_watcher_failed")

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error for a datagram we never send: nothing to do

    def close(self) -> None:
        self._watchers.clear()
        for task in self._connectors:
            task.cancel()
        self._connectors.clear()
        if self._transport is not None:
            self._transport.close()
            self._transport = None
