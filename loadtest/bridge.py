"""Bridged G.711 calls: how many one core relays with < 0.5% loss and p99 < 10 ms.

callswitch runs pinned to CPU 0; everything else shares CPU 1. Each step
starts a fresh server with two trunks and places N bulk calls with SIPp at
--rate calls/s to a number whose TwiML is `<Dial><Number>` through the first
trunk to a SIPp UAS. Both SIPp ends stream a looped tone (rtp_stream, 20 ms
PCMU) once the call is up, so each bridged call is 2 x 50 packets/s that the
server relays (media/bridge.py relay mode: each packet forwarded as it comes).
The bulk calls' SDP points the server's RTP at two never-read sink sockets
(one per side) whose kernel drop counters show what the server delivered.

Once the bulk calls are bridged, a few probe calls are placed the same way
(through a second trunk to a second SIPp UAS) whose SDP ports are sockets of a
uvloop harness in this process. The harness learns the server's caller-leg
port from the ringback, streams 20 ms PCMU packets carrying a sender id, a
sequence number and the send time; the callee-side socket learns the
callee-leg port from the first relayed packet and streams back the same way.
For --seconds the harness counts, each way, what was sent, what arrived and
the one-way latency (arrival - send time: the server's added delay plus the
harness's own scheduling on a shared CPU). A step meets the target when every
call bridged, probe loss is under 0.5% and p99 latency under 10 ms both ways.

    python loadtest/bridge.py                  # 100, 200, ..., 600 bridged calls, 30 s each
    python loadtest/bridge.py --quick          # 20 and 50 calls, 5 s: a smoke run
    python loadtest/bridge.py --levels 300 --profile   # py-spy the server in the window
    python loadtest/bridge.py --rtpengine --levels 100,300   # the bridges on rtpengine

With --rtpengine, each step also starts a real rtpengine (Debian rtpengine-daemon)
in userspace (``--config-file=none --table=-1 --num-threads=1``), pinned to the
server's CPU 0 (they share the core), and the server hands every bridge to it:
both parties are moved onto rtpengine by re-INVITE (the SIPp scenarios answer
re-INVITEs, and SIPp's RTP follows the new SDP; the probe harness learns the
rtpengine port of each probe socket from rtpengine's ``query``). The row then
shows callswitch's CPU and rtpengine's separately, and a step passes only if
every call (bulk and probes) was bridged on rtpengine and the target is met.

Loopback only; bounded in calls and time; stops only the processes it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import uvloop

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from twilio.rest import Client  # noqa: E402

from loadtest import results  # noqa: E402
from media.rtpengine.client import RtpEngines  # noqa: E402
from media.rtpengine.selection import EngineAddress  # noqa: E402
from tests.interop.audio import sine, ulaw_encode  # noqa: E402
from tests.interop.harness import CallswitchServer, free_port  # noqa: E402
from tests.interop.rtpengine import RtpEngineProcess, find_rtpengine  # noqa: E402
from tests.interop.sipp import SippResult, build_command, collect, find_sipp  # noqa: E402
from tests.interop.test_voice_webhooks import LocalHttpClient, credentials  # noqa: E402
from tests.interop.webhook_app import WebhookApp, twiml  # noqa: E402

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
BULK_NUMBER = "+15550030000"  # our number; its TwiML dials BULK_CALLEE
PROBE_NUMBER = "+15550030001"  # our number; its TwiML dials PROBE_CALLEE
BULK_PREFIX, BULK_CALLEE = "+1555010", "+15550100001"
PROBE_PREFIX, PROBE_CALLEE = "+1555020", "+15550200001"
TONE_HZ = 1000.0

TARGET_CALLS = 500
MAX_LOSS_PCT = 0.5
MAX_P99_MS = 10.0

PTIME = 0.020
PCMU = 0
PAYLOAD_BYTES = 160
MAGIC = b"BRLT"
RTP_FIXED = struct.Struct("!BBHII")  # V=2 byte, marker/PT, sequence, timestamp, SSRC
PROBE_STAMP = struct.Struct("!4sHIQ")  # magic, sender id, sequence, send time (monotonic ns)
SETUP_TIMEOUT = 15.0  # probes must be bridged within this after the probe SIPp starts
SETTLE = 1.0  # seconds between the last probe bridging and the measurement window
GRACE = 0.5  # seconds to wait for packets in flight after the window
BULK_MEDIA_SHARE = 0.99  # of 50 packets/s per bulk call and way that must reach the far end


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class MediaSink:
    """Where the bulk calls' SDP sends the server's RTP: a bound UDP port (and the
    RTCP port above it) that is never read. Its small receive buffer stays full,
    so the kernel drops what arrives and counts it per socket (/proc/net/udp),
    which tells exactly how many packets the server relayed to this side.

    SIPp 3.6.1 does not bind the ports [auto_media_port] puts in its SDP (its
    rtp_stream sends from one shared socket), so a per-call port would only
    earn the server ICMP port-unreachable replies.
    """

    def __init__(self) -> None:
        for _ in range(50):
            rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            rtp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            rtp.bind(("127.0.0.1", 0))
            self.port = rtp.getsockname()[1]
            rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                rtcp.bind(("127.0.0.1", self.port + 1))
            except OSError:
                rtp.close()
                rtcp.close()
                continue
            self._sockets = (rtp, rtcp)
            return
        raise RuntimeError("no free UDP port pair for a media sink")

    def delivered(self) -> int | None:
        """Datagrams that reached the RTP port (all dropped unread), or None."""
        local = f"0100007F:{self.port:04X}"
        with contextlib.suppress(OSError):
            for line in Path("/proc/net/udp").read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) >= 13 and fields[1] == local:
                    return int(fields[12])
        return None

    def close(self) -> None:
        for sock in self._sockets:
            sock.close()


# -- the probe harness: media ends of the probe calls, in a uvloop thread


@dataclass
class Direction:
    """One way through the bridge, over the measurement window."""

    sent: int = 0
    received: int = 0
    duplicates: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def loss_pct(self) -> float:
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else 100.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    def summary(self) -> dict[str, float | int]:
        return {
            "sent": self.sent,
            "received": self.received,
            "duplicates": self.duplicates,
            "loss_pct": round(self.loss_pct, 3),
            "p50_ms": round(self.percentile(50), 3),
            "p99_ms": round(self.percentile(99), 3),
            "max_ms": round(max(self.latencies_ms, default=float("nan")), 3),
        }


@dataclass
class ProbeResult:
    pairs: int
    callers_learned: int  # caller sockets that heard ringback (know the caller-leg port)
    callees_learned: int  # callee sockets that got relayed media (the call is bridged)
    window_s: float
    rates: dict[str, float]  # what `sample` counted, per second of the window
    forward: Direction  # caller -> server -> callee
    backward: Direction  # callee -> server -> caller


class ProbeSocket(asyncio.DatagramProtocol):
    """One media end of a probe call: learns the server's port from the first
    PCMU packet it receives, then sends a stamped packet each tick."""

    def __init__(self, harness: ProbeHarness, sender_id: int) -> None:
        self.harness = harness
        self.sender_id = sender_id
        self.peer: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.sequence = 0
        self.packet = bytearray(12 + PAYLOAD_BYTES)
        self.packet[12:] = b"\xff" * PAYLOAD_BYTES  # mu-law silence after the stamp

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        now = time.monotonic_ns()
        if len(data) < 12 or data[0] & 0xC0 != 0x80 or data[1] & 0x7F != PCMU:
            return  # not RTP, or RTCP (whose second octet is 200-204), or DTMF
        if self.peer is None:
            self.peer = addr[:2]
        if len(data) >= 12 + PROBE_STAMP.size and data[12:16] == MAGIC:
            _, sender, sequence, sent_ns = PROBE_STAMP.unpack_from(data, 12)
            self.harness.arrived(sender, sequence, sent_ns, now)
        # anything else is the ringback (or silence) the server sent on its own

    def error_received(self, exc) -> None:
        pass

    def send(self) -> int:
        """Send the next stamped packet; returns its send time (ns)."""
        self.sequence = sequence = (self.sequence + 1) & 0xFFFFFFFF
        RTP_FIXED.pack_into(
            self.packet, 0, 0x80, PCMU, sequence & 0xFFFF, (sequence * PAYLOAD_BYTES) & 0xFFFFFFFF,
            0x5EED0000 + self.sender_id,
        )  # fmt: skip
        sent_ns = time.monotonic_ns()
        PROBE_STAMP.pack_into(self.packet, 12, MAGIC, self.sender_id, sequence, sent_ns)
        self.transport.sendto(self.packet, self.peer)
        return sent_ns


class ProbeHarness:
    """`pairs` caller sockets (ids 0..pairs-1) and callee sockets (pairs..2*pairs-1)
    on 127.0.0.1, driven by a uvloop event loop in a thread of their own.

    After :meth:`start`, `caller_ports` and `callee_ports` are the ports to
    put in the probe calls' SDP. The thread waits (at most `setup_timeout` s)
    for every callee socket to receive relayed media, settles for a second,
    measures for `seconds`, and stops.
    """

    def __init__(
        self,
        pairs: int,
        seconds: float,
        sample: Callable[[], dict[str, float | None]],
        setup_timeout: float = SETUP_TIMEOUT,
        relearn: Callable[[], dict[int, int]] | None = None,
    ) -> None:
        self.relearn = relearn  # {our socket's port: the port to send to now} (rtpengine)
        self.pairs = pairs
        self.seconds = seconds
        self.sample = sample  # counters read at the window's start and end
        self.setup_timeout = setup_timeout
        self.caller_ports: list[int] = []
        self.callee_ports: list[int] = []
        self.ready = threading.Event()
        self.window_started = threading.Event()
        self.go = threading.Event()  # set when the probe calls have been placed
        self.result: ProbeResult | None = None
        self.error: BaseException | None = None
        self._sockets: list[ProbeSocket] = []
        self._window: tuple[int, int] | None = None  # [start, end) in monotonic ns
        self._seen: set[tuple[int, int]] = set()
        self._directions = (Direction(), Direction())
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

    def arrived(self, sender: int, sequence: int, sent_ns: int, now_ns: int) -> None:
        window = self._window
        if window is None or not window[0] <= sent_ns < window[1]:
            return
        direction = self._directions[0 if sender < self.pairs else 1]
        key = (sender, sequence)
        if key in self._seen:
            direction.duplicates += 1
            return
        self._seen.add(key)
        direction.received += 1
        direction.latencies_ms.append((now_ns - sent_ns) / 1e6)

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
            for sender_id in range(2 * self.pairs):
                _, sock = await loop.create_datagram_endpoint(
                    lambda i=sender_id: ProbeSocket(self, i), local_addr=("127.0.0.1", 0)
                )
                self._sockets.append(sock)
            ports = [s.transport.get_extra_info("sockname")[1] for s in self._sockets]
            self.caller_ports, self.callee_ports = ports[: self.pairs], ports[self.pairs :]
            self.ready.set()
            return await self._measure(loop)
        finally:
            for sock in self._sockets:
                if sock.transport is not None:
                    sock.transport.close()

    async def _measure(self, loop) -> ProbeResult:
        sender = asyncio.ensure_future(self._send_loop(loop))
        try:
            for _ in range(int(self.setup_timeout * 20) + 100):  # first the go, then bridging
                if self.go.is_set():
                    break
                await asyncio.sleep(0.05)
            callees = self._sockets[self.pairs :]
            for _ in range(int(self.setup_timeout * 20)):
                if all(s.peer is not None for s in callees):
                    break
                await asyncio.sleep(0.05)
            if self.relearn is not None:  # the parties were moved: send where they were
                try:
                    moved = await loop.run_in_executor(None, self.relearn)
                except Exception:  # rtpengine did not answer: the probes stay unmoved
                    moved = {}
                for sock in self._sockets:
                    port = sock.transport.get_extra_info("sockname")[1]
                    if port in moved:
                        sock.peer = ("127.0.0.1", moved[port])
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
        rates = {
            name: (after[name] - value) / wall
            for name, value in before.items()
            if value is not None and after.get(name) is not None
        }
        return ProbeResult(
            self.pairs,
            sum(s.peer is not None for s in self._sockets[: self.pairs]),
            sum(s.peer is not None for s in self._sockets[self.pairs :]),
            self.seconds,
            rates,
            *self._directions,
        )

    async def _send_loop(self, loop) -> None:
        """Every 20 ms, one packet from each socket that knows its peer. Ticks are
        at start + n * 20 ms; when the loop falls 5 ticks behind it skips ahead."""
        tick = loop.time()
        limit = int((self.setup_timeout * 2 + self.seconds + 30) / PTIME)
        for _ in range(limit):
            if not self._sending:
                return
            window = self._window
            for sock in self._sockets:
                if sock.peer is None:
                    continue
                sent_ns = sock.send()
                if window is not None and window[0] <= sent_ns < window[1]:
                    self._directions[0 if sock.sender_id < self.pairs else 1].sent += 1
            tick += PTIME
            now = loop.time()
            if now - tick > 5 * PTIME:
                tick = now
            await asyncio.sleep(max(0.0, tick - now))


# -- SIPp in the background, in a working directory that holds tone.ulaw


class BackgroundSipp:
    """SIPp started with `build_command` in `cwd` (where rtp_stream finds
    tone.ulaw and -inf files live), stopped by its own PID."""

    def __init__(self, scenario: str, target: str | None, *, cwd: Path, **options) -> None:
        self.rundir = cwd
        cwd.mkdir(parents=True, exist_ok=True)
        self.cmd = build_command(SCENARIOS / scenario, target, rundir=cwd, **options)
        self._out = open(cwd / "stdout.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT, cwd=cwd
        )
        self.start = time.monotonic()

    def counters(self) -> dict[str, int]:
        """The live cumulative counters (and CurrentCall) from SIPp's statistics file."""
        try:
            rows = list(
                csv.reader((self.rundir / "stats.csv").read_text().splitlines(), delimiter=";")
            )
        except OSError:
            return {}
        if len(rows) < 2:
            return {}
        out = {}
        for key, value in zip(rows[0], rows[-1], strict=False):
            name = key.removesuffix("(C)")
            if key.endswith("(C)") or key == "CurrentCall":
                with contextlib.suppress(ValueError):
                    out[name] = int(float(value))
        return out

    def wait(self, timeout: float) -> SippResult:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(max(0.0, timeout))
        return self.stop()

    def stop(self) -> SippResult:
        if self.proc.poll() is None:
            for sig, grace in ((signal.SIGUSR1, 2.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.proc.pid, sig)
                try:
                    self.proc.wait(grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._out.close()
        stdout = (self.rundir / "stdout.log").read_text("utf-8", "replace")
        return collect(
            self.cmd,
            self.rundir,
            self.proc.returncode,
            False,
            time.monotonic() - self.start,
            stdout,
        )


def sipp_dir(path: Path, inf_ports: list[int] | None = None) -> Path:
    """A SIPp working directory with tone.ulaw and, for probes, probes.csv."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "tone.ulaw").write_bytes(ulaw_encode(sine(TONE_HZ, 1.0, amplitude=0.3)))
    if inf_ports is not None:
        lines = ["SEQUENTIAL", *(f"{port};" for port in inf_ports)]
        (path / "probes.csv").write_text("\n".join(lines) + "\n")
    return path


# -- one step


@dataclass
class Step:
    calls: int
    probes: int
    bridged: int  # dial.bridged events (bulk + probes) in the server log at the window's end
    relay_mode: int  # of those, bridged in relay mode
    bulk_up: dict[str, int]  # the bulk caller's SIPp counters at the window's end
    result: ProbeResult | None
    bulk_successful: int = 0  # bulk calls SIPp completed (BYE and its 200)
    bulk_failed: int = 0
    errors: list[str] = field(default_factory=list)  # the step cannot meet the target
    notes: list[str] = field(default_factory=list)  # trouble after the window (hang-up)
    profile: str = ""
    engine: bool = False  # --rtpengine: the bridges were to go to rtpengine
    engine_bridged: int = 0  # rtpengine.bridged events (bulk + probes)
    probes_moved: int = 0  # probe sockets that learned their rtpengine port

    @property
    def packets_per_second(self) -> int:
        """Packets the server relays per second: 50 each way per bridged call."""
        return (self.calls + self.probes) * 2 * round(1 / PTIME)

    @property
    def all_bridged(self) -> bool:
        if self.engine:  # every call on rtpengine, every probe socket sending there
            return (
                self.engine_bridged >= self.calls + self.probes
                and self.probes_moved >= 2 * self.probes
            )
        return self.bridged >= self.calls + self.probes and self.relay_mode >= self.calls

    @property
    def meets(self) -> bool:
        r = self.result
        return (
            r is not None
            and self.all_bridged
            and not self.errors
            and r.callees_learned == r.pairs
            and all(d.loss_pct < MAX_LOSS_PCT for d in (r.forward, r.backward))
            and all(d.percentile(99) < MAX_P99_MS for d in (r.forward, r.backward))
        )

    def row(self) -> str:
        r = self.result
        if r is None:
            return f"  {self.calls:5d}  (no measurement)"
        f, b = r.forward, r.backward
        cpu = r.rates.get("server_cpu")
        cpu = "    ?" if cpu is None else f"{cpu * 100:4.0f}%"
        if self.engine:
            engine_cpu = r.rates.get("engine_cpu")
            cpu += "    ?" if engine_cpu is None else f" {engine_cpu * 100:4.0f}%"
        bulk = " ".join(
            "    ?" if r.rates.get(name) is None else f"{r.rates[name]:5.0f}"
            for name in ("callee_sink", "caller_sink")
        )
        return (
            f"  {self.calls:5d}  {self.packets_per_second:6d}  {bulk}  {self.bridged:5d}  "
            f"{f.loss_pct:5.2f} {b.loss_pct:5.2f}  "
            f"{f.percentile(50):5.2f} {b.percentile(50):5.2f}  "
            f"{f.percentile(99):6.2f} {b.percentile(99):6.2f}  "
            f"{max(f.latencies_ms, default=float('nan')):6.1f} "
            f"{max(b.latencies_ms, default=float('nan')):6.1f}  "
            f"{cpu}  {'yes' if self.meets else 'NO'}"
        )

    def as_level(self) -> dict:
        """The common row (loadtest/results.py): the worse of the two ways."""
        r = self.result
        ways = () if r is None else (r.forward, r.backward)
        rates = {} if r is None else r.rates
        delivered = [rates.get(name) for name in ("callee_sink", "caller_sink")]
        cpu = rates.get("server_cpu")

        def worst(values: list[float]) -> float | None:
            values = [v for v in values if v == v]  # NaN: no packet arrived that way
            return max(values) if values else None

        return results.level(
            self.calls,
            throughput=None if None in delivered else sum(delivered),
            throughput_unit="bulk packets/s relayed (both ways)",
            latency_p50_ms=worst([d.percentile(50) for d in ways]),
            latency_p99_ms=worst([d.percentile(99) for d in ways]),
            loss_pct=worst([d.loss_pct for d in ways]),
            cpu_pct=None if cpu is None else cpu * 100,
            meets=self.meets,
            detail=self.as_json(),
        )

    def as_json(self) -> dict:
        r = self.result
        return {
            "calls": self.calls,
            "probes": self.probes,
            "relayed_packets_per_s": self.packets_per_second,
            "bridged": self.bridged,
            "bridged_relay_mode": self.relay_mode,
            "bulk_sipp_at_window_end": self.bulk_up,
            "bulk_successful": self.bulk_successful,
            "bulk_failed": self.bulk_failed,
            "window_rates_per_s": None if r is None else r.rates,
            "forward": None if r is None else r.forward.summary(),
            "backward": None if r is None else r.backward.summary(),
            "window_s": None if r is None else r.window_s,
            "meets_target": self.meets,
            "rtpengine": self.engine,
            "rtpengine_bridged": self.engine_bridged,
            "probe_sockets_moved": self.probes_moved,
            "rtpengine_cpu_pct": None
            if r is None or r.rates.get("engine_cpu") is None
            else round(r.rates["engine_cpu"] * 100, 1),
            "errors": self.errors,
            "notes": self.notes,
        }


HEADER = (
    "      N  relayed  bulk pkts/s  bridged  loss %       p50 ms       p99 ms        max ms   "
    "server  meets\n"
    "          pkts/s     ->    <-           ->    <-     ->    <-     ->     <-     ->     <-  "
    "  CPU"
)


ENGINE_HEADER = HEADER.replace("server  meets", "callswitch rtpengine  meets").replace(
    "  CPU", "  CPU      CPU"
)


# -- --rtpengine: scenarios that take re-INVITEs, probes that follow them

_REINVITE_ANSWER = """
  <label id="wait"/>
  {wait}
  <label id="reinvite"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:moved@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=moved 1 2 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      {m_line}
      a=rtpmap:0 PCMU/8000
      a=ptime:20
      a=sendrecv

    ]]>
  </send>
  <recv request="ACK" crlf="true" next="wait"/>
  <label id="{after}"/>
