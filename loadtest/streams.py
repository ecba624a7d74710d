"""Concurrent bidirectional Media Streams: how many one core carries with p99 < 20 ms, no loss.

callswitch runs pinned to CPU 0; everything else shares CPU 1. Each step
starts a fresh server and places N bulk calls with SIPp at --rate calls/s to a
number whose TwiML is `<Connect><Stream>` to a local echo server. The bulk
callers stream a looped tone (rtp_stream, 20 ms PCMU, 50 packets/s); the
server sends each frame as a WebSocket `media` message, the echo server sends
every media payload straight back as a `media` message, and the server plays
it to the caller. The bulk calls' SDP points the server's RTP at a never-read
sink socket whose kernel drop counter shows how much echoed audio came back.

The echo server (the `websockets` sans-I/O protocol on uvloop, so that the
echo costs little) runs in a process of its own on CPU 1 and counts media
messages in and out. The server cannot be seen from inside, so latency is
measured end to end with a few probe calls whose media ends are sockets of a
uvloop harness in this process: each probe sends 20 ms PCMU packets whose
payload (the PCMU payload reaches the WebSocket untouched) starts with a magic,
a probe id, a sequence number and the send time (CLOCK_MONOTONIC, common to
all processes on Linux). The echo server notes when the matching media
message arrives (RTP -> WS: the server's delay from the packet's arrival to its
message leaving, plus the kernel, the echo server's own parsing and scheduling
on the shared CPU 1), writes its own send time into the payload and echoes it;
the probe notes when it comes back as RTP (WS -> RTP: includes the wait for
the server's next 20 ms playback tick, so about 10 ms on average by design).

A step meets the target when every stream started, no stream logged dropped
frames, probe loss is zero both ways, the bulk media flowed at >= 99.5% of
N x 50 messages/s both ways, and p99 RTP -> WS latency is under 20 ms.

    python loadtest/streams.py                 # 100, 200, ..., 500 streams, 30 s each
    python loadtest/streams.py --quick         # 20 and 50 streams, 5 s: a smoke run
    python loadtest/streams.py --levels 500 --profile   # py-spy the server in the window

Loopback only; bounded in calls and time; stops only the processes it started.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np
import uvloop

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from twilio.rest import Client  # noqa: E402
from websockets.frames import Frame, Opcode  # noqa: E402
from websockets.http11 import Request  # noqa: E402
from websockets.protocol import State  # noqa: E402
from websockets.server import ServerProtocol  # noqa: E402

from loadtest import results  # noqa: E402
from loadtest.bridge import (  # noqa: E402
    BackgroundSipp,
    MediaSink,
    cpu_seconds,
    profile_server,
    sipp_dir,
    summarize_profile,
)
from tests.interop.harness import CallswitchServer  # noqa: E402
from tests.interop.sipp import find_sipp  # noqa: E402
from tests.interop.test_voice_webhooks import LocalHttpClient, credentials  # noqa: E402
from tests.interop.webhook_app import WebhookApp, twiml  # noqa: E402

BULK_NUMBER = "+15550040000"
PROBE_NUMBER = "+15550040001"

TARGET_STREAMS = 500
MAX_P99_MS = 20.0
BULK_MEDIA_SHARE = 0.995  # of N x 50 messages/s that must flow each way (window edges)

PTIME = 0.020
PCMU = 0
PAYLOAD_BYTES = 160
MAGIC = b"STRM"
MAGIC_B64 = base64.b64encode(MAGIC[:3])  # what every stamped payload's base64 starts with
RTP_FIXED = struct.Struct("!BBHII")  # V=2 byte, marker/PT, sequence, timestamp, SSRC
STAMP = struct.Struct("!4sHIQQ")  # magic, probe id, sequence, send time, echo time (ns)
SETUP_TIMEOUT = 15.0  # probes must hear the server within this after their SIPp starts
SETTLE = 1.0
GRACE = 0.5
SILENCE = b"\xff" * PAYLOAD_BYTES


# -- the echo server: a process of its own on CPU 1


class EchoConnection(asyncio.Protocol):
    """One Media Streams WebSocket, served by the websockets sans-I/O protocol:
    every `media` message goes straight back as a `media` message with the same
    payload (a stamped probe payload gets the echo time written in first)."""

    def __init__(self, server: EchoServer) -> None:
        self.server = server
        self.ws = ServerProtocol(max_size=1 << 20)
        self.transport: asyncio.Transport | None = None
        self.stream_sid = b""
        self.handshaken = False

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.server.connections += 1

    def connection_lost(self, exc) -> None:
        self.server.connections -= 1

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        ws.receive_data(data)
        for event in ws.events_received():
            if isinstance(event, Request):
                ws.send_response(ws.accept(event))
                self.handshaken = ws.state is State.OPEN
            elif isinstance(event, Frame) and event.opcode is Opcode.TEXT:
                self._message(event.data)
        out = ws.data_to_send()
        if out:
            self.transport.write(b"".join(out))
        if ws.close_expected() or ws.state is State.CLOSED:
            self.transport.close()

    def eof_received(self) -> None:
        self.ws.receive_eof()
        out = self.ws.data_to_send()
        if out:
            self.transport.write(b"".join(out))

    def _message(self, data: bytes) -> None:
        server = self.server
        start = data.find(b'"payload":"')
        if start < 0:  # connected, start, stop, mark, dtmf
            message = json.loads(data)
            event = message.get("event")
            if event == "start":
                self.stream_sid = message.get("streamSid", "").encode()
                server.started += 1
                self._send(SILENCE_B64)  # one frame, so a probe learns the server's port
            elif event == "stop":
                server.stopped += 1
            return
        now = time.monotonic_ns()
        server.received += 1
        start += 11
        end = data.index(b'"', start)
        payload = data[start:end]
        if payload.startswith(MAGIC_B64):
            raw = bytearray(base64.b64decode(payload))
            if raw[:4] == MAGIC:
                _, probe, sequence, sent_ns, _ = STAMP.unpack_from(raw, 0)
                echo_ns = time.monotonic_ns()
                struct.pack_into("!Q", raw, 18, echo_ns)
                payload = base64.b64encode(raw)
                server.probes.append((probe, sequence, sent_ns, now, echo_ns))
        self._send(payload)

    def _send(self, payload_b64: bytes) -> None:
        if not self.handshaken or self.ws.state is not State.OPEN:
            return
        self.ws.send_text(
            b'{"event":"media","streamSid":"'
            + self.stream_sid
            + b'","media":{"payload":"'
            + payload_b64
            + b'"}}'
        )
        self.server.sent += 1


SILENCE_B64 = base64.b64encode(SILENCE)


class EchoServer:
    """Counters of the echo process, read over a pipe by the load side."""

    def __init__(self) -> None:
        self.connections = 0
        self.started = 0
        self.stopped = 0
        self.received = 0  # media messages in
        self.sent = 0  # media messages out
        self.probes: list[tuple[int, int, int, int, int]] = []

    def counters(self) -> dict[str, int]:
        return {
            "connections": self.connections,
            "started": self.started,
            "stopped": self.stopped,
            "ws_in": self.received,
            "ws_out": self.sent,
            "echo_cpu_ns": time.process_time_ns(),
        }


def echo_main(control: Connection, lifetime: float) -> None:
    """The echo process: serve on 127.0.0.1 until told to stop (or `lifetime` s)."""
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {1})
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    state = EchoServer()
    done = loop.create_future()

    def on_command() -> None:
        try:
            command = control.recv()
        except EOFError:
            command = "stop"
        os.set_blocking(control.fileno(), True)  # add_reader made it non-blocking
        try:
            if command == "counters":
                control.send(state.counters())
            elif command == "probes":
                control.send(state.probes)
                state.probes = []
        finally:
            os.set_blocking(control.fileno(), False)
        if command in ("counters", "probes"):
            return
        if not done.done():
            done.set_result(None)

    async def serve() -> None:
        server = await loop.create_server(lambda: EchoConnection(state), "127.0.0.1", 0)
        control.send(server.sockets[0].getsockname()[1])
        loop.add_reader(control.fileno(), on_command)
        try:
            await asyncio.wait_for(done, lifetime)
        except TimeoutError:
            pass
        finally:
            loop.remove_reader(control.fileno())
            server.close()

    try:
        loop.run_until_complete(serve())
    finally:
        loop.close()


class EchoProcess:
    """The echo server's process and the load side's end of its control pipe."""

    def __init__(self, lifetime: float) -> None:
        context = multiprocessing.get_context("fork")  # started before any thread
        self._control, child = context.Pipe()
        self.process = context.Process(target=echo_main, args=(child, lifetime), daemon=True)
        self.process.start()
        child.close()
        self._lock = threading.Lock()
        if not self._control.poll(10):
            self.close()
            raise RuntimeError("echo server did not start")
        self.port: int = self._control.recv()

    def _ask(self, command: str):
        with self._lock:
            self._control.send(command)
            if not self._control.poll(10):
                raise RuntimeError(f"echo server did not answer {command!r}")
            return self._control.recv()

    def counters(self) -> dict[str, int]:
        return self._ask("counters")

    def probes(self) -> list[tuple[int, int, int, int, int]]:
        return self._ask("probes")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._control.send("stop")
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
        self._control.close()


# -- the probe harness: media ends of the probe calls, in a uvloop thread


@dataclass
class Direction:
    """One way through the server over the measurement window."""

    sent: int = 0
    received: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.sent - self.received

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def drift_ms(self) -> float:
        """Median latency of the window's last tenth minus its first tenth (in
        arrival order): a queue that grows (jitter buffers filling as the
        server's media clock skips ticks) shows here, not in a steady offset."""
        n = len(self.latencies_ms) // 10
        if n == 0:
            return float("nan")
        return float(np.median(self.latencies_ms[-n:]) - np.median(self.latencies_ms[:n]))

    def summary(self) -> dict[str, float | int]:
        return {
            "sent": self.sent,
            "received": self.received,
            "lost": self.lost,
            "drift_ms": round(self.drift_ms(), 3),
            "p50_ms": round(self.percentile(50), 3),
            "p99_ms": round(self.percentile(99), 3),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 3),
        }


