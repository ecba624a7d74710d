"""Soak: half the Media Streams target for ten minutes; do RSS, descriptors or lag grow?

callswitch runs pinned to CPU 0; SIPp, the echo server of loadtest/streams.py,
the TwiML app and this sampler share CPU 1. SIPp keeps about --streams
`<Connect><Stream>` echo calls up at once (default 250, half the 500-stream
target): each call streams a looped tone for --hold seconds and hangs up, and
a new one replaces it, so the server sets up and tears down calls, WebSockets
and RTP sockets all along (a leak per call shows; a steady set of calls would
hide it). After a warm-up (--warmup; by default the first --hold seconds while
the calls ramp up, plus the 64 s the server keeps what each ended call leaves
by design, plus ten), every --interval seconds it samples the server's

  - resident memory (VmRSS in /proc/PID/status),
  - open file descriptors (entries of /proc/PID/fd),
  - event-loop lag: how long the server takes to answer GET /health (the
    median of three; the loop that answers it also runs the media clock),
    with the media clock's skipped ticks and latest tick from /metrics beside it,
  - the calls the server still holds (callswitch_calls_active) beside SIPp's
    calls up: a hung-up call is held until its store writes are done, so a
    backlog (and the memory it takes) shows there rather than as a leak,

then prints the least-squares slope of each per minute, over the whole run and
over its second half, and a verdict on the second half: growth beyond noise
when that slope is positive, more than three standard errors from zero, and the
growth it implies over the whole run exceeds a tolerance (RSS: 2% of its median
or 4 MB; descriptors: 5% of the median or 5; lag: 5 ms). A leak keeps its slope
to the end; what a warm server fills once (SQLite's page caches, the allocator's
arenas at their working size) rises early and then stays flat, and the
whole-run line through such a curve is not a leak.
When the last calls have hung up it also compares the idle descriptors and
RSS with those before the load, at once and again --settle seconds later (by
default 2 x 64 s + 10, once what the last calls' SIP state keeps by design has
expired). "Before" is a primed server: the same load for --prime seconds
(default 3 x --hold), then --settle seconds idle. pymalloc keeps a 1 MiB arena
while any object lives in it, so a cold server's first load leaves its
high-water mark in RSS for good (about 10 MB at 100 streams): paid once, not per
day. The cold figure is printed beside it; --prime 0 makes it the baseline.
Besides the statistical test, two hard limits fail the run: an RSS
slope above 0.05 MB/min in the second half, and an idle RSS after the load (the
settled one) more than 5 MB above the one before it; a figure it could not take
(the server never idle again, too few samples) or an error (failed calls, the
server gone) fails the run too. The verdict line names both figures against their
limits. Ten minutes cannot tell a slow leak from a cache still filling: run an
hour to judge (`make soak ARGS="--minutes 60"`).

    python loadtest/soak.py                        # 250 streams, 600 s
    python loadtest/soak.py --minutes 60           # the hour the verdict is meant for
    python loadtest/soak.py --streams 50 --seconds 60 --json soak.json
    python loadtest/soak.py --streams 50 --seconds 120 --census /tmp/census  # cycles; no verdict
    python loadtest/soak.py --streams 40 --seconds 120 --tracemalloc 4 --keep /tmp/s  # no verdict
    python loadtest/soak.py --streams 100 --seconds 60 --allocator /tmp/probe  # no verdict

Exit status: 0 pass, 1 growth beyond noise, a limit exceeded or an error, 2 could not run.
Loopback only; bounded in calls and time; stops only the processes it started.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shlex
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from loadtest import results  # noqa: E402
from loadtest.bridge import BackgroundSipp, MediaSink, sipp_dir  # noqa: E402
from loadtest.gc_census import summary as census_summary  # noqa: E402
from loadtest.streams import BULK_NUMBER, TARGET_STREAMS, EchoProcess, create_numbers  # noqa: E402
from tests.interop.harness import SERVER_CMD_ENV, CallswitchServer  # noqa: E402
from tests.interop.sipp import find_sipp  # noqa: E402
from tests.interop.webhook_app import WebhookApp  # noqa: E402

MEMORY_ENV = "CALLSWITCH_TRACEMALLOC"  # callswitch/memory_debug.py
ENDED_STATE_S = 64.0  # 2 x 64*T1: how long the SIP UA keeps state of an ended call
# name: (unit, relative tolerance of the median, absolute tolerance)
RSS_SLOPE_LIMIT = 0.05  # MB per minute over the second half
IDLE_RSS_LIMIT = 5.0  # MB more when idle after the load than before it
TOLERANCES = {"rss_mb": ("MB", 0.02, 4.0), "fds": ("fds", 0.05, 5.0), "lag_ms": ("ms", 0.0, 5.0)}


@dataclass
class Sample:
    t: float  # seconds since the measurement began
    rss_mb: float | None  # None: /proc could not be read (the process is gone)
    fds: int | None
    lag_ms: float | None  # /health round trip, median of three
    calls_up: int | None  # SIPp's CurrentCall
    calls_held: float | None  # callswitch_calls_active: calls the server still holds
    streams_active: float | None  # callswitch_media_streams_active
    clock_max_lag_ms: float | None  # callswitch_media_clock_max_lag_seconds
    clock_skipped: float | None  # callswitch_media_clock_skipped_ticks_total


def rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


def open_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def metric(text: str, name: str) -> float | None:
    """The sum of a metric's samples in Prometheus's text format."""
    total, seen = 0.0, False
    for line in text.splitlines():
        if line.startswith(name) and line[len(name) : len(name) + 1] in (" ", "{"):
            with contextlib.suppress(ValueError):
                total += float(line.rsplit(" ", 1)[1])
                seen = True
    return total if seen else None


def health_ms(client: httpx.Client) -> float | None:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        try:
            client.get("/health").raise_for_status()
        except httpx.HTTPError:
            continue
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times) if times else None


def sample(server: CallswitchServer, client: httpx.Client, sipp: BackgroundSipp, t0: float):
    lag = health_ms(client)
    try:
        text = client.get("/metrics").text
    except httpx.HTTPError:
        text = ""
    max_lag = metric(text, "callswitch_media_clock_max_lag_seconds")
    return Sample(
        t=time.monotonic() - t0,
        rss_mb=rss_mb(server.pid),
        fds=open_fds(server.pid),
        lag_ms=lag,
        calls_up=sipp.counters().get("CurrentCall"),
        calls_held=metric(text, "callswitch_calls_active"),
        streams_active=metric(text, "callswitch_media_streams_active"),
        clock_max_lag_ms=None if max_lag is None else max_lag * 1000,
        clock_skipped=metric(text, "callswitch_media_clock_skipped_ticks_total"),
    )


def wait_idle(client: httpx.Client, timeout: float) -> float | None:
    """Wait until the server holds no call (store writes done); the calls still held."""
    deadline = time.monotonic() + timeout
    held = None
    while True:
        try:
            held = metric(client.get("/metrics").text, "callswitch_calls_active")
        except httpx.HTTPError:
            held = None
        if not held or time.monotonic() >= deadline:
            return held
        time.sleep(1.0)


def cell(value: float | None, spec: str, width: int) -> str:
    return "?".rjust(width) if value is None else format(value, spec).rjust(width)


@dataclass
class Trend:
    """Least-squares line through (minutes, value)."""

    name: str
    unit: str
    samples: int
    median: float
    slope_per_min: float
    stderr_per_min: float
    growth_over_run: float  # slope x the run's length
    tolerance: float
    growth: bool

    def line(self) -> str:
        verdict = "GROWTH beyond noise" if self.growth else "no growth beyond noise"
        return (
            f"  {self.name:7s} median {self.median:9.2f} {self.unit:3s}  slope "
            f"{self.slope_per_min:+9.3f} {self.unit}/min (+- {self.stderr_per_min:.3f})  over "
            f"the run {self.growth_over_run:+8.2f} {self.unit} (tolerance {self.tolerance:.2f})"
            f"  {verdict}"
        )


def trend(
    name: str, minutes: list[float], values: list[float | None], span: float | None = None
) -> Trend | None:
    """The line through the samples; its growth is judged over ``span`` minutes (by
    default the samples' own)."""
    unit, relative, absolute = TOLERANCES[name]
    points = [
        (m, v) for m, v in zip(minutes, values, strict=True) if v is not None and math.isfinite(v)
    ]
    if len(points) < 3:
        return None
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points], dtype=float)
    spread = float(np.sum((x - x.mean()) ** 2))
    if spread == 0:
        return None  # every sample at one time: no line through them
    slope = float(np.sum((x - x.mean()) * (y - y.mean())) / spread)
    residuals = y - (y.mean() + slope * (x - x.mean()))
    stderr = math.sqrt(float(np.sum(residuals**2)) / (len(x) - 2) / spread)
    span = float(x.max() - x.min()) if span is None else span
    median = float(np.median(y))
    tolerance = max(relative * abs(median), absolute)
    growth = slope > 0 and slope > 3 * stderr and slope * span > tolerance
    return Trend(name, unit, len(points), median, slope, stderr, slope * span, tolerance, growth)