"""


def reinvite_variant(scenario: str, directory: Path, hold_ms: int = 0) -> Path:
    """``scenario`` answering the re-INVITEs that move it onto rtpengine (and back):
    the caller's ``<pause/>`` becomes a wait of ``hold_ms`` for re-INVITEs, the
    callee's wait for BYE takes re-INVITEs too. SIPp's RTP follows the new SDP."""
    text = (SCENARIOS / scenario).read_text()
    m_line = next(line.strip() for line in text.splitlines() if line.strip().startswith("m=audio"))
    if "<pause/>" in text:  # a caller: hold, answering re-INVITEs, then BYE
        wait = f'<recv request="INVITE" timeout="{hold_ms}" ontimeout="hangup" next="reinvite"/>'
        block = _REINVITE_ANSWER.format(wait=wait, m_line=m_line, after="hangup")
        head, tail = text.split("<pause/>", 1)
        # The BYE's To is the callee's, not the last message's (a re-INVITE's To is us).
        tail = tail.replace(
            "[last_To:]", "To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]"
        )
        text = head + block + tail
    else:  # a callee: re-INVITEs or the server's BYE
        old = '<recv request="BYE" timeout="600000"/>'
        wait = '<recv request="INVITE" optional="true" next="reinvite"/>\n  ' + old.replace(
            "/>", ' next="bye"/>'
        )
        block = _REINVITE_ANSWER.format(wait=wait, m_line=m_line, after="bye")
        assert old in text, scenario
        text = text.replace(old, block, 1)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / scenario.replace(".xml", "_reinvite.xml")
    path.write_text(text)
    return path


def engine_ports(engine: RtpEngineProcess, marker: str, limit: int) -> dict[int, int]:
    """For the rtpengine calls whose ng call-id holds ``marker`` (the probe SIPp's
    ``-PID@``): {each party's own port: the rtpengine port that party sends to}."""

    async def ask() -> dict[int, int]:
        # A loaded rtpengine answers late: up to 10 s before the step gives up.
        engines = RtpEngines([EngineAddress("127.0.0.1", engine.ng_port)], attempts=20)
        instance = engines.set.instances[0]
        moved: dict[int, int] = {}
        try:
            for call_id in await engines.list(instance, limit):
                if marker not in call_id:
                    continue
                reply = await engines.send(instance, {"command": "query", "call-id": call_id})
                tags = reply.get("tags")
                for party in tags.values() if isinstance(tags, dict) else []:
                    for media in party.get("medias", []) if isinstance(party, dict) else []:
                        for stream in media.get("streams", [])[:1]:  # RTP, not RTCP
                            endpoint = stream.get("endpoint") or {}
                            local = stream.get("local port")
                            port = endpoint.get("port") if isinstance(endpoint, dict) else None
                            if isinstance(port, int) and isinstance(local, int):
                                moved[port] = local
        finally:
            engines.close()
        return moved

    return asyncio.run(ask())


def bridged_counts(server: CallswitchServer) -> tuple[int, int]:
    events = server.events("dial.bridged")
    return len(events), sum(e.get("mode") == "relay" for e in events)


def wait_bridged(server: CallswitchServer, want: int, timeout: float) -> int:
    """Poll the server log until `want` calls are bridged or `timeout` passes."""
    deadline = time.monotonic() + timeout
    count = 0
    for _ in range(int(timeout / 0.5) + 2):
        count = bridged_counts(server)[0]
        if count >= want or time.monotonic() >= deadline or not server.is_alive():
            break
        time.sleep(0.5)
    return count


def start_server(
    workdir: Path,
    calls: int,
    bulk_port: int,
    probe_port: int,
    server_args: tuple[str, ...] = results.TRUSTED_LOAD,
    spare_ports: int = 0,
) -> CallswitchServer:
    return CallswitchServer.start(
        workdir,
        cpu=0,
        # an RTP and an RTCP port for each of a call's two legs
        rtp_size=4 * calls + 400 + spare_ports,
        extra_args=(
            "--trunk",
            f"bulk=sip:127.0.0.1:{bulk_port};prefix={BULK_PREFIX}",
            "--trunk",
            f"probe=sip:127.0.0.1:{probe_port};prefix={PROBE_PREFIX}",
            *server_args,
        ),
    )


def create_numbers(server: CallswitchServer, app: WebhookApp) -> None:
    sid, token = credentials(server)
    client = Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))
    app.routes["/bulk"] = lambda r: twiml(f"<Dial><Number>{BULK_CALLEE}</Number></Dial>")
    app.routes["/probe"] = lambda r: twiml(f"<Dial><Number>{PROBE_CALLEE}</Number></Dial>")
    client.incoming_phone_numbers.create(phone_number=BULK_NUMBER, voice_url=app.url("/bulk"))
    client.incoming_phone_numbers.create(phone_number=PROBE_NUMBER, voice_url=app.url("/probe"))