@dataclass
class ProbeResult:
    probes: int
    learned: int  # probe sockets that heard the server (their stream started)
    window_s: float
    rates: dict[str, float]  # what `sample` counted, per second of the window
    to_ws: Direction  # RTP -> server -> WebSocket (seen by the echo server)
    from_ws: Direction  # WebSocket -> server -> RTP (seen by the probe)
    round_trip: Direction


class ProbeSocket(asyncio.DatagramProtocol):
    """The caller's media end of a probe call: learns the server's port from the
    first PCMU packet (the echo server's greeting frame), then sends a stamped
    packet each tick and notes the echoes."""

    def __init__(self, harness: ProbeHarness, probe_id: int) -> None:
        self.harness = harness
        self.probe_id = probe_id
        self.peer: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.sequence = 0
        self.packet = bytearray(12 + PAYLOAD_BYTES)
        self.packet[12:] = SILENCE

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.monotonic_ns()
        if len(data) < 12 or data[0] & 0xC0 != 0x80 or data[1] & 0x7F != PCMU:
            return
        if self.peer is None:
            self.peer = addr[:2]
        if len(data) >= 12 + STAMP.size and data[12:16] == MAGIC:
            _, probe, sequence, sent_ns, echo_ns = STAMP.unpack_from(data, 12)
            self.harness.echoed(probe, sequence, sent_ns, echo_ns, now)

    def error_received(self, exc) -> None:
        pass

    def send(self) -> int:
        self.sequence = sequence = (self.sequence + 1) & 0xFFFFFFFF
        RTP_FIXED.pack_into(
            self.packet, 0, 0x80, PCMU, sequence & 0xFFFF, (sequence * PAYLOAD_BYTES) & 0xFFFFFFFF,
            0x5EED0000 + self.probe_id,
        )  # fmt: skip
        sent_ns = time.monotonic_ns()
        STAMP.pack_into(self.packet, 12, MAGIC, self.probe_id, sequence, sent_ns, 0)
        self.transport.sendto(self.packet, self.peer)
        return sent_ns


