"""Calls per second: the highest SIPp call rate callswitch serves with no failure.

Starts `callswitch serve` pinned to CPU 0 and SIPp's built-in `uac` scenario
(INVITE, 200, ACK, immediate BYE) pinned to CPU 1, against the `tone` app, at
rising rates. Each step places rate x --seconds calls; a step passes when every
call succeeded, none timed out, SIPp kept up with the rate (the step took at most
5% longer than its schedule) and 99% of INVITEs were answered within 50 ms. The run stops at
the first step that does not pass. Then the same against SIPp's own `uas`
(pinned to CPU 0) gives a reference for what the machine and SIPp can do, and
a table shows both figures and their ratio.

    python loadtest/sip_cps.py            # full run, a few minutes at most
    python loadtest/sip_cps.py --quick    # smoke run, well under a minute
    python loadtest/sip_cps.py --json out.json   # also write the figures (loadtest/results.py)

Loopback only. Stops only the processes it started, by their PIDs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from loadtest import results  # noqa: E402
from tests.interop.harness import CallswitchServer, ServerError, free_port  # noqa: E402
from tests.interop.sipp import SippBackground, SippResult, find_sipp, run_sipp  # noqa: E402

DEFAULT_RATES = (100, 200, 300, 500, 750, 1000, 1500, 2000, 2500, 3500, 5000)
QUICK_RATES = (50, 100)
TARGET_CPS = 500
CARRIED = 1.05  # a step may take at most 5% (and half a second) longer than its calls' schedule
P99_MS = 50.0  # a carried step answers 99% of its INVITEs within this


@dataclass
class Step:
    rate: int
    calls: int
    result: SippResult
    target_cpu: float | None  # CPU seconds the target used per wall second
    cpu_per_call_us: float | None  # target CPU microseconds per completed call
    passed: bool
    why: str
    response_ms: list[float] = field(default_factory=list)  # INVITE to 200, per call

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.response_ms, q)) if self.response_ms else None

    def as_level(self) -> dict:
        r = self.result
        return results.level(
            self.rate,
            throughput=r.successful / r.elapsed if r.elapsed > 0 else None,
            throughput_unit="calls/s completed",
            latency_p50_ms=self.percentile(50),
            latency_p99_ms=self.percentile(99),
            loss_pct=100.0 * (self.calls - r.successful) / self.calls,
            cpu_pct=None if self.target_cpu is None else self.target_cpu * 100,
            meets=self.passed,
            calls=self.calls,
            failed=r.failed,
            cpu_per_call_us=None if self.cpu_per_call_us is None else round(self.cpu_per_call_us),
            why=self.why,
            latency="INVITE to 200 OK (SIPp -trace_rtt, 1 ms resolution)",
        )

    def line(self) -> str:
        r = self.result
        cpu = "" if self.target_cpu is None else f" target CPU {self.target_cpu * 100:4.0f}%"
        if self.cpu_per_call_us is not None:
            cpu += f" ({self.cpu_per_call_us:.0f} µs/call)"
        p99 = self.percentile(99)
        if p99 is not None:
            cpu += f" p99 {p99:.0f} ms"
        status = "ok  " if self.passed else "FAIL"
        return (
            f"  {status} {self.rate:5d} cps: {r.successful:6d}/{self.calls} calls ok, "
            f"{r.failed} failed, {r.elapsed:5.1f} s ({self.calls / max(r.elapsed, 1e-9):6.0f} cps "
            f"wall){cpu}{'' if self.passed else '  -- ' + self.why}"
        )


@dataclass
class Sweep:
    name: str
    steps: list[Step] = field(default_factory=list)
    note: str = ""

    @property
    def best(self) -> int:
        passed = [s.rate for s in self.steps if s.passed]
        return max(passed) if passed else 0

    @property
    def hit_ceiling(self) -> bool:
        return bool(self.steps) and all(s.passed for s in self.steps)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def settled_cpu_seconds(pid: int, last: float, *, idle: float = 0.05, limit: float = 10.0) -> float:
    """The target's CPU seconds once it has gone idle (under `idle` of a core over
    half a second), or after `limit` seconds."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = cpu_seconds(pid)
        if now is None:
            return last
        busy, last = now - last, now
        if busy < idle * 0.5:
            break
    return last


