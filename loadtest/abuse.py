"""Bridged calls under attack: do legitimate callers notice a flood?

The node runs with its internet defaults (no trusted peer): 100 legitimate
bridged calls are set up from 127.0.0.1 exactly as in loadtest/bridge.py (96 bulk
calls by SIPp and 4 probe calls whose media this process stamps and times), then,
while the probes are set up and measured, attackers on other loopback addresses
flood the node at bounded rates:

- INVITE: from 127.0.0.2-5, each at --invite-rate per second, to the built-in
  tone number, never ACKed (a scanner dialling, or an amplification attempt);
- REGISTER: from 127.0.0.6-9, each at --register-rate per second, random users
  and no credentials (a registration flood);
- idle TCP: from 127.0.0.10-13, each opening --tcp-per-source connections to the
  SIP port and holding them without a byte (descriptor exhaustion).

The verdict is the legitimate calls': every one of the 100 bridged, none refused
or failed, probe loss < 0.5% and p99 one-way latency < 20 ms both ways. What the
attackers got (answers by status, connections the node accepted and closed) is
printed beside it.

    python loadtest/abuse.py              # 30 s window
    python loadtest/abuse.py --quick      # 5 s window, lower rates: a smoke run

The server is pinned to CPU 0, SIPp, the probes and the attackers share CPU 1.
Loopback only; every flood is bounded in rate, count and time and stops by itself;
only the processes this script started are stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import uvloop

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from loadtest import bridge, results  # noqa: E402
from tests.interop.harness import CallswitchServer  # noqa: E402
from tests.interop.sipp import find_sipp  # noqa: E402
from tests.interop.webhook_app import WebhookApp  # noqa: E402

LEGITIMATE_CALLS = 100
PROBES = 4
MAX_LOSS_PCT = 0.5
MAX_P99_MS = 20.0
SETUP_RATE = 10.0  # legitimate calls per second: under the default per-source limit

INVITE_SOURCES = [f"127.0.0.{n}" for n in range(2, 6)]
REGISTER_SOURCES = [f"127.0.0.{n}" for n in range(6, 10)]
TCP_SOURCES = [f"127.0.0.{n}" for n in range(10, 14)]
MAX_ATTACK_S = 120.0  # every flood stops by itself after this, whatever happens


@dataclass
class Flood:
    """What one kind of attack sent and what came back."""

    name: str
    sent: int = 0
    answers: Counter[int] = field(default_factory=Counter)  # final and provisional statuses
    connected: int = 0  # TCP: connections the node accepted
    closed_by_node: int = 0  # TCP: of those, closed by the node while we held them
    refused: int = 0  # TCP: connect() failed or was reset at once

    def row(self) -> str:
        if self.name == "idle TCP":
            return (
                f"  {self.name:9s} opened {self.sent:5d}; accepted {self.connected}, "
                f"closed by the node {self.closed_by_node}, refused {self.refused}"
            )
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(self.answers.items()))
        return f"  {self.name:9s} sent {self.sent:6d}; answers {answers or 'none'}"

    def as_json(self) -> dict:
        return {
            "sent": self.sent,
            "answers": {str(k): v for k, v in sorted(self.answers.items())},
            "connected": self.connected,
            "closed_by_node": self.closed_by_node,
            "refused": self.refused,
        }


def _status(data: bytes) -> int | None:
    if data.startswith(b"SIP/2.0 ") and len(data) >= 11 and data[8:11].isdigit():
        return int(data[8:11])
    return None


class _Counting(asyncio.DatagramProtocol):
    def __init__(self, flood: Flood) -> None:
        self.flood = flood

    def datagram_received(self, data: bytes, addr) -> None:
        status = _status(data)
        if status is not None:
            self.flood.answers[status] += 1

    def error_received(self, exc) -> None:
        pass


def invite(source: str, port: int, target: tuple[str, int], user: str) -> bytes:
    """An INVITE whose SDP names the attacker's (or a forged victim's) address."""
    tag, call_id, branch = uuid.uuid4().hex[:8], uuid.uuid4().hex, uuid.uuid4().hex[:16]
    sdp = (
        f"v=0\r\no=- 1 1 IN IP4 {source}\r\ns=-\r\nc=IN IP4 {source}\r\nt=0 0\r\n"
        f"m=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    return (
        f"INVITE sip:{user}@{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{branch};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:scanner@{source}>;tag={tag}\r\n"
        f"To: <sip:{user}@{target[0]}>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:scanner@{source}:{port}>\r\nContent-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def register(source: str, port: int, target: tuple[str, int]) -> bytes:
    user = f"u{uuid.uuid4().hex[:10]}"
    tag, call_id, branch = uuid.uuid4().hex[:8], uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return (
        f"REGISTER sip:{target[0]}:{target[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{branch};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:{user}@{target[0]}>;tag={tag}\r\n"
        f"To: <sip:{user}@{target[0]}>\r\nCall-ID: {call_id}\r\nCSeq: 1 REGISTER\r\n"
        f"Contact: <sip:{user}@{source}:{port}>\r\nExpires: 3600\r\nContent-Length: 0\r\n\r\n"
    ).encode()


class Attackers:
    """The three floods in a uvloop thread of their own, until :meth:`stop`."""

    def __init__(self, target: tuple[str, int], args: argparse.Namespace) -> None:
        self.target = target
        self.args = args
        self.floods = {
            "invite": Flood("INVITE"),
            "register": Flood("REGISTER"),
            "tcp": Flood("idle TCP"),
        }
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="attackers", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _main(self) -> None:
        try:
            uvloop.run(self._run())
        except BaseException as exc:  # reported beside the figures
            self.error = exc

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MAX_ATTACK_S
        args = self.args
        tasks = [
            *(
                self._datagrams(source, self.floods["invite"], args.invite_rate, deadline, True)
                for source in INVITE_SOURCES
            ),
            *(
                self._datagrams(source, self.floods["register"], args.register_rate, deadline)
                for source in REGISTER_SOURCES
            ),
            *(self._idle_tcp(source, args.tcp_per_source, deadline) for source in TCP_SOURCES),
        ]
        await asyncio.gather(*tasks)

    def _running(self, loop: asyncio.AbstractEventLoop, deadline: float) -> bool:
        return not self._stop.is_set() and loop.time() < deadline

    async def _datagrams(
        self, source: str, flood: Flood, rate: float, deadline: float, invites: bool = False
    ) -> None:
        """`rate` requests a second from `source`, sent in 10 ms batches."""
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Counting(flood), local_addr=(source, 0)
        )
        port = transport.get_extra_info("sockname")[1]
        try:
            started, sent = loop.time(), 0
            while self._running(loop, deadline):
                due = int((loop.time() - started) * rate)
                for _ in range(min(due - sent, 1000)):
                    message = (
                        invite(source, port, self.target, "tone")
                        if invites
                        else register(source, port, self.target)
                    )
                    transport.sendto(message, self.target)
                    sent += 1
                await asyncio.sleep(0.01)
            flood.sent += sent
            await asyncio.sleep(0.5)  # the last answers
        finally:
            transport.close()

    async def _idle_tcp(self, source: str, count: int, deadline: float) -> None:
        """Open `count` connections from `source` (20 at a time) and hold them, silent."""
        loop = asyncio.get_running_loop()
        flood = self.floods["tcp"]
        held: list[socket.socket] = []
        try:
            for _ in range(count):
                if not self._running(loop, deadline):
                    break
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.bind((source, 0))
                flood.sent += 1
                try:
                    await asyncio.wait_for(loop.sock_connect(sock, self.target), 5)
                except (OSError, TimeoutError):
                    flood.refused += 1
                    sock.close()
                    continue
                flood.connected += 1
                held.append(sock)
                if len(held) % 20 == 0:
                    await asyncio.sleep(0.01)
            while self._running(loop, deadline):
                await asyncio.sleep(0.2)
        finally:
            for sock in held:
                try:
                    data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
                    closed = data == b""
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True  # reset by the node
                flood.closed_by_node += closed
                sock.close()


@contextlib.contextmanager
def attacking(args: argparse.Namespace, server: CallswitchServer, out: dict) -> Iterator[None]:
    attackers = Attackers(server.sip_addr, args)
    attackers.start()
    try:
        yield
    finally:
        attackers.stop()
        out["floods"] = attackers.floods
        out["error"] = attackers.error
        out["refusals"] = refusal_counts(server)


def refusal_counts(server: CallswitchServer) -> dict[str, int]:
    """The node's own count of what it turned away, by reason (``/metrics``)."""
    url = f"http://127.0.0.1:{server.http_port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            text = response.read().decode()
    except OSError as exc:
        return {"(metrics unreadable)": 0, str(exc): 0}
    counted: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith('callswitch_refusals_total{reason="'):
            reason = line.split('"', 2)[1]
            counted[reason] = int(float(line.rsplit(" ", 1)[1]))
    return counted