class ProbeHarness:
    """`probes` sockets on 127.0.0.1 driven by a uvloop loop in a thread. After
    :meth:`start`, `ports` are the ports for the probe calls' SDP. It waits for
    every socket to hear the server (at most `setup_timeout` s after `go`),
    settles, measures for `seconds`, collects the echo server's notes, stops."""

    def __init__(
        self,
        probes: int,
        seconds: float,
        echo: EchoProcess,
        sample: Callable[[], dict[str, float | None]],
        setup_timeout: float = SETUP_TIMEOUT,
    ) -> None:
        self.probes = probes
        self.seconds = seconds
        self.echo = echo
        self.sample = sample
        self.setup_timeout = setup_timeout
        self.ports: list[int] = []
        self.ready = threading.Event()
        self.window_started = threading.Event()
        self.go = threading.Event()
        self.result: ProbeResult | None = None
        self.error: BaseException | None = None
        self._sockets: list[ProbeSocket] = []
        self._window: tuple[int, int] | None = None
        self._seen: set[tuple[int, int]] = set()
        self._sent = 0
        self._from_ws = Direction()
        self._round_trip = Direction()
        self._sending = True
        self._thread = threading.Thread(target=self._main, name="probe-harness", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self.ready.wait(10) or self.error is not None:
            raise RuntimeError(f"probe harness did not open its sockets: {self.error!r}")

    def join(self, timeout: float) -> ProbeResult:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"probe harness still running after {timeout:.0f} s")
        if self.result is None:
            raise RuntimeError(f"probe harness failed: {self.error!r}")
        return self.result

    def _in_window(self, sent_ns: int) -> bool:
        window = self._window
        return window is not None and window[0] <= sent_ns < window[1]

    def echoed(self, probe: int, sequence: int, sent_ns: int, echo_ns: int, now_ns: int) -> None:
        if not self._in_window(sent_ns) or (probe, sequence) in self._seen:
            return
        self._seen.add((probe, sequence))
        self._from_ws.received += 1
        self._from_ws.latencies_ms.append((now_ns - echo_ns) / 1e6)
        self._round_trip.received += 1
        self._round_trip.latencies_ms.append((now_ns - sent_ns) / 1e6)

    def _main(self) -> None:
        loop = uvloop.new_event_loop()
        try:
            self.result = loop.run_until_complete(self._run())
        except BaseException as exc:  # reported by join()
            self.error = exc
        finally:
            loop.close()
            self.ready.set()
            self.window_started.set()

    async def _run(self) -> ProbeResult:
        loop = asyncio.get_running_loop()
        try:
            for probe_id in range(self.probes):
                _, sock = await loop.create_datagram_endpoint(
                    lambda i=probe_id: ProbeSocket(self, i), local_addr=("127.0.0.1", 0)
                )
                self._sockets.append(sock)
            self.ports = [s.transport.get_extra_info("sockname")[1] for s in self._sockets]
            self.ready.set()
            return await self._measure(loop)
        finally:
            for sock in self._sockets:
                if sock.transport is not None:
                    sock.transport.close()

    async def _measure(self, loop) -> ProbeResult:
        sender = asyncio.ensure_future(self._send_loop(loop))
        try:
            for _ in range(int(self.setup_timeout * 20) + 200):
                if self.go.is_set():
                    break
                await asyncio.sleep(0.05)
            for _ in range(int(self.setup_timeout * 20)):
                if all(s.peer is not None for s in self._sockets):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(SETTLE)
            before = self.sample()
            start = time.monotonic_ns()
            self._window = (start, start + int(self.seconds * 1e9))
            self.window_started.set()
            await asyncio.sleep(self.seconds)
            after = self.sample()
            wall = (time.monotonic_ns() - start) / 1e9
            self._sending = False
            await asyncio.sleep(GRACE)
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        to_ws = Direction(sent=self._sent)
        echoed = 0
        seen: set[tuple[int, int]] = set()
        for probe, sequence, sent_ns, arrived_ns, _ in self.echo.probes():
            if self._in_window(sent_ns) and (probe, sequence) not in seen:
                seen.add((probe, sequence))
                echoed += 1
                to_ws.received += 1
                to_ws.latencies_ms.append((arrived_ns - sent_ns) / 1e6)
        self._from_ws.sent = echoed
        self._round_trip.sent = self._sent
        rates = {
            name: (after[name] - value) / wall
            for name, value in before.items()
            if value is not None and after.get(name) is not None
        }
        learned = sum(s.peer is not None for s in self._sockets)
        return ProbeResult(
            self.probes, learned, self.seconds, rates, to_ws, self._from_ws, self._round_trip
        )

    async def _send_loop(self, loop) -> None:
        """Every 20 ms one packet from each socket that knows its peer; ticks at
        start + n x 20 ms, skipping ahead when 5 ticks behind."""
        tick = loop.time()
        limit = int((self.setup_timeout * 2 + self.seconds + 40) / PTIME)
        for _ in range(limit):
            if not self._sending:
                return
            for sock in self._sockets:
                if sock.peer is None:
                    continue
                if self._in_window(sock.send()):
                    self._sent += 1
            tick += PTIME
            now = loop.time()
            if now - tick > 5 * PTIME:
                tick = now
            await asyncio.sleep(max(0.0, tick - now))


