"""An SMPP 3.4 SMSC as a carrier: the asyncio shell around ``smpp.EsmeConnection``.

Configured with ``--smpp`` (``CALLSWITCH_SMPP``, ``smpp = [...]`` in callswitch.toml),
one string per SMSC::

    name=smpp://SYSTEM_ID:PASSWORD@HOST:PORT;system_type=cs;window=10;prefix=+1

The carrier keeps one bind_transceiver session up, reconnecting with backoff (1 s,
doubling to 30 s) when it drops. A message is cut into parts (UDH concatenation with
an 8-bit reference) and each part is one submit_sm asking for a delivery receipt;
at most ``window`` submit_sm wait for their answers at once. While the link is down
or the window stays full the carrier answers ``CarrierUnavailable`` and the message
stays queued in the store. A deliver_sm is a receipt (matched to the message by the
SMSC's id of its last part) or a message for one of our numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from control_api.sms.carriers import (
    CarrierEvents,
    CarrierRejected,
    CarrierUnavailable,
    OutboundSms,
)
from control_api.sms.smpp import (
    ESME_RMSGQFUL,
    ESME_ROK,
    ESME_RSYSERR,
    ESME_RTHROTTLED,
    Bound,
    ConnectionLost,
    DeliverSm,
    EsmeConnection,
    SubmitResult,
    decode_short_message,
    parse_receipt,
    relative_validity,
    split_parts,
)

__all__ = ["SmppCarrier", "SmppSettings", "parse_smpp"]

log = logging.getLogger("callswitch.smpp")

MAX_BACKOFF_S = 30.0
WINDOW_WAIT_S = 5.0
SUBMIT_TIMEOUT_S = 15.0
MAX_LEADING_PARTS = 100_000
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_RETRY_STATUSES = (ESME_RTHROTTLED, ESME_RMSGQFUL, ESME_RSYSERR)
# Appendix B "err" values are SMSC-specific; any failure is Twilio's 30003-30008 family.
UNDELIVERED = 30003  # unreachable destination handset
REJECTED_BY_SMSC = 30007


@dataclass(frozen=True, slots=True)
class SmppSettings:
    """One ``--smpp`` entry: the SMSC's address, our bind credentials (SMPP 3.4
    §4.1.5), the window and the prefixes it serves."""

    name: str
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    window: int = 10
    prefixes: tuple[str, ...] = ()
    enquire_interval: float = 30.0


def parse_smpp(value: Any) -> SmppSettings:
    """``NAME=smpp://SYSTEM_ID:PASSWORD@HOST:PORT[;key=value...]``; ValueError if not."""
    name, equals, uri = str(value).partition("=")
    name = name.strip()
    if not equals or not _NAME.fullmatch(name):
        raise ValueError("expected NAME=smpp://SYSTEM_ID:PASSWORD@HOST:PORT[;window=N...]")
    if not uri.startswith("smpp://"):
        raise ValueError(f"smpp {name}: expected an smpp:// URI")
    rest, *params = uri[len("smpp://") :].split(";")
    userinfo, at, host_port = rest.rpartition("@")
    if not at:
        raise ValueError(f"smpp {name}: expected SYSTEM_ID:PASSWORD@ before the host")
    system_id, _, password = userinfo.partition(":")
    host, colon, port = host_port.rpartition(":")
    if not colon or not port.isdigit() or not 0 < int(port) < 65536 or not host:
        raise ValueError(f"smpp {name}: expected HOST:PORT")
    options: dict[str, Any] = {}
    prefixes: list[str] = []
    for param in params:
        key, _, val = param.partition("=")
        key = key.strip().lower()
        if key == "system_type":
            options["system_type"] = unquote(val)
        elif key == "window":
            if not val.isdigit() or not 1 <= int(val) <= 1000:
                raise ValueError(f"smpp {name}: window is 1 to 1000")
            options["window"] = int(val)
        elif key == "prefix":
            prefixes.append(val)
        elif key == "enquire_link":
            options["enquire_interval"] = float(val)
        else:
            raise ValueError(f"smpp {name}: unknown parameter {key}")
    return SmppSettings(
        name=name,
        host=host.strip("[]"),
        port=int(port),
        system_id=unquote(system_id),
        password=unquote(password),
        prefixes=tuple(prefixes),
        **options,
    )


