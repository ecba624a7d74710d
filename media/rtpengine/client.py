"""The asyncio side of the ng protocol: a UDP socket per rtpengine instance
around :class:`~media.rtpengine.ng.NgClient`, and :class:`RtpEngines`, the
commands callswitch sends to the instance the selection (selection.py) gives a
call: ``ping``, ``offer``, ``answer``, ``delete``, ``query``, ``list``, and
``subscribe request``/``subscribe answer``/``unsubscribe`` (a copy of one party's
media, for the forks of a bridged call).

Failures are typed: :class:`EngineRefused` (rtpengine answered ``error``) and
:class:`EngineUnreachable` (no answer after every retransmission, or an ICMP
error); both are :class:`EngineError`. An unreachable instance is disabled for
a while; a new call then goes to another one, or, when none is left, the caller
falls back to its own relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from media.rtpengine.dtmf_listener import DtmfLogListener
from media.rtpengine.ng import Completed, Message, NgClient, Send, TimedOut
from media.rtpengine.selection import EngineAddress, EngineSet, Instance

__all__ = [
    "EngineError",
    "EngineRefused",
    "EngineUnreachable",
    "NgConnection",
    "RtpEngines",
    "Totals",
    "call_totals",
]


class EngineError(Exception):
    """A command did not succeed."""


class EngineRefused(EngineError):
    """rtpengine answered ``result: error`` (its ``error-reason`` is the message)."""


class EngineUnreachable(EngineError):
    """No reply from the instance; ``closed`` when its host said nothing listens on
    the port (ICMP port unreachable: the process is gone), rather than silence (it
    may only be slow, or its host or the network down)."""

    def __init__(self, message: str, *, closed: bool = False) -> None:
        super().__init__(message)
        self.closed = closed


class NgConnection(asyncio.DatagramProtocol):
    """One connected UDP socket to one instance; ``await request(message)``."""

    def __init__(self, address: EngineAddress, *, interval: float, attempts: int) -> None:
        self.address = address
        self.core = NgClient(lambda: secrets.token_hex(8), interval=interval, attempts=attempts)
        self._waiters: dict[str, asyncio.Future[Message]] = {}
        self._transport: asyncio.DatagramTransport | None = None
        self._opening: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # When anything last came from the instance (loop time): after a pause of our
        # loop its retransmission timers fire before its late replies are read, so a
        # request may give up on an instance that did answer.
        self.last_heard: float | None = None

    async def _open(self) -> asyncio.DatagramTransport:
        if self._transport is not None and not self._transport.is_closing():
            return self._transport
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._connect())
        try:
            await asyncio.shield(self._opening)
        finally:
            self._opening = None
        assert self._transport is not None
        return self._transport

    async def _connect(self) -> None:
        self._loop = loop = asyncio.get_running_loop()
        try:
            await loop.create_datagram_endpoint(
                lambda: self, remote_addr=(self.address.host, self.address.port)
            )
        except OSError as exc:
            raise EngineUnreachable(f"{self.address}: {exc}") from exc

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # a datagram endpoint's

    async def request(self, message: Message) -> Message:
        transport = await self._open()
        loop = asyncio.get_running_loop()
        cookie, send = self.core.request(message, loop.time())
        waiter: asyncio.Future[Message] = loop.create_future()
        self._waiters[cookie] = waiter
        transport.sendto(send.data)
        self._rearm()
        try:
            return await waiter
        finally:
            self._waiters.pop(cookie, None)
            self.core.cancel(cookie)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        loop = self._loop or asyncio.get_running_loop()
        self.last_heard = loop.time()
        done = self.core.on_datagram(data, loop.time())
        if done is not None:
            self._settle(done)

    def error_received(self, exc: Exception) -> None:
        for failed in self.core.fail_all():  # ICMP unreachable: nobody listens there
            self._settle(failed, closed=True)

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self.error_received(exc or ConnectionError("closed"))

    def _on_timer(self) -> None:
        self._timer = None
        loop = self._loop or asyncio.get_running_loop()
        for output in self.core.on_timer(loop.time()):
            if isinstance(output, Send):
                if self._transport is not None:
                    self._transport.sendto(output.data)
            else:
                self._settle(output)
        self._rearm()

    def _rearm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.core.next_deadline()
        if deadline is not None and self._loop is not None:
            self._timer = self._loop.call_at(deadline, self._on_timer)

    def _settle(self, output: Completed | TimedOut, *, closed: bool = False) -> None:
        waiter = self._waiters.get(output.cookie)
        if waiter is None or waiter.done():
            return
        if isinstance(output, Completed):
            waiter.set_result(output.reply)
        elif closed:
            message = f"rtpengine {self.address}: port unreachable"
            waiter.set_exception(EngineUnreachable(message, closed=True))
        else:
            waiter.set_exception(EngineUnreachable(f"no reply from rtpengine {self.address}"))

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._transport.close()


@dataclass(slots=True)
class Totals:
    """What the calls handed to rtpengine added up to (``/metrics``)."""

    offers: int = 0  # calls offered to an instance
    refused: int = 0  # offers or answers it refused
    unreachable: int = 0  # commands no instance answered
    deletes: int = 0
    packets: int = 0  # RTP packets rtpengine relayed for deleted calls (its totals)
    bytes: int = 0
    errors: int = 0
    by_instance: dict[str, int] = field(default_factory=dict)  # calls offered per instance


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class RtpEngines:
    """The configured instances, the calls on them, and the ng commands."""

    def __init__(
        self,
        addresses: list[EngineAddress],
        *,
        disable_s: float = 60.0,
        interval: float = 0.5,
        attempts: int = 4,
        clock: Callable[[], float] | None = None,
        dtmf_log: DtmfLogListener | None = None,
    ) -> None:
        self.set = EngineSet(addresses, disable_s=disable_s)
        # Where the instances' DTMF log arrives (--rtpengine-dtmf-log); None: not
        # configured, so a bridge that must hear digits (hangupOnStar) stays in process.
        self.dtmf_log = dtmf_log
        self._connections = {
            id(i): NgConnection(i.address, interval=interval, attempts=attempts)
            for i in self.set.instances
        }
        self._clock = clock
        self.totals = Totals()

    def _now(self) -> float:
        return self._clock() if self._clock else asyncio.get_running_loop().time()

    async def send(self, instance: Instance, message: Message) -> Message:
        """One command to ``instance``; an error reply raises :class:`EngineRefused`,
        silence :class:`EngineUnreachable` (and disables the instance)."""
        try:
            reply = await self._connections[id(instance)].request(message)
        except EngineUnreachable:
            self.set.disable(instance, self._now())
            self.totals.unreachable += 1
            raise
        result = _text(reply.get("result"))
        if result == "error":
            raise EngineRefused(_text(reply.get("error-reason")) or "rtpengine refused")
        if result not in ("ok", "pong"):
            raise EngineRefused(f"unexpected rtpengine result {result!r}")
        return reply

    async def ping(self, instance: Instance) -> bool:
        try:
            await self.send(instance, {"command": "ping"})
        except EngineError:
            return False
        return True

    async def recheck(self) -> None:
        """Ping the disabled instances whose time is up; enable those that answer."""
        due = self.set.due_for_ping(self._now())
        results = await asyncio.gather(*(self.ping(i) for i in due))
        for instance, alive in zip(due, results, strict=True):
            if alive:
                self.set.enable(instance)

    async def offer(self, call_id: str, from_tag: str, sdp: str, **options: object) -> str:
        """``offer`` on the call's instance (a new call picks one, skipping instances
        that do not answer): the SDP for the other side."""
        instance = self.set.instance_for(call_id)
        tried: tuple[Instance, ...] = ()
        if instance is None:
            await self.recheck()
            instance = self.set.pick(call_id)
        message: Message = {"call-id": call_id, "from-tag": from_tag, "sdp": sdp, **options}  # type: ignore[dict-item]
        while instance is not None:
            try:
                reply = await self.send(instance, {"command": "offer", **message})
            except EngineUnreachable:
                tried += (instance,)
                instance = self.set.pick(call_id, exclude=tried)
                continue
            except EngineRefused:
                self.totals.refused += 1
                raise
            self.set.remember(call_id, instance)
            self.totals.offers += 1
            key = str(instance.address)
            self.totals.by_instance[key] = self.totals.by_instance.get(key, 0) + 1
            return _text(reply.get("sdp"))
        raise EngineUnreachable("no rtpengine instance is available")

    async def answer(
        self, call_id: str, from_tag: str, to_tag: str, sdp: str, **options: object
    ) -> str:
        """``answer`` on the call's instance: the SDP for the offerer's side."""
        message: Message = {
            "command": "answer",
            "call-id": call_id,
            "from-tag": from_tag,
            "to-tag": to_tag,
            "sdp": sdp,
            **options,  # type: ignore[dict-item]
        }
        try:
            reply = await self.send(self._instance(call_id), message)
        except EngineRefused:
            self.totals.refused += 1
            raise
        return _text(reply.get("sdp"))

    async def subscribe_request(
        self, call_id: str, from_tag: str, **options: object
    ) -> tuple[str, str]:
        """``subscribe request`` for what the party ``from_tag`` sends: rtpengine's
        offer (sendonly, its address for the copy) and the subscription's to-tag."""
        message: Message = {
            "command": "subscribe request",
            "call-id": call_id,
            "from-tag": from_tag,
            **options,  # type: ignore[dict-item]
        }
        reply = await self.send(self._instance(call_id), message)
        sdp, to_tag = _text(reply.get("sdp")), _text(reply.get("to-tag"))
        if not sdp or not to_tag:
            raise EngineRefused("subscribe request: no SDP or to-tag in the reply")
        return sdp, to_tag

    async def subscribe_answer(
        self, call_id: str, to_tag: str, sdp: str, **options: object
    ) -> None:
        """``subscribe answer``: where the subscription's copy goes (our SDP)."""
        message: Message = {
            "command": "subscribe answer",
            "call-id": call_id,
            "to-tag": to_tag,
            "sdp": sdp,
            **options,  # type: ignore[dict-item]
        }
        await self.send(self._instance(call_id), message)

    async def unsubscribe(self, call_id: str, to_tag: str) -> None:
        """``unsubscribe``: the subscription ``to_tag`` ends (the call goes on)."""
        message: Message = {"command": "unsubscribe", "call-id": call_id, "to-tag": to_tag}
        await self.send(self._instance(call_id), message)

    async def query(self, call_id: str) -> Message:
        return await self.send(self._instance(call_id), {"command": "query", "call-id": call_id})

    async def delete(self, call_id: str) -> Message:
        """``query`` (the call's figures) then ``delete`` at once (no delete delay);
        the call is forgotten whatever the outcome. The reply carries the totals."""
        instance = self._instance(call_id)
        self.set.forget(call_id)
        figures: Message = {}
        with contextlib.suppress(EngineRefused):
            figures = await self.send(instance, {"command": "query", "call-id": call_id})
        message: Message = {"command": "delete", "call-id": call_id, "delete delay": 0}
        reply = await self.send(instance, message)
        if "totals" not in reply and "totals" in figures:
            reply = {**reply, "totals": figures["totals"]}
        self.totals.deletes += 1
        packets, octets, errors = call_totals(reply)
        self.totals.packets += packets
        self.totals.bytes += octets
        self.totals.errors += errors
        return reply

    async def list(self, instance: Instance, limit: int = 32) -> list[str]:
        """The Call-IDs ``instance`` holds (ng ``list``)."""
        reply = await self.send(instance, {"command": "list", "limit": limit})
        calls = reply.get("calls")
        return [c for c in calls if isinstance(c, str)] if isinstance(calls, list) else []

    def last_heard(self, call_id: str) -> float | None:
        """When the instance holding ``call_id`` last sent anything (loop time)."""
        instance = self.set.instance_for(call_id)
        return None if instance is None else self._connections[id(instance)].last_heard

    def _instance(self, call_id: str) -> Instance:
        instance = self.set.instance_for(call_id)
        if instance is None:
            raise EngineRefused(f"no rtpengine holds call {call_id!r}")
        return instance

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        if self.dtmf_log is not None:
            self.dtmf_log.close()


def call_totals(reply: Message) -> tuple[int, int, int]:
    """RTP packets, bytes and errors of a ``query``/``delete`` reply's ``totals``."""
    totals = reply.get("totals")
    rtp = totals.get("RTP") if isinstance(totals, dict) else None
    if not isinstance(rtp, dict):
        return 0, 0, 0
    figures = [rtp.get(k) for k in ("packets", "bytes", "errors")]
    packets, octets, errors = (v if isinstance(v, int) else 0 for v in figures)
    return packets, octets, errors