# -- one step


@dataclass
class Step:
    streams: int
    probes: int
    started: int = 0  # stream.started events in the server log at the window's end
    dropped: int | None = None  # sum of `dropped` over stream.stopped lines after hang-up
    stopped: int = 0
    result: ProbeResult | None = None
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: str = ""

    @property
    def total(self) -> int:
        return self.streams + self.probes

    def rate(self, name: str) -> float | None:
        return None if self.result is None else self.result.rates.get(name)

    def bulk_loss_pct(self) -> tuple[float | None, float | None]:
        """Shortfall of media messages into the echo server (against (N + probes)
        x 50/s) and of echoed RTP back to the bulk callers (against N x 50/s)."""
        ws_in, back = self.rate("ws_in"), self.rate("caller_sink")
        into = None if ws_in is None else 100.0 * (1 - ws_in / (self.total / PTIME))
        out = None if back is None else 100.0 * (1 - back / (self.streams / PTIME))
        return into, out

    @property
    def meets(self) -> bool:
        r = self.result
        into, out = self.bulk_loss_pct()
        return (
            r is not None
            and not self.errors
            and self.started >= self.total
            and r.learned == r.probes
            and self.dropped == 0
            and r.to_ws.lost == 0
            and r.from_ws.lost == 0
            and into is not None
            and into <= 100 * (1 - BULK_MEDIA_SHARE)
            and out is not None
            and out <= 100 * (1 - BULK_MEDIA_SHARE)
            and r.to_ws.percentile(99) < MAX_P99_MS
        )

    def row(self) -> str:
        r = self.result
        if r is None:
            return f"  {self.streams:5d}  (no measurement)"

        def num(value: float | None, fmt: str, width: int) -> str:
            return "?".rjust(width) if value is None else format(value, fmt).rjust(width)

        into, out = self.bulk_loss_pct()
        cpu = self.rate("server_cpu")
        return (
            f"  {self.streams:5d}  {self.started:5d}  "
            f"{num(self.rate('ws_in'), '.0f', 6)} {num(self.rate('ws_out'), '.0f', 6)}  "
            f"{r.to_ws.percentile(50):5.2f} {r.to_ws.percentile(99):6.2f}  "
            f"{r.from_ws.percentile(50):5.2f} {r.from_ws.percentile(99):6.2f}  "
            f"{num(into, '.2f', 5)} {num(out, '.2f', 5)}  "
            f"{r.to_ws.lost:3d}/{r.to_ws.sent:<5d} {r.from_ws.lost:3d}/{r.from_ws.sent:<5d}  "
            f"{num(None if cpu is None else cpu * 100, '.0f', 4)}%  "
            f"{num(self.dropped, 'd', 6)}  {'yes' if self.meets else 'NO'}"
        )

    def as_level(self) -> dict:
        """The common row (loadtest/results.py): latency is RTP -> WebSocket, the
        target's; loss is the worse of the bulk media shortfalls."""
        r = self.result
        into, out = self.bulk_loss_pct()
        losses = [v for v in (into, out) if v is not None]
        cpu = self.rate("server_cpu")
        ws_in, ws_out = self.rate("ws_in"), self.rate("ws_out")
        return results.level(
            self.streams,
            throughput=None if ws_in is None or ws_out is None else ws_in + ws_out,
            throughput_unit="media messages/s (both ways)",
            latency_p50_ms=None if r is None else r.to_ws.percentile(50),
            latency_p99_ms=None if r is None else r.to_ws.percentile(99),
            loss_pct=max(losses) if losses else None,
            cpu_pct=None if cpu is None else cpu * 100,
            meets=self.meets,
            detail=self.as_json(),
        )

    def as_json(self) -> dict:
        r = self.result
        into, out = self.bulk_loss_pct()
        return {
            "streams": self.streams,
            "probes": self.probes,
            "started": self.started,
            "stopped": self.stopped,
            "dropped": self.dropped,
            "window_rates_per_s": None if r is None else r.rates,
            "bulk_loss_pct": {"rtp_to_ws": into, "ws_to_rtp": out},
            "rtp_to_ws": None if r is None else r.to_ws.summary(),
            "ws_to_rtp": None if r is None else r.from_ws.summary(),
            "round_trip": None if r is None else r.round_trip.summary(),
            "window_s": None if r is None else r.window_s,
            "meets_target": self.meets,
            "errors": self.errors,
            "notes": self.notes,
        }