def judge(
    minutes: list[float], series: dict[str, list[float | None]]
) -> tuple[list[Trend], list[Trend]]:
    """(the whole run's trends, the second half's): the verdict is the second half's,
    its growth extrapolated over the whole run, so a leak is judged as steeply as on
    the whole run and a one-off rise early in the run is not taken for one."""
    whole = [trend(name, minutes, values) for name, values in series.items()]
    span = (max(minutes) - min(minutes)) if minutes else 0.0
    half = (min(minutes) + span / 2) if minutes else 0.0
    late = [
        trend(
            name,
            [m for m in minutes if m >= half],
            [v for m, v in zip(minutes, values, strict=True) if m >= half],
            span=span,
        )
        for name, values in series.items()
    ]
    return [t for t in whole if t is not None], [t for t in late if t is not None]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--streams", type=int, default=TARGET_STREAMS // 2, help="calls up at once (%(default)s)"
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, default=600.0, help="measured (%(default)s s)")
    length.add_argument(
        "--minutes", type=float, default=None, help="measured, in minutes (an hour: 60)"
    )
    parser.add_argument("--hold", type=float, default=20.0, help="seconds each call lasts")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help=f"seconds before sampling (hold + {ENDED_STATE_S + 10:g})",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs in this directory")
    parser.add_argument(
        "--census",
        type=Path,
        default=None,
        help="debugging: run the server under loadtest/gc_census.py, writing here (it pauses "
        "the server at each census, so the verdict is not a soak's)",
    )
    parser.add_argument("--census-every", type=float, default=60.0, help="seconds (%(default)s)")
    parser.add_argument(
        "--tracemalloc",
        type=int,
        default=None,
        metavar="FRAMES",
        help="debugging: trace allocations from just before the load (CALLSWITCH_TRACEMALLOC), "
        "a snapshot every --census-every seconds and one idle after the load once --settle "
        "has passed, in the server's data directory (slows the server: no verdict)",
    )
    parser.add_argument(
        "--allocator",
        type=Path,
        default=None,
        metavar="DIR",
        help="debugging: run the server under loadtest/alloc_probe.py and probe its allocators "
        "idle before the load, idle after it and once settled, into DIR (no verdict: each "
        "probe pauses the server and takes memory)",
    )
    parser.add_argument(
        "--prime",
        type=float,
        default=None,
        help="seconds of the same load before the idle baseline, which is then taken "
        "--settle seconds after it (default 3 x --hold; 0: the cold server is the baseline)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=2 * ENDED_STATE_S + 10,
        help="seconds idle after the load before the idle RSS the limit reads (%(default)s: "
        "past what the last calls' SIP state keeps by design; 0: at once)",
    )
    args = parser.parse_args(argv)
    if args.minutes is not None:
        args.seconds = args.minutes * 60
    if args.prime is None:
        args.prime = 3 * args.hold
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.tracemalloc:
        os.environ[MEMORY_ENV] = str(args.tracemalloc)
    if args.census and args.allocator:
        print("--census and --allocator both wrap the server: one at a time", file=sys.stderr)
        return 2
    if args.allocator:
        os.environ[SERVER_CMD_ENV] = shlex.join(
            [sys.executable, str(REPO / "loadtest" / "alloc_probe.py"), "--out",
             str(args.allocator)]
        )  # fmt: skip
    if args.census:
        os.environ[SERVER_CMD_ENV] = shlex.join(
            [sys.executable, str(REPO / "loadtest" / "gc_census.py"), "--out", str(args.census),
             "--every", str(args.census_every)]
        )  # fmt: skip
    sipp = find_sipp()
    if sipp is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2
    if (os.cpu_count() or 1) < 2:
        print("needs two CPUs: the server on 0, the load on 1", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {1})
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so every `finally` still runs
    # Until the first calls' protocol state has expired, memory grows by design: a BYE's
    # and a 2xx INVITE's transactions live 64*T1 (32 s), the UA remembers ended dialogs
    # for late BYEs twice that (sip/ua.py). Sampling from then on sees steady state.
    warmup = args.warmup if args.warmup is not None else args.hold + ENDED_STATE_S + 10.0
    rate = args.streams / args.hold
    total_calls = int(rate * (warmup + args.seconds)) + 1
    lifetime = args.prime + args.settle + warmup + args.seconds + args.hold + 300
    echo = EchoProcess(lifetime)  # forked before any thread starts
    print(
        f"soak: {args.streams} <Connect><Stream> echo calls up at once, each {args.hold:g} s "
        f"(placed at {rate:.1f}/s, {total_calls} in all); warm-up {warmup:g} s, then "
        f"{args.seconds:g} s sampled every {args.interval:g} s; server on CPU 0",
        flush=True,
    )
    samples: list[Sample] = []
    idle: dict[str, dict[str, float | None]] = {}
    errors: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            app = stack.enter_context(WebhookApp())
            if args.keep:
                root = args.keep
                root.mkdir(parents=True, exist_ok=True)
            else:
                root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cs-soak-")))
            samples, idle, errors = run(root, app, echo, sipp, args, rate, total_calls, warmup)
    finally:
        echo.close()
    return report(args, samples, idle, errors)