def run_step(
    *,
    rate: int,
    seconds: float,
    target: str,
    target_pid: int,
    workdir: Path,
    sipp: str,
    cpu: int | None,
    transport: str,
    user: str,
) -> Step:
    calls = max(1, int(rate * seconds))
    limit = max(50, rate * 2)
    budget = seconds * 3 + 20
    cpu_before = cpu_seconds(target_pid)
    started = time.monotonic()
    result = run_sipp(
        "uac",
        target,
        workdir=workdir,
        sipp=sipp,
        transport=transport,
        service=user,
        calls=calls,
        rate=rate,
        limit=limit,
        pause_ms=0,
        timeout=budget,
        cpu=cpu,
        extra=("-max_socket", "1000", "-trace_rtt", "-rtt_freq", "1"),
    )
    wall = time.monotonic() - started
    cpu_after = cpu_seconds(target_pid)
    target_cpu = per_call = None
    if cpu_before is not None and cpu_after is not None and wall > 0:
        target_cpu = (cpu_after - cpu_before) / wall
        # CPU per call is steadier than the largest rate on a machine others share;
        # it counts the work a call leaves behind (its records written after the BYE).
        settled = settled_cpu_seconds(target_pid, cpu_after)
        if result.successful:
            per_call = (settled - cpu_before) / result.successful * 1e6
    why = ""
    if result.timed_out or result.global_timeout:
        why = "SIPp's global timeout: calls left unanswered"
    elif result.failed:
        why = f"failed calls {result.failure_counters()}"
    elif result.successful != calls:
        why = f"only {result.successful} of {calls} calls completed (exit {result.returncode})"
    elif result.returncode != 0:
        why = f"SIPp exit code {result.returncode}"
    elif result.elapsed > calls / rate * CARRIED + 0.5:
        # The offered rate must be carried, not merely survived: SIPp places the calls
        # at `rate` only while the target keeps up, so a slow target stretches the step.
        why = (
            f"could not keep the rate: {calls} calls took {result.elapsed:.1f} s "
            f"({calls / result.elapsed:.0f} cps)"
        )
    response_ms = response_times(result.rundir)
    p99 = float(np.percentile(response_ms, 99)) if response_ms else None
    if not why and p99 is not None and p99 >= P99_MS:
        why = f"p99 INVITE to 200 is {p99:.0f} ms (limit {P99_MS:.0f} ms)"
    return Step(rate, calls, result, target_cpu, per_call, not why, why, response_ms)


def response_times(rundir: Path) -> list[float]:
    """Per-call INVITE-to-200 times (ms) from SIPp's -trace_rtt file."""
    out: list[float] = []
    for path in rundir.glob("*_rtt.csv"):
        for line in path.read_text(errors="replace").splitlines()[1:]:
            fields = line.split(";")
            if len(fields) >= 2:
                try:
                    out.append(float(fields[1]))
                except ValueError:
                    continue
    return out


def sweep(
    name: str,
    *,
    rates: tuple[int, ...],
    seconds: float,
    target: str,
    target_pid: int,
    workdir: Path,
    sipp: str,
    cpu: int | None,
    transport: str,
    user: str,
    deadline: float,
    pause: float,
    keep_going: bool = False,
) -> Sweep:
    out = Sweep(name)
    print(f"{name}:", flush=True)
    for rate in rates:
        if time.monotonic() + seconds * 2 + 5 > deadline:
            out.note = f"time budget spent before {rate} cps"
            print(f"  stop: {out.note}", flush=True)
            break
        step = run_step(
            rate=rate,
            seconds=seconds,
            target=target,
            target_pid=target_pid,
            workdir=workdir,
            sipp=sipp,
            cpu=cpu,
            transport=transport,
            user=user,
        )
        out.steps.append(step)
        print(step.line(), flush=True)
        if not step.passed:
            print(f"    SIPp logs: {step.result.rundir}", flush=True)
            if not keep_going:
                break
        time.sleep(pause)  # let retransmission timers of the last step drain
    return out


