"""Where rtpengine's DTMF log reaches this node (``--rtpengine-dtmf-log``), asyncio
side of dtmf_log.py. Two ways, as rtpengine offers them:

- ``HOST:PORT``: a UDP socket the instances' ``--dtmf-log-dest`` names, bound
  once when the node starts and kept for as long as it runs (rtpengine sends its
  log from a connected socket: a destination that is not listening makes its
  sends fail). One address per instance: one node hears it.
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
import logging
from collections.abc import Callable
from dataclasses import dataclass

from media.rtpengine.dtmf_log import DtmfEvent, DtmfLogError, NgNotifications, parse_dtmf_event
from media.rtpengine.selection import EngineAddress, split_host_port

__all__ = ["NG_TCP", "DtmfLogListener", "DtmfLogStats", "parse_listen_address"]

NG_TCP = "ng-tcp"  # --rtpengine-dtmf-log's value for the instances' ng TCP ports
RECONNECT_S = 1.0

log = logging.getLogger("callswitch.media")

OnDigit = Callable[[DtmfEvent], None]


@dataclass(slots=True)
class DtmfLogStats:
    events: int = 0  # events handed to a watching bridge
    unknown: int = 0  # well-formed events for no call watched here
    malformed: int = 0  # datagrams that were not rtpengine DTMF events
    connections: int = 0  # ng TCP connections made (ng-tcp)


def parse_listen_address(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host in brackets); ValueError names the fault."""
    address = split_host_port(spec.strip())
    if address is None:
        raise ValueError(f"expected HOST:PORT: {spec!r}")
    return address


class DtmfLogListener(asyncio.DatagramProtocol):
    """Receives rtpengine's DTMF log and dispatches it by ng call-id."""

    def __init__(self) -> None:
        self._watchers: dict[str, OnDigit] = {}
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