def echo_callers(
    rundir: Path, server, sink, sipp: str, args, rate: float, calls: int, seconds: float
) -> BackgroundSipp:
    """SIPp on CPU 1 keeping --streams echo calls of --hold seconds up, placed at ``rate``."""
    return BackgroundSipp(
        "bridge_uac.xml", server.sip_target, cwd=sipp_dir(rundir),
        service=BULK_NUMBER.lstrip("+"), calls=calls, rate=rate, limit=args.streams,
        pause_ms=int(args.hold * 1000), keys={"sink_port": sink.port}, cpu=1, sipp=sipp,
        timeout=seconds + args.hold + 120, extra=("-max_socket", str(2 * args.streams + 100)),
    )  # fmt: skip


def prime(root: Path, server, client, sink, sipp: str, args, rate: float, errors) -> None:
    """The same calls for --prime seconds, then idle until what they leave by design
    has expired (--settle): the baseline the idle limit reads is a server that has
    carried this load once. pymalloc keeps an arena while any object lives in it, so
    the first load's high-water mark stays in RSS for good; that is paid once, not
    per day, and a leak still shows as growth over the run and after it."""
    print(f"priming: the same load for {args.prime:g} s, then {args.settle:g} s idle", flush=True)
    primer = echo_callers(
        root / "prime", server, sink, sipp, args, rate, int(rate * args.prime) + 1, args.prime
    )
    try:
        result = primer.wait(args.prime + args.hold * 2 + 60)
    finally:
        if primer.proc.poll() is None:  # interrupted (SIGTERM): stop it, by its PID
            primer.stop()
    if result.failed:
        errors.append(f"priming: {result.failed} of {result.created} calls failed "
                      f"(logs in {result.rundir})")  # fmt: skip
    wait_idle(client, args.hold + 30)
    time.sleep(args.settle)