def verdict(step: bridge.Step) -> tuple[bool, list[str]]:
    """Whether the legitimate calls were carried, and why not."""
    problems = list(step.errors)
    r = step.result
    if r is None:
        return False, [*problems, "no measurement"]
    if not step.all_bridged:
        problems.append(f"{step.bridged}/{step.calls + step.probes} legitimate calls bridged")
    if step.bulk_failed or step.bulk_up.get("FailedCall", 0):
        problems.append(f"legitimate calls failed: {step.bulk_failed or step.bulk_up}")
    if r.callees_learned < r.pairs:
        problems.append(f"only {r.callees_learned}/{r.pairs} probe calls carried media")
    for name, way in (("->", r.forward), ("<-", r.backward)):
        if not way.loss_pct < MAX_LOSS_PCT:
            problems.append(f"probe loss {name} {way.loss_pct:.2f}% (limit {MAX_LOSS_PCT}%)")
        if not way.percentile(99) < MAX_P99_MS:
            problems.append(f"probe p99 {name} {way.percentile(99):.1f} ms (limit {MAX_P99_MS})")
    return not problems, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5 s window, lower attack rates")
    parser.add_argument("--seconds", type=float, default=None, help="measurement window (30)")
    parser.add_argument("--invite-rate", type=float, default=None, help="per source (100/s)")
    parser.add_argument("--register-rate", type=float, default=None, help="per source (500/s)")
    parser.add_argument("--tcp-per-source", type=int, default=None, help="connections (300)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs in this directory")
    args = parser.parse_args(argv)
    args.seconds = args.seconds or (5.0 if args.quick else 30.0)
    args.invite_rate = args.invite_rate or (30.0 if args.quick else 100.0)
    args.register_rate = args.register_rate or (100.0 if args.quick else 500.0)
    args.tcp_per_source = args.tcp_per_source or (120 if args.quick else 300)
    args.probes, args.rate, args.profile = PROBES, SETUP_RATE, False
    sipp = find_sipp()
    if sipp is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("needs two CPUs: the server on 0, the load on 1", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {1})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bulk = LEGITIMATE_CALLS - PROBES
    print(
        f"{LEGITIMATE_CALLS} legitimate bridged calls from 127.0.0.1 (no trusted peer) while "
        f"{len(INVITE_SOURCES)} sources send INVITEs at {args.invite_rate:g}/s each, "
        f"{len(REGISTER_SOURCES)} send REGISTERs at {args.register_rate:g}/s each and "
        f"{len(TCP_SOURCES)} open {args.tcp_per_source} idle TCP connections each; "
        f"{args.seconds:.0f} s window",
        flush=True,
    )
    out: dict = {}
    with contextlib.ExitStack() as stack:
        app = stack.enter_context(WebhookApp())
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="abuse-")))
        root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        step = bridge.run_step(
            root / "abuse",
            app,
            sipp,
            bulk,
            args,
            server_args=(),
            attack=lambda server: attacking(args, server, out),
            # never-ACKed INVITEs hold their ports until Timer H, up to the per-source cap
            spare_ports=4 * 100 * len(INVITE_SOURCES),
        )
    print(bridge.HEADER)
    print(step.row())
    floods: dict[str, Flood] = out.get("floods", {})
    print("what the attackers got:")
    for flood in floods.values():
        print(flood.row())
    if out.get("error") is not None:
        print(f"  attackers failed: {out['error']!r}")
    print(f"the node's refusals by reason: {out.get('refusals', {})}")
    ok, problems = verdict(step)
    for problem in problems:
        print(f"  ! {problem}")
    r = step.result
    print(
        f"legitimate calls: loss < {MAX_LOSS_PCT}%, p99 < {MAX_P99_MS:.0f} ms both ways, "
        f"none refused: {'PASS' if ok else 'FAIL'} ({time.monotonic() - started:.0f} s)"
    )
    if args.json:
        ways = () if r is None else (r.forward, r.backward)
        report = results.report(
            "abuse",
            target={
                "load": LEGITIMATE_CALLS,
                "unit": "legitimate bridged calls under attack",
                "loss_pct": MAX_LOSS_PCT,
                "latency_p99_ms": MAX_P99_MS,
            },
            levels=[
                results.level(
                    LEGITIMATE_CALLS,
                    throughput=None,
                    throughput_unit="",
                    latency_p50_ms=max((w.percentile(50) for w in ways), default=None),
                    latency_p99_ms=max((w.percentile(99) for w in ways), default=None),
                    loss_pct=max((w.loss_pct for w in ways), default=None),
                    cpu_pct=None if r is None else (r.rates.get("server_cpu") or 0) * 100,
                    meets=ok,
                    detail=step.as_json(),
                )
            ],
            largest_passing=LEGITIMATE_CALLS if ok else None,
            load_unit="legitimate bridged calls",
            latency="one-way probe packet latency through the bridge, the worse way",
            floods={name: flood.as_json() for name, flood in floods.items()},
            refusals=out.get("refusals", {}),
            problems=problems,
        )
        results.write(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