def table(sweeps: list[Sweep], transport: str) -> str:
    rows = []
    for s in sweeps:
        best = f"{s.best}" + ("+" if s.hit_ceiling else "")
        rows.append((s.name, best, s.note or ("all steps passed" if s.hit_ceiling else "")))
    if len(sweeps) == 2 and sweeps[1].best:
        ratio = sweeps[0].best / sweeps[1].best
        # A sweep that passed every step only gives a lower bound.
        bound = {(False, False): "", (True, False): ">=", (False, True): "<="}.get(
            (sweeps[0].hit_ceiling, sweeps[1].hit_ceiling), "~"
        )
        rows.append(("ratio callswitch / SIPp uas", f"{bound}{ratio:.2f}", ""))
    width = max(len(r[0]) for r in rows)
    lines = [
        f"{'target (' + transport + ')':<{width}}  max cps with 0 failed calls",
        f"{'-' * width}  {'-' * 27}",
    ]
    lines += [f"{n:<{width}}  {b:>8}  {note}".rstrip() for n, b, note in rows]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--quick", action="store_true", help="short smoke run (rates 50, 100; 2 s each)"
    )
    ap.add_argument(
        "--rates",
        default=",".join(map(str, DEFAULT_RATES)),
        help="comma-separated call rates to try in order (default: %(default)s)",
    )
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds of calls per step")
    ap.add_argument("--transport", choices=("u1", "t1"), default="u1", help="SIPp transport")
    ap.add_argument("--user", default="tone", help="callswitch user to call (default: tone)")
    ap.add_argument("--budget", type=float, default=280.0, help="seconds for the whole run")
    ap.add_argument(
        "--server-cpu", type=int, default=0, help="CPU for the target (callswitch, uas)"
    )
    ap.add_argument("--sipp-cpu", type=int, default=1, help="CPU for the SIPp caller")
    ap.add_argument("--no-pin", action="store_true", help="do not pin processes with taskset")
    ap.add_argument(
        "--keep-going",
        action="store_true",
        help="try every rate even after a step fails (CPU per call at fixed rates)",
    )
    ap.add_argument("--skip-uas", action="store_true", help="skip the SIPp uas reference")
    ap.add_argument("--workdir", type=Path, help="where to keep logs (default: a temp dir)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args(argv)
    if args.quick:
        args.rates = ",".join(map(str, QUICK_RATES))
        args.seconds = 2.0
        args.budget = min(args.budget, 90.0)
    args.rates = tuple(int(r) for r in args.rates.split(",") if r.strip())
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    deadline = time.monotonic() + args.budget
    sipp = find_sipp()
    if sipp is None:
        print("sipp not found (Debian package sip-tester)", file=sys.stderr)
        return 2
    pin = not args.no_pin and shutil.which("taskset") is not None
    ncpu = os.cpu_count() or 1
    if pin and max(args.server_cpu, args.sipp_cpu) >= ncpu:
        print(f"only {ncpu} CPU(s): running without pinning", file=sys.stderr)
        pin = False
    target_cpu = args.server_cpu if pin else None
    caller_cpu = args.sipp_cpu if pin else None
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="sip_cps-"))
    workdir.mkdir(parents=True, exist_ok=True)
    pinning = f"target on CPU {args.server_cpu}, caller on CPU {args.sipp_cpu}" if pin else "off"
    print(
        f"sip_cps: SIPp uac -d 0 -> {args.user}, {args.transport}, "
        f"{args.seconds:g} s per step, rates {list(args.rates)}; "
        f"pinning {pinning}; logs in {workdir}",
        flush=True,
    )
    pause = 1.0 if args.quick else 2.0
    sweeps: list[Sweep] = []

    try:
        server = CallswitchServer.start(
            workdir / "callswitch",
            rtp_size=4000,
            cpu=target_cpu,
            extra_args=results.TRUSTED_LOAD,
        )
    except ServerError as exc:
        print(f"callswitch did not start:\n{exc}", file=sys.stderr)
        return 2
    try:
        sweeps.append(
            sweep(
                f"callswitch ({args.user})",
                rates=args.rates,
                seconds=args.seconds,
                target=server.sip_target,
                target_pid=server.pid,
                workdir=workdir / "sipp-callswitch",
                sipp=sipp,
                cpu=caller_cpu,
                transport=args.transport,
                user=args.user,
                deadline=deadline,
                pause=pause,
                keep_going=args.keep_going,
            )
        )
    finally:
        problems = server.stop()
        if problems:
            print("callswitch: " + "; ".join(problems), file=sys.stderr)
            print(server.tail(10), file=sys.stderr)

    if not args.skip_uas:
        port = free_port()
        uas = SippBackground(
            "uas",
            None,
            workdir=workdir / "sipp-uas",
            sipp=sipp,
            transport=args.transport,
            calls=None,
            local_port=port,
            timeout=max(10.0, deadline - time.monotonic() + 30),
            cpu=target_cpu,
            extra=("-max_socket", "1000"),
        )
        try:
            time.sleep(0.5)
            if uas.proc.poll() is not None:
                print(f"SIPp uas exited at once; see {uas.rundir}", file=sys.stderr)
            else:
                sweeps.append(
                    sweep(
                        "SIPp uas",
                        rates=args.rates,
                        seconds=args.seconds,
                        target=f"127.0.0.1:{port}",
                        target_pid=uas.proc.pid,
                        workdir=workdir / "sipp-uac-vs-uas",
                        sipp=sipp,
                        cpu=caller_cpu,
                        transport=args.transport,
                        user="service",
                        deadline=deadline + 30,
                        pause=pause,
                    )
                )
        finally:
            uas.stop()

    print()
    print(table(sweeps, args.transport))
    if args.json and sweeps:
        ours = sweeps[0]
        results.write(
            args.json,
            results.report(
                "sip_cps",
                target={"load": TARGET_CPS, "unit": "calls/s", "failed_calls": 0},
                levels=[s.as_level() for s in ours.steps],
                largest_passing=ours.best or None,
                load_unit="calls/s offered",
                seconds_per_level=args.seconds,
                transport=args.transport,
                reference={
                    s.name: {
                        "largest_passing": s.best or None,
                        "levels": [step.as_level() for step in s.steps],
                    }
                    for s in sweeps[1:]
                },
            ),
        )
    return 0 if sweeps and sweeps[0].best > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