def run(root: Path, app, echo, sipp: str, args, rate: float, total_calls: int, warmup: float):
    samples: list[Sample] = []
    idle: dict[str, dict[str, float | None]] = {}
    errors: list[str] = []
    sink = MediaSink()
    server = CallswitchServer.start(
        root / "server", cpu=0, rtp_size=2 * args.streams + 400, extra_args=results.TRUSTED_LOAD
    )
    client = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=10)
    caller: BackgroundSipp | None = None
    try:
        create_numbers(server, app, echo.port)
        time.sleep(1.0)
        idle["cold"] = {"rss_mb": rss_mb(server.pid), "fds": open_fds(server.pid)}
        if args.prime > 0:
            prime(root, server, client, sink, sipp, args, rate, errors)
        idle["before"] = {"rss_mb": rss_mb(server.pid), "fds": open_fds(server.pid)}
        probe = AllocatorProbe(server, args.allocator) if args.allocator else None
        snapshots = Snapshots(server) if args.tracemalloc else None  # traced from here
        caller = echo_callers(
            root / "uac", server, sink, sipp, args, rate, total_calls, warmup + args.seconds
        )
        time.sleep(warmup)
        t0 = time.monotonic()
        header = "      t   RSS MB    fds  lag ms  calls   held  streams  clock max lag ms  skipped"
        print(header, flush=True)
        count = int(args.seconds / args.interval) + 1
        for index in range(count):
            wake = t0 + index * args.interval
            time.sleep(max(0.0, wake - time.monotonic()))
            if not server.is_alive():
                errors.append(f"the server exited (log: {server.log_path})")
                break
            s = sample(server, client, caller, t0)
            samples.append(s)
            if snapshots is not None and s.t >= snapshots.taken * args.census_every:
                snapshots.take()

            print(
                f"  {s.t:5.0f}  {cell(s.rss_mb, '.1f', 7)}  {cell(s.fds, 'd', 5)}  "
                f"{cell(s.lag_ms, '.1f', 6)}  "
                f"{cell(s.calls_up, 'd', 5)}  {cell(s.calls_held, '.0f', 5)}  "
                f"{cell(s.streams_active, '.0f', 7)}  "
                f"{cell(s.clock_max_lag_ms, '.1f', 16)}  {cell(s.clock_skipped, '.0f', 7)}",
                flush=True,
            )
        # SIPp places its last call at about the window's end, or later when a busy
        # machine held it back: SIGUSR1 tells it to place no more and quit once the
        # calls up have ended (after --hold), so the server is left idle, not holding
        # calls SIPp dropped without a BYE.
        with contextlib.suppress(ProcessLookupError):
            os.kill(caller.proc.pid, signal.SIGUSR1)
        result = caller.wait(args.hold * 2 + 30)
        caller = None
        if result.failed:
            errors.append(f"{result.failed} of {result.created} calls failed: "
                          f"{result.failure_counters()} (logs in {result.rundir})")  # fmt: skip
        held = wait_idle(client, args.hold + 30)
        time.sleep(3.0)
        idle["after"] = {"rss_mb": rss_mb(server.pid), "fds": open_fds(server.pid), "held": held}
        if probe is not None:
            probe.take()
        if args.settle > 0 and not held:
            # What ended calls leave by design (transactions, the UA's memory of ended
            # dialogs for late BYEs) lives 2 x 64*T1: past it, what is left is theirs.
            time.sleep(args.settle)
            idle["settled"] = {"rss_mb": rss_mb(server.pid), "fds": open_fds(server.pid)}
            if probe is not None:
                print(f"allocator probes: {probe.take()}", flush=True)
        if snapshots is not None:
            path = snapshots.take(wait=120.0)
            print(f"idle snapshot: {path}", flush=True)
    except Exception as exc:  # reported with whatever was sampled
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        if caller is not None:
            caller.stop()
        client.close()
        sink.close()
        problems = server.stop(grace=15)
        errors.extend(f"server: {p} (log: {server.log_path})" for p in problems)
    return samples, idle, errors