def _address(number: str) -> tuple[int, int, str]:
    """(ton, npi, address) of a number: international E.164, or alphanumeric."""
    if number.startswith("+") and number[1:].isdigit():
        return 1, 1, number[1:]
    if number.isdigit():
        return 0, 1, number
    return 5, 0, number


def _number(ton: int, address: str) -> str:
    if ton == 1 or (address.isdigit() and len(address) > 6):
        return "+" + address.lstrip("+")
    return address


class SmppCarrier:
    """One SMSC, reached as an ESME over TCP."""

    def __init__(self, settings: SmppSettings, events: CarrierEvents) -> None:
        self.settings = settings
        self.name = settings.name
        self.events = events
        self.esme: EsmeConnection | None = None
        self.bound = asyncio.Event()
        self._writer: asyncio.StreamWriter | None = None
        self._waiting: dict[int, asyncio.Future] = {}
        self._slots = asyncio.Condition()
        self._references = itertools.count(1)
        self._parts: dict[tuple[str, int], dict[int, str]] = {}
        # SMSC ids of the parts before the last of each long message: their receipts
        # are not the message's (bounded: the oldest are forgotten first).
        self._leading_parts: dict[str, None] = {}
        self._task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._stopping = False
        self._wake_timer = asyncio.Event()

    def serves(self, number: str) -> int:
        if not self.settings.prefixes:
            return 0
        digits = number.lstrip("+")
        best = -1
        for prefix in self.settings.prefixes:
            if digits.startswith(prefix.lstrip("+")):
                best = max(best, len(prefix.lstrip("+")))
        return best

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self.esme is not None and self._writer is not None:
            self.esme.unbind(asyncio.get_running_loop().time())
            self._flush()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.drain(), 1.0)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        self._task = None

    async def _run(self) -> None:
        failures = 0
        while not self._stopping:
            try:
                await self._session()
                failures = 0 if self.bound.is_set() else failures + 1
            except (OSError, asyncio.IncompleteReadError) as exc:
                log.info("smpp.connect_failed", extra={"carrier": self.name, "error": str(exc)})
                failures += 1
            finally:
                self._lost()
            if self._stopping:
                return
            delay = min(2.0 ** max(failures - 1, 0), MAX_BACKOFF_S)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        reader, writer = await asyncio.wait_for(asyncio.open_connection(s.host, s.port), 10.0)
        self._writer = writer
        self.esme = EsmeConnection(
            s.system_id,
            s.password,
            system_type=s.system_type,
            window=s.window,
            enquire_interval=s.enquire_interval,
        )
        self.esme.bind(loop.time())
        self._flush()
        try:
            while self.esme.state != "closed":
                deadline = self.esme.next_deadline()
                timeout = None if deadline is None else max(deadline - loop.time(), 0.0)
                try:
                    data = await asyncio.wait_for(reader.read(65536), timeout)
                except TimeoutError:
                    self.esme.handle_timer(loop.time())
                else:
                    if not data:
                        self.esme.connection_lost("the SMSC closed the connection")
                    else:
                        self.esme.receive_data(data, loop.time())
                self._flush()
                await self._dispatch(self.esme.events())
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _flush(self) -> None:
        if self.esme is not None and self._writer is not None:
            data = self.esme.data_to_send()
            if data:
                self._writer.write(data)

    async def _dispatch(self, events: list) -> None:
        for event in events:
            if isinstance(event, Bound):
                self.bound.set()
                log.info("smpp.bound", extra={"carrier": self.name, "smsc": event.system_id})
                if self.events.available is not None:
                    self._spawn(self.events.available(self.name))
            elif isinstance(event, SubmitResult):
                future = self._waiting.pop(event.sequence, None)
                if future is not None and not future.done():
                    future.set_result(event)
                async with self._slots:
                    # One slot freed: one waiter (waking all of a full queue costs each
                    # a trip round the loop to find the window full again).
                    self._slots.notify(1)
            elif isinstance(event, DeliverSm):
                self._spawn(self._deliver(event))
            elif isinstance(event, ConnectionLost):
                log.info("smpp.lost", extra={"carrier": self.name, "reason": event.reason})
                self.bound.clear()

    def _lost(self) -> None:
        self.bound.clear()
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(CarrierUnavailable("the SMPP link dropped"))
        self._waiting.clear()
        self._writer = None

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, event: DeliverSm) -> None:
        pdu = event.pdu
        receipt = parse_receipt(pdu)
        if receipt is not None:
            if receipt.message_id in self._leading_parts:
                self._leading_parts.pop(receipt.message_id)
                return  # a message follows the receipt of its last part
            if receipt.final:
                error = None if receipt.delivered else UNDELIVERED
                await self.events.receipt(self.name, receipt.message_id, receipt.delivered, error)
            return
        text, concat = decode_short_message(pdu)
        source = _number(pdu.integer("source_addr_ton"), pdu.text("source_addr"))
        destination = _number(pdu.integer("dest_addr_ton"), pdu.text("destination_addr"))
        if concat is not None and concat.total > 1:
            key = (source, concat.reference)
            parts = self._parts.setdefault(key, {})
            parts[concat.number] = text
            if len(parts) < concat.total:
                return
            del self._parts[key]
            text = "".join(parts[n] for n in sorted(parts))
        await self.events.inbound(source, destination, text)

    async def _slot(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WINDOW_WAIT_S
        async with self._slots:
            while self.esme is None or not self.esme.can_submit:
                if not self.bound.is_set():
                    raise CarrierUnavailable("not bound to the SMSC")
                left = deadline - loop.time()
                if left <= 0:
                    raise CarrierUnavailable("the SMPP window stayed full")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slots.wait(), left)

    async def submit(self, sms: OutboundSms) -> str:
        if not self.bound.is_set() or self.esme is None:
            raise CarrierUnavailable("not bound to the SMSC")
        coding, parts = split_parts(sms.body, next(self._references) & 0xFF)
        source_ton, source_npi, source = _address(sms.from_)
        dest_ton, dest_npi, destination = _address(sms.to)
        loop = asyncio.get_running_loop()
        futures = []
        for part in parts:
            await self._slot()
            sequence = self.esme.submit(
                loop.time(),
                source_addr_ton=source_ton,
                source_addr_npi=source_npi,
                source_addr=source,
                dest_addr_ton=dest_ton,
                dest_addr_npi=dest_npi,
                destination_addr=destination,
                esm_class=0x40 if len(parts) > 1 else 0,
                registered_delivery=1,
                data_coding=coding,
                validity_period=relative_validity(sms.validity_period)
                if sms.validity_period
                else "",
                short_message=part,
            )
            future = loop.create_future()
            self._waiting[sequence] = future
            futures.append(future)
            self._flush()
        try:
            results = await asyncio.wait_for(asyncio.gather(*futures), SUBMIT_TIMEOUT_S)
        except TimeoutError:
            raise CarrierUnavailable("the SMSC did not answer submit_sm") from None
        for result in results:
            if result.status in _RETRY_STATUSES:
                raise CarrierUnavailable(f"the SMSC answered status 0x{result.status:x}")
            if result.status != ESME_ROK:
                raise CarrierRejected(
                    f"the SMSC refused the message (status 0x{result.status:x})",
                    REJECTED_BY_SMSC,
                )
        # Receipts are matched by the id of the last part: when it is delivered, all were.
        for result in results[:-1]:
            self._leading_parts[result.message_id] = None
        while len(self._leading_parts) > MAX_LEADING_PARTS:
            self._leading_parts.pop(next(iter(self._leading_parts)))
        return results[-1].message_id