def profile_server(pid: int, seconds: float, out: Path) -> subprocess.Popen | None:
    """py-spy without pausing the server (--nonblocking), raw collapsed stacks."""
    py_spy = Path(sys.executable).with_name("py-spy")
    if not py_spy.exists():
        return None
    cmd = ["taskset", "-c", "1", str(py_spy), "record", "--pid", str(pid), "--nonblocking"]
    cmd += ["-d", str(max(1, int(seconds))), "-r", "200", "-o", str(out), "-f", "raw"]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarize_profile(path: Path, top: int = 12) -> str:
    """The frames where the server spent its samples: self (leaf) and inclusive."""
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            total += n
            leaf[frames[-1]] += n
            for frame in set(frames):
                inclusive[frame] += n
    if not total:
        return "    (no py-spy samples)"
    lines = [f"    {total} samples; self time:"]
    lines += [f"      {100 * n / total:5.1f}%  {frame}" for frame, n in leaf.most_common(top)]
    lines.append("    inclusive:")
    lines += [f"      {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def run_step(
    work: Path,
    app: WebhookApp,
    sipp: str,
    calls: int,
    args: argparse.Namespace,
    *,
    server_args: tuple[str, ...] = results.TRUSTED_LOAD,
    attack: Callable[[CallswitchServer], contextlib.AbstractContextManager] | None = None,
    spare_ports: int = 0,
) -> Step:
    """One level: `calls` bulk calls, then the probes measured for a window.

    `attack(server)`, when given, is entered once the bulk calls are bridged and
    left after the window, so the probe calls are set up and measured under it
    (loadtest/abuse.py)."""
    probes, seconds, rate = args.probes, args.seconds, args.rate
    ramp = calls / rate
    ramp_budget = ramp * 2 + 20  # how long the bulk calls may take to be bridged
    # Every bulk call outlasts the probes' window, even when the set-up ran slow.
    bulk_hold = ramp_budget + SETUP_TIMEOUT + SETTLE + seconds + 5
    probe_hold = SETUP_TIMEOUT + SETTLE + seconds + 3
    sipp_timeout = bulk_hold + ramp + 60
    bulk_port, probe_port = free_port(), free_port()
    step = Step(calls, probes, 0, 0, {}, None, engine=bool(getattr(args, "rtpengine", False)))
    started: list[BackgroundSipp] = []
    harness: ProbeHarness | None = None
    engine: RtpEngineProcess | None = None
    scenarios = {
        name: name
        for name in (
            "bridge_uas.xml",
            "bridge_probe_uas.xml",
            "bridge_uac.xml",
            "bridge_probe_uac.xml",
        )
    }
    if step.engine:  # rtpengine shares the server's core: four ports a call, and spare
        binary = find_rtpengine()
        if binary is None:
            raise RuntimeError("rtpengine is not installed (Debian package rtpengine-daemon)")
        engine = RtpEngineProcess.start(
            binary, work / "rtpengine", port_count=4 * (calls + probes) + 200, cpu=0
        )
        server_args = (*server_args, "--rtpengine", engine.spec)
        holds = {"bridge_uac.xml": bulk_hold, "bridge_probe_uac.xml": probe_hold}
        for name in scenarios:
            hold_ms = int(holds.get(name, 0) * 1000)
            scenarios[name] = str(reinvite_variant(name, work / "scenarios", hold_ms))
    sinks = (MediaSink(), MediaSink())  # where the server sends the bulk callers' / callees' RTP
    server = start_server(
        work / "server", calls + probes, bulk_port, probe_port, server_args, spare_ports
    )
    attacking = contextlib.ExitStack()

    def sample() -> dict[str, float | None]:
        return {
            "server_cpu": cpu_seconds(server.pid),
            "engine_cpu": None if engine is None else cpu_seconds(engine.process.pid),
            "caller_sink": sinks[0].delivered(),
            "callee_sink": sinks[1].delivered(),
        }

    try:
        create_numbers(server, app)
        common = {"sipp": sipp, "cpu": 1, "timeout": sipp_timeout}
        common["extra"] = ("-max_socket", str(4 * calls + 100))
        bulk_uas = BackgroundSipp(
            scenarios["bridge_uas.xml"], None, cwd=sipp_dir(work / "bulk-uas"),
            local_port=bulk_port,
            calls=calls, keys={"sink_port": sinks[1].port}, **common,
        )  # fmt: skip
        started.append(bulk_uas)
        relearn = None
        if engine is not None:

            def relearn() -> dict[int, int]:
                server.wait_events("rtpengine.bridged", SETUP_TIMEOUT, count=calls + probes)
                marker = f"-{probe_uac.proc.pid}@"
                moved = engine_ports(engine, marker, calls + probes + 50)
                step.probes_moved = len(set(moved) & set(ports))
                return moved

        harness = ProbeHarness(probes, seconds, sample, relearn=relearn)
        harness.start()
        ports = [*harness.caller_ports, *harness.callee_ports]
        probe_uas = BackgroundSipp(
            scenarios["bridge_probe_uas.xml"], None,
            cwd=sipp_dir(work / "probe-uas", harness.callee_ports),
            local_port=probe_port, calls=probes,
            **{**common, "extra": ("-inf", "probes.csv")},
        )  # fmt: skip
        started.append(probe_uas)
        bulk_uac = BackgroundSipp(
            scenarios["bridge_uac.xml"], server.sip_target, cwd=sipp_dir(work / "bulk-uac"),
            service=BULK_NUMBER.lstrip("+"), calls=calls, rate=rate, limit=calls + 10,
            pause_ms=int(bulk_hold * 1000), keys={"sink_port": sinks[0].port}, **common,
        )  # fmt: skip
        started.append(bulk_uac)
        bridged = wait_bridged(server, calls, ramp_budget)
        if bridged < calls:
            step.errors.append(f"only {bridged}/{calls} bulk calls bridged during the ramp")
        if attack is not None:
            attacking.enter_context(attack(server))
        probe_uac = BackgroundSipp(
            scenarios["bridge_probe_uac.xml"], server.sip_target,
            cwd=sipp_dir(work / "probe-uac", harness.caller_ports),
            service=PROBE_NUMBER.lstrip("+"), calls=probes, rate=min(probes, 10),
            limit=probes, pause_ms=int(probe_hold * 1000),
            **{**common, "extra": ("-inf", "probes.csv")},
        )  # fmt: skip
        started.append(probe_uac)
        harness.go.set()
        profiler = None
        if args.profile and harness.window_started.wait(SETUP_TIMEOUT + SETTLE + 5):
            profile_path = work / f"py-spy-{calls}.txt"
            profiler = profile_server(server.pid, min(10.0, seconds), profile_path)
        step.result = harness.join(SETUP_TIMEOUT * 2 + SETTLE + seconds + GRACE + 20)
        attacking.close()
        step.bridged, step.relay_mode = bridged_counts(server)
        step.engine_bridged = len(server.events("rtpengine.bridged"))
        if step.engine and step.engine_bridged < calls + probes:
            fallbacks = len(server.events("rtpengine.fallback"))
            step.errors.append(
                f"only {step.engine_bridged}/{calls + probes} calls bridged on rtpengine "
                f"({fallbacks} fell back to the in-process relay)"
            )
        if step.engine and step.probes_moved < 2 * probes:
            step.errors.append(f"{step.probes_moved}/{2 * probes} probe sockets on rtpengine")
        step.bulk_up = bulk_uac.counters()
        if profiler is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                profiler.wait(20)
            if profiler.poll() is None:
                profiler.kill()
                profiler.wait(5)
            step.profile = summarize_profile(profile_path)
        if step.bulk_up.get("CurrentCall", 0) < calls:
            counts = {
                k: step.bulk_up.get(k) for k in ("CurrentCall", "SuccessfulCall", "FailedCall")
            }
            step.errors.append(f"bulk calls still up at the window's end: {counts}")
        nominal = calls / PTIME
        for name, way in (("callee_sink", "->"), ("caller_sink", "<-")):
            delivered = step.result.rates.get(name, 0.0)
            if delivered < BULK_MEDIA_SHARE * nominal:
                step.errors.append(
                    f"bulk media {way}: {delivered:.0f} packets/s reached the far ends, "
                    f"{nominal:.0f} expected (SIPp fell behind or the server dropped them)"
                )
        deadline = bulk_uac.start + bulk_hold + ramp + 30  # the calls end by themselves
        for background in (probe_uac, probe_uas, bulk_uac, bulk_uas):
            result = background.wait(deadline - time.monotonic())
            started.remove(background)
            if background is bulk_uac:
                step.bulk_successful, step.bulk_failed = result.successful, result.failed
            if result.failed:
                step.notes.append(
                    f"{background.rundir.name}: {result.failed} calls failed at hang-up "
                    f"{result.failure_counters()} (logs in {background.rundir})"
                )
    except Exception as exc:  # one step's failure is reported in its row, not fatal
        step.errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        attacking.close()
        for background in started:
            background.stop()
        for sink in sinks:
            sink.close()
        if harness is not None:
            harness.go.set()
        problems = server.stop(grace=15)
        step.notes.extend(f"server: {p} (log: {server.log_path})" for p in problems)
        if engine is not None:
            engine.stop()
    return step


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run (20 and 50 calls)")
    parser.add_argument("--levels", default=None, help="comma-separated bridged-call counts")
    parser.add_argument("--seconds", type=float, default=None, help="measurement window (30)")
    parser.add_argument("--probes", type=int, default=None, help="probe calls per step (10)")
    parser.add_argument("--rate", type=float, default=50.0, help="bulk calls placed per second")
    parser.add_argument("--profile", action="store_true", help="py-spy the server each window")
    parser.add_argument(
        "--rtpengine",
        action="store_true",
        help="hand the bridges to a real rtpengine (userspace, on the server's CPU)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs in this directory")
    args = parser.parse_args(argv)
    default_levels = "20,50" if args.quick else "100,200,300,400,500,600"
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
    os.sched_setaffinity(0, {1})  # the load side (and the probe harness) stays off CPU 0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so every `finally` still runs
    print(
        f"bridged G.711 calls, server on CPU 0; SIPp and probe harness on CPU 1; "
        f"{args.probes} probe calls, {args.seconds:.0f} s window, bulk set up at {args.rate:g} cps",
        flush=True,
    )
    if args.rtpengine:
        print("bridges on rtpengine (userspace, 1 thread, sharing CPU 0)", flush=True)
    print(ENGINE_HEADER if args.rtpengine else HEADER, flush=True)
    steps: list[Step] = []
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(WebhookApp())
        if args.keep:
            root = args.keep
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="callswitch-bridge-"))
            )
        for calls in levels:
            step = run_step(root / f"n{calls}", app, sipp, calls, args)
            steps.append(step)
            print(step.row(), flush=True)
            for error in step.errors:
                print(f"         ! {error}", flush=True)
            for note in step.notes:
                print(f"         note: {note}", flush=True)
            if step.profile:
                print(step.profile, flush=True)
    best = max((s.calls for s in steps if s.meets), default=None)
    print()
    print(
        f"target: loss < {MAX_LOSS_PCT}% and p99 < {MAX_P99_MS:.0f} ms both ways "
        f"(-> caller to callee, <- back), every call bridged and the bulk media flowing. "
        f"Latency is one-way, send to receive, including the probe harness's own scheduling "
        f"on the shared CPU 1. bulk pkts/s: the bulk calls' packets the server delivered to "
        f"the callees (->) and callers (<-) per second of the window; N x 50 when nothing is lost."
    )
    if best is None:
        print("no step met the target")
    else:
        print(f"largest N that meets it: {best} bridged calls on one core")
    verdict = "met" if best is not None and best >= TARGET_CALLS else "missed"
    print(f"{TARGET_CALLS}-call target: {verdict}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = results.report(
            "bridge",
            target={
                "load": TARGET_CALLS,
                "unit": "bridged calls",
                "loss_pct": MAX_LOSS_PCT,
                "latency_p99_ms": MAX_P99_MS,
            },
            levels=[s.as_level() for s in steps],
            largest_passing=best,
            load_unit="bridged calls",
            latency="one-way probe packet latency through the bridge, the worse way",
            probes=args.probes,
            window_s=args.seconds,
            rate_cps=args.rate,
        )
        results.write(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
