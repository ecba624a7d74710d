"""Webhook calls under load: Say + Gather(timeout 1) + Hangup at rising concurrency.

callswitch runs pinned to CPU 0; SIPp, the TwiML application (a threaded
http.server) and the RTP sink share CPU 1. Each step keeps about N calls up at
once for --seconds; a call is INVITE, webhook fetch, answer, speech, a 1 s
gather with no input, the app's <Hangup/> and the server's BYE.

For every call the time from SIPp sending the INVITE to the sink receiving the
first RTP packet from the port the server answered with is measured (SIPp logs
both the INVITE time and the answered port); the step prints its calls/s, its
failures, and the p50/p99 of that time. Target: p99 under 150 ms at 100
concurrent calls.

    python loadtest/webhook_calls.py            # 25, 50, 100, 150, 200 concurrent
    python loadtest/webhook_calls.py --quick    # 10 and 25, a short smoke run
    python loadtest/webhook_calls.py --json out.json   # also write the figures

Loopback only; bounded in calls and time; stops only the processes it started.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from loadtest import results  # noqa: E402
from loadtest.bridge import cpu_seconds  # noqa: E402
from tests.interop.harness import CallswitchServer, parse_logfmt  # noqa: E402
from tests.interop.sipp import find_sipp, run_sipp  # noqa: E402
from tests.interop.webhook_app import WebhookApp, twiml  # noqa: E402

SCENARIO = Path(__file__).resolve().parent / "scenarios" / "webhook_call.xml"
NUMBER = "+15550009999"
TWIML = '<Say>Hello.</Say><Gather timeout="1" numDigits="1"/><Hangup/>'
CALL_SECONDS = 1.7  # how long one call lasts: the speech, the 1 s gather, the hang-up
TARGET_CONCURRENCY = 100
TARGET_P99_MS = 150.0


class FirstPacketSink:
    """One UDP socket; remembers when the first packet from each source port came."""

    def __init__(self, max_seconds: float) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.first: dict[int, float] = {}
        self.packets = 0
        self._deadline = time.monotonic() + max_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        first, now = self.first, time.time
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                _, (_, port) = self.sock.recvfrom(2048)
            except (TimeoutError, OSError):
                continue
            self.packets += 1
            if port not in first:
                first[port] = now()

    def reset(self) -> None:
        self.first.clear()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@dataclass
class Step:
    concurrency: int
    rate: float
    calls: int
    ok: int
    failed: int
    elapsed: float
    latencies_ms: list[float]
    server_cpu: float | None = None  # CPU seconds the server used per wall second

    @property
    def kept_up(self) -> bool:
        """Every call completed, none failed, and SIPp placed them at the offered rate
        (the step took no longer than its calls at that rate plus a call's length)."""
        budget = 1.25 * (self.calls / self.rate + CALL_SECONDS) + 1.0
        return self.failed == 0 and self.ok == self.calls and self.elapsed <= budget

    @property
    def cps(self) -> float:
        """Calls completed per second of the run (ramp-up and the last calls included)."""
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def meets(self) -> bool:
        """Kept up, and p99 INVITE-to-first-RTP under the target's limit."""
        p99 = self.percentile(99)
        return self.kept_up and bool(self.latencies_ms) and p99 < TARGET_P99_MS

    def as_level(self) -> dict:
        return results.level(
            self.concurrency,
            throughput=self.cps,
            throughput_unit="calls/s completed",
            latency_p50_ms=self.percentile(50),
            latency_p99_ms=self.percentile(99),
            loss_pct=100.0 * (self.calls - self.ok) / self.calls if self.calls else None,
            cpu_pct=None if self.server_cpu is None else self.server_cpu * 100,
            meets=self.meets,
            offered_cps=round(self.rate, 2),
            calls=self.calls,
            failed=self.failed,
            kept_up=self.kept_up,
            measured=len(self.latencies_ms),
            latency="INVITE sent to first RTP packet received",
        )

    def line(self) -> str:
        status = "ok  " if self.kept_up else "FAIL"
        return (
            f"  {status} {self.concurrency:4d} concurrent  {self.rate:6.1f} cps offered  "
            f"{self.cps:6.1f} cps done  {self.ok:5d}/{self.calls} ok  {self.failed} failed  "
            f"first RTP p50 {self.percentile(50):6.1f} ms  p99 {self.percentile(99):6.1f} ms "
            f"({len(self.latencies_ms)} measured)"
        )


def latencies(log_path: Path, sink: FirstPacketSink) -> list[float]:
    """INVITE-to-first-RTP per call, from SIPp's log lines and the sink's arrivals."""
    invites: dict[str, float] = {}
    ports: dict[str, int] = {}
    if not log_path.exists():
        return []
    for line in log_path.read_text(errors="replace").splitlines():
        fields = line.replace("\t", " ").split()
        if len(fields) >= 5 and fields[0] == "INVITE":
            invites[fields[1]] = float(fields[4])
        elif len(fields) >= 5 and fields[0] == "ANSWER":
            ports[fields[1]] = int(fields[2])
    out = []
    for call_id, port in ports.items():
        if call_id in invites and port in sink.first:
            out.append((sink.first[port] - invites[call_id]) * 1000)
    return out


def run_step(server, sink, sipp, workdir: Path, concurrency: int, seconds: float) -> Step:
    rate = concurrency / CALL_SECONDS
    calls = max(int(rate * seconds), concurrency)
    sink.reset()
    rundir = workdir / f"c{concurrency}"
    rundir.mkdir(parents=True, exist_ok=True)
    log_file = rundir / "calls.log"
    cpu_before, started = cpu_seconds(server.pid), time.monotonic()
    result = run_sipp(
        SCENARIO,
        server.sip_target,
        workdir=rundir,
        sipp=sipp,
        service=NUMBER.lstrip("+"),
        keys={"sink_port": sink.port},
        calls=calls,
        rate=rate,
        limit=int(concurrency * 1.5),
        timeout=seconds * 3 + 30,
        extra=("-trace_logs", "-log_file", str(log_file)),
        cpu=1,
    )
    cpu_after, wall = cpu_seconds(server.pid), time.monotonic() - started
    server_cpu = None
    if cpu_before is not None and cpu_after is not None and wall > 0:
        server_cpu = (cpu_after - cpu_before) / wall
    time.sleep(0.5)
    if result.failed or result.successful < calls:
        print(result.describe(3000), file=sys.stderr)
    return Step(
        concurrency,
        rate,
        calls,
        result.successful,
        result.failed,
        result.elapsed,
        latencies(log_file, sink),
        server_cpu,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--seconds", type=float, default=None, help="length of each step")
    parser.add_argument("--levels", default=None, help="comma-separated concurrency levels")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    levels = [
        int(x) for x in (args.levels or ("10,25" if args.quick else "25,50,100,150,200")).split(",")
    ]
    seconds = args.seconds or (4.0 if args.quick else 12.0)
    sipp = find_sipp()
    if sipp is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {1})  # the load side stays off the server's core
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="callswitch-webhooks-") as tmp, WebhookApp() as app:
        work = Path(tmp)
        app.routes["/voice"] = lambda r: twiml(TWIML)
        server = CallswitchServer.start(work / "server", rtp_size=4000, cpu=0)
        sink = FirstPacketSink(max_seconds=len(levels) * (seconds * 3 + 60))
        try:
            created = next(
                parse_logfmt(line) for line in server.lines() if "event=account.created" in line
            )
            auth = (created["account_sid"], created["auth_token"])
            response = httpx.post(
                f"http://127.0.0.1:{server.http_port}/2010-04-01/Accounts/{auth[0]}"
                "/IncomingPhoneNumbers.json",
                auth=auth,
                data={"PhoneNumber": NUMBER, "VoiceUrl": app.url("/voice")},
            )
            response.raise_for_status()
            print(f"callswitch pid {server.pid} on CPU 0; TwiML: {TWIML}")
            for level in levels:
                step = run_step(server, sink, sipp, work / "sipp", level, seconds)
                steps.append(step)
                print(step.line(), flush=True)
                if not step.kept_up:
                    break
        finally:
            sink.close()
            problems = server.stop()
            if problems:
                print("server problems: " + "; ".join(problems), file=sys.stderr)
                for line in server.lines():
                    if "Traceback" in line or "level=error" in line:
                        print(line[:3000], file=sys.stderr)
    best = max((s for s in steps if s.kept_up), key=lambda s: s.rate, default=None)
    print()
    if best is not None:
        print(
            f"max sustained: {best.rate:.1f} calls/s with zero failures "
            f"({best.concurrency} concurrent)"
        )
    at_target = next((s for s in steps if s.concurrency == TARGET_CONCURRENCY), None)
    if at_target is not None:
        p99 = at_target.percentile(99)
        verdict = "meets" if p99 < TARGET_P99_MS and not at_target.failed else "misses"
        print(
            f"p99 INVITE to first RTP at {TARGET_CONCURRENCY} concurrent: {p99:.1f} ms "
            f"({verdict} the {TARGET_P99_MS:.0f} ms target)"
        )
    if args.json:
        results.write(
            args.json,
            results.report(
                "webhook_calls",
                target={
                    "load": TARGET_CONCURRENCY,
                    "unit": "concurrent calls",
                    "latency_p99_ms": TARGET_P99_MS,
                    "failed_calls": 0,
                },
                levels=[s.as_level() for s in steps],
                largest_passing=max((s.concurrency for s in steps if s.meets), default=None),
                load_unit="concurrent calls",
                seconds_per_level=seconds,
                twiml=TWIML,
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