class AllocatorProbe:
    """SIGUSR1 to a server run under loadtest/alloc_probe.py: each writes DIR/probe-NN.txt.
    The first is taken at once (idle before the load; the RSS was read just before)."""

    def __init__(self, server: CallswitchServer, out: Path) -> None:
        self.server = server
        self.out = out
        self.taken = 0
        self.take()

    def take(self, wait: float = 60.0) -> Path:
        self.taken += 1
        path = self.out / f"probe-{self.taken:02d}.txt"
        os.kill(self.server.pid, signal.SIGUSR1)
        deadline = time.monotonic() + wait
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        return path


class Snapshots:
    """SIGUSR2 to a server run with CALLSWITCH_TRACEMALLOC: the first starts tracing,
    each later one writes DATA_DIR/tracemalloc/snapshot-NN.txt (callswitch/memory_debug.py)."""

    def __init__(self, server: CallswitchServer) -> None:
        self.server = server
        self.dir = server.data_dir / "tracemalloc"
        os.kill(server.pid, signal.SIGUSR2)
        self.taken = 1  # the start counts: snapshot N follows the Nth interval

    def take(self, wait: float = 0.0) -> Path:
        path = self.dir / f"snapshot-{self.taken:02d}.txt"
        os.kill(self.server.pid, signal.SIGUSR2)
        self.taken += 1
        deadline = time.monotonic() + wait
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        return path