HEADER = (
    "      N  start  ws msgs/s     RTP->WS ms    WS->RTP ms    bulk loss %  probe lost/sent"
    "      server  server  meets\n"
    "                  in    out    p50    p99    p50    p99     in   out   RTP->WS   WS->RTP"
    "      CPU    dropped"
)


def started_count(server: CallswitchServer) -> int:
    return len(server.events("stream.started"))


def wait_started(server: CallswitchServer, want: int, timeout: float) -> int:
    """Poll the server log until `want` streams started or `timeout` passes."""
    deadline = time.monotonic() + timeout
    count = 0
    for _ in range(int(timeout / 0.5) + 2):
        count = started_count(server)
        if count >= want or time.monotonic() >= deadline or not server.is_alive():
            break
        time.sleep(0.5)
    return count


def create_numbers(server: CallswitchServer, app: WebhookApp, echo_port: int) -> None:
    sid, token = credentials(server)
    client = Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))
    body = twiml(f'<Connect><Stream url="ws://127.0.0.1:{echo_port}/echo"/></Connect>')
    app.routes["/stream"] = lambda r: body
    client.incoming_phone_numbers.create(phone_number=BULK_NUMBER, voice_url=app.url("/stream"))
    client.incoming_phone_numbers.create(phone_number=PROBE_NUMBER, voice_url=app.url("/stream"))