def over_limits(measured: list[Trend], idle) -> list[str]:
    """The hard limits, whatever the noise: RSS may rise at most RSS_SLOPE_LIMIT MB a
    minute in the second half (0.05 MB/min is 72 MB a day), and the idle server after the
    load may hold at most IDLE_RSS_LIMIT MB more than before it (once settled, when the
    soak waited for that). A figure the soak could not take fails its limit: a run
    that never saw the server idle again has not shown that it gives memory back."""
    out = []
    rss = [t for t in measured if t.name == "rss_mb"]
    if not rss:
        out.append("RSS slope of the second half not measured")
    for t in rss:
        if t.slope_per_min > RSS_SLOPE_LIMIT:
            out.append(f"RSS {t.slope_per_min:+.3f} MB/min > {RSS_SLOPE_LIMIT} in the second half")
    before, after = idle.get("before", {}), idle.get("settled") or idle.get("after", {})
    held = idle.get("after", {}).get("held")
    if held:
        out.append(f"idle RSS after the load not measured: {held:.0f} calls still held")
    elif before.get("rss_mb") is None or after.get("rss_mb") is None:
        out.append("idle RSS before or after the load not measured")
    else:
        grew = after["rss_mb"] - before["rss_mb"]
        if grew > IDLE_RSS_LIMIT:
            out.append(f"idle RSS {grew:+.1f} MB after the load > {IDLE_RSS_LIMIT} MB")
    return out


def limits_line(measured: list[Trend], idle) -> str:
    """The two hard limits' figures, pass or fail."""
    slope = next((t.slope_per_min for t in measured if t.name == "rss_mb"), None)
    before, after = idle.get("before", {}), idle.get("settled") or idle.get("after", {})
    grew = (
        after["rss_mb"] - before["rss_mb"]
        if before.get("rss_mb") is not None
        and after.get("rss_mb") is not None
        and not idle.get("after", {}).get("held")
        else None
    )
    slope_text = "?" if slope is None else f"{slope:+.3f}"
    grew_text = "?" if grew is None else f"{grew:+.1f}"
    cold = idle.get("cold", {}).get("rss_mb")
    since_cold = (
        f" (against the cold start {after['rss_mb'] - cold:+.1f} MB)"
        if grew is not None and cold is not None and "cold" in idle and idle["cold"] != before
        else ""
    )
    return (
        f"second-half RSS slope {slope_text} MB/min (limit {RSS_SLOPE_LIMIT}), idle RSS after "
        f"the load {grew_text} MB against before (limit {IDLE_RSS_LIMIT}){since_cold}"
    )


def report(args, samples: list[Sample], idle, errors: list[str]) -> int:
    minutes = [s.t / 60 for s in samples]
    whole, measured = judge(
        minutes, {name: [getattr(s, name) for s in samples] for name in ("rss_mb", "fds", "lag_ms")}
    )
    growth = any(t.growth for t in measured)
    print()
    print(f"slopes over {len(samples)} samples ({minutes[-1] if minutes else 0:.1f} min):")
    for t in whole:
        print(t.line())
    print("slopes over the second half (the verdict; growth extrapolated over the whole run):")
    for t in measured:
        print(t.line())
    if "cold" in idle and args.prime > 0:
        rss, fds = idle["cold"]["rss_mb"], idle["cold"]["fds"]
        print(f"  idle at start, cold: RSS {'?' if rss is None else f'{rss:.1f}'} MB, {fds} fds")
    for name in ("before", "after"):
        if name in idle:
            rss, fds = idle[name]["rss_mb"], idle[name]["fds"]
            rss = "?" if rss is None else f"{rss:.1f}"
            held = idle[name].get("held")
            primed = " (after priming)" if name == "before" and args.prime > 0 else ""
            if held:  # SIPp stopped with calls up and no BYE for them: not idle yet
                print(f"  after the load: RSS {rss} MB, {fds} fds, {held:.0f} calls still held")
            else:
                print(f"  idle {name} the load{primed}: RSS {rss} MB, {fds} fds")
    if "settled" in idle:
        rss, fds = idle["settled"]["rss_mb"], idle["settled"]["fds"]
        rss = "?" if rss is None else f"{rss:.1f}"
        print(f"  idle {args.settle:.0f} s later (the limit's figure): RSS {rss} MB, {fds} fds")
    for error in errors:
        print(f"  ! {error}")
    if args.census:
        for line in census_summary(args.census):
            print(line)
    limits = over_limits(measured, idle)
    print(f"  limits: {limits_line(measured, idle)}")
    for line in limits:
        print(f"  over the limit: {line}")
    # The load must have been carried for the figures to count: failed calls or a
    # server that exited fail the run as surely as growth does.
    growth = growth or bool(limits) or bool(errors)
    if len(measured) < 3:
        verdict = "not enough samples to judge"
    elif growth:
        names = [t.name for t in measured if t.growth] + limits + [f"error: {e}" for e in errors]
        verdict = f"FAIL: {'; '.join(names)}"
    else:
        verdict = (
            f"pass: {limits_line(measured, idle)}; no growth beyond noise in RSS, "
            "descriptors or event-loop lag"
        )
    print(f"verdict: {verdict}")
    if args.json:
        results.write(
            args.json,
            {
                "scenario": "soak",
                "streams": args.streams,
                "target_streams": TARGET_STREAMS,
                "seconds": args.seconds,
                "hold_s": args.hold,
                "interval_s": args.interval,
                "slopes": {t.name: asdict(t) for t in whole},
                "slopes_second_half": {t.name: asdict(t) for t in measured},
                "growth": growth,
                "verdict": verdict,
                "idle": idle,
                "errors": errors,
                "samples": [asdict(s) for s in samples],
            },
        )
    if len(measured) < 3:
        return 2
    return 1 if growth else 0


if __name__ == "__main__":
    sys.exit(main())