def run_step(work: Path, app: WebhookApp, echo: EchoProcess, sipp: str, streams: int, args) -> Step:
    probes, seconds, rate = args.probes, args.seconds, args.rate
    ramp = streams / rate
    ramp_budget = ramp * 2 + 15
    bulk_hold = ramp_budget + SETUP_TIMEOUT + SETTLE + seconds + 5
    probe_hold = SETUP_TIMEOUT + SETTLE + seconds + 3
    sipp_timeout = bulk_hold + ramp + 60
    step = Step(streams, probes)
    started: list[BackgroundSipp] = []
    harness: ProbeHarness | None = None
    sink = MediaSink()  # where the server plays the echoed audio of the bulk calls
    server = CallswitchServer.start(work / "server", cpu=0, rtp_size=2 * (streams + probes) + 200)

    def sample() -> dict[str, float | None]:
        counters = echo.counters()
        return {
            "server_cpu": cpu_seconds(server.pid),
            "echo_cpu": counters["echo_cpu_ns"] / 1e9,
            "ws_in": counters["ws_in"],
            "ws_out": counters["ws_out"],
            "caller_sink": sink.delivered(),
        }

    profiler = None
    try:
        create_numbers(server, app, echo.port)
        common = {"sipp": sipp, "cpu": 1, "timeout": sipp_timeout}
        harness = ProbeHarness(probes, seconds, echo, sample)
        harness.start()
        bulk_uac = BackgroundSipp(
            "bridge_uac.xml", server.sip_target, cwd=sipp_dir(work / "bulk-uac"),
            service=BULK_NUMBER.lstrip("+"), calls=streams, rate=rate, limit=streams + 10,
            pause_ms=int(bulk_hold * 1000), keys={"sink_port": sink.port},
            extra=("-max_socket", str(2 * streams + 100)), **common,
        )  # fmt: skip
        started.append(bulk_uac)
        count = wait_started(server, streams, ramp_budget)
        if count < streams:
            step.errors.append(f"only {count}/{streams} bulk streams started during the ramp")
        probe_uac = BackgroundSipp(
            "bridge_probe_uac.xml", server.sip_target,
            cwd=sipp_dir(work / "probe-uac", harness.ports),
            service=PROBE_NUMBER.lstrip("+"), calls=probes, rate=min(probes, 10),
            limit=probes, pause_ms=int(probe_hold * 1000), extra=("-inf", "probes.csv"),
            **common,
        )  # fmt: skip
        started.append(probe_uac)
        harness.go.set()
        if args.profile and harness.window_started.wait(SETUP_TIMEOUT + SETTLE + 5):
            profile_path = work / f"py-spy-{streams}.txt"
            profiler = profile_server(server.pid, min(10.0, seconds), profile_path)
        step.result = harness.join(SETUP_TIMEOUT * 2 + SETTLE + seconds + GRACE + 30)
        step.started = started_count(server)
        if step.result.learned < probes:
            step.errors.append(
                f"only {step.result.learned}/{probes} probe streams heard the server "
                f"(their calls failed or set up too late: logs in {probe_uac.rundir})"
            )
        up = bulk_uac.counters().get("CurrentCall", 0)
        if up < streams:
            step.errors.append(f"only {up}/{streams} bulk calls up at the window's end")
        if profiler is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(20)
            step.profile = summarize_profile(profile_path)
        deadline = bulk_uac.start + bulk_hold + ramp + 30  # the calls end by themselves
        for background in (probe_uac, bulk_uac):
            result = background.wait(deadline - time.monotonic())
            started.remove(background)
            if result.failed:
                step.notes.append(
                    f"{background.rundir.name}: {result.failed} calls failed "
                    f"{result.failure_counters()} (logs in {background.rundir})"
                )
        stops: list[dict[str, str]] = []
        for _ in range(40):  # the stream.stopped lines follow the hang-ups
            stops = server.events("stream.stopped")
            if len(stops) >= step.started:
                break
            time.sleep(0.25)
        step.stopped = len(stops)
        step.dropped = sum(int(e.get("dropped", 0) or 0) for e in stops)
        if step.stopped < step.started:
            step.notes.append(f"only {step.stopped}/{step.started} stream.stopped lines")
    except Exception as exc:  # one step's failure goes in its row
        step.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
            profiler.wait(5)
        for background in started:
            background.stop()
        sink.close()
        if harness is not None:
            harness.go.set()
        problems = server.stop(grace=15)
        step.notes.extend(f"server: {p} (log: {server.log_path})" for p in problems)
        for clock in server.events("media_clock"):
            step.notes.append(
                f"media clock: {clock.get('skipped_ticks')} ticks skipped after stalls, "
                f"latest tick {clock.get('max_lag_ms')} ms late"
            )
    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (20, 50 streams)")
    parser.add_argument("--levels", default=None, help="comma-separated stream counts")
    parser.add_argument("--seconds", type=float, default=None, help="measurement window (30)")
    parser.add_argument("--probes", type=int, default=None, help="probe calls per step (10)")
    parser.add_argument("--rate", type=float, default=50.0, help="bulk calls placed per second")
    parser.add_argument("--profile", action="store_true", help="py-spy the server each window")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs in this directory")
    args = parser.parse_args(argv)
    default_levels = "20,50" if args.quick else "100,200,300,400,500"
    levels = [int(x) for x in (args.levels or default_levels).split(",")]
    args.seconds = args.seconds or (5.0 if args.quick else 30.0)
    args.probes = args.probes or (4 if args.quick else 10)
    sipp = find_sipp()
    if sipp is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2
    if len(os.sched_getaffinity(0)) < 2 and (os.cpu_count() or 1) < 2:
        print("needs two CPUs: the server on 0, the load on 1", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {1})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lifetime = len(levels) * (3 * args.seconds + 200) + 60
    echo = EchoProcess(lifetime)  # forked before any thread starts
    print(
        f"<Connect><Stream> to an echo server, callswitch on CPU 0; SIPp, echo server and "
        f"probe harness on CPU 1; {args.probes} probe calls, {args.seconds:.0f} s window, "
        f"set up at {args.rate:g} cps",
        flush=True,
    )
    print(HEADER, flush=True)
    steps: list[Step] = []
    try:
        with contextlib.ExitStack() as stack:
            app = stack.enter_context(WebhookApp())
            if args.keep:
                root = args.keep
                root.mkdir(parents=True, exist_ok=True)
            else:
                root = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="callswitch-streams-"))
                )
            for streams in levels:
                step = run_step(root / f"n{streams}", app, echo, sipp, streams, args)
                steps.append(step)
                print(step.row(), flush=True)
                for error in step.errors:
                    print(f"         ! {error}", flush=True)
                for note in step.notes:
                    print(f"         note: {note}", flush=True)
                if step.result is not None:
                    echo_cpu = step.result.rates.get("echo_cpu")
                    r = step.result
                    print(
                        f"         echo server CPU {100 * (echo_cpu or 0):.0f}%; latency drift "
                        f"over the window RTP->WS {r.to_ws.drift_ms():+.1f} ms, WS->RTP "
                        f"{r.from_ws.drift_ms():+.1f} ms; max RTP->WS "
                        f"{max(r.to_ws.latencies_ms, default=float('nan')):.1f} ms",
                        flush=True,
                    )
                if step.profile:
                    print(step.profile, flush=True)
    finally:
        echo.close()
    best = max((s.streams for s in steps if s.meets), default=None)
    print()
    print(
        f"target: every stream started, p99 RTP->WS < {MAX_P99_MS:.0f} ms, no probe packet "
        f"lost either way, bulk media >= {100 * BULK_MEDIA_SHARE:g}% of N x 50/s both ways, "
        f"no dropped frames logged. Latency is end to end on one machine (CLOCK_MONOTONIC): "
        f"RTP->WS = probe send to the echo server's read (server + kernel + the echo "
        f"server's scheduling on the shared CPU 1); WS->RTP = echo send to probe receive "
        f"(includes the wait for the server's 20 ms playback tick). bulk loss: in = media "
        f"messages short of (N + probes) x 50/s, out = echoed RTP at the callers' sink short "
        f"of N x 50/s (SIPp falling behind on CPU 1 shows up as 'in' loss too)."
    )
    if best is None:
        print("no step met the target")
    else:
        print(f"largest N that meets it: {best} streams on one core")
    verdict = "met" if best is not None and best >= TARGET_STREAMS else "missed"
    print(f"{TARGET_STREAMS}-stream target: {verdict}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = results.report(
            "streams",
            target={
                "load": TARGET_STREAMS,
                "unit": "concurrent streams",
                "latency_p99_ms": MAX_P99_MS,
                "loss_pct": 100 * (1 - BULK_MEDIA_SHARE),
            },
            levels=[s.as_level() for s in steps],
            largest_passing=best,
            load_unit="concurrent streams",
            latency="probe RTP packet to its media message at the echo server (RTP -> WS)",
            probes=args.probes,
            window_s=args.seconds,
            rate_cps=args.rate,
        )
        results.write(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
