"""TURN relay CPU per packet: callswitch against coturn under the same load.

The same coturn ``turnutils_uclient`` load runs twice, one server after the
other: first ``callswitch serve --only turn``, then coturn's ``turnserver``
(started here with a temporary config on loopback ports). Each server is
pinned to CPU 0 (``taskset -c 0``); uclient and ``turnutils_peer`` share
CPU 1. uclient paces itself (one packet per session every ``--interval`` ms),
so wall time says nothing about throughput: what counts is CPU seconds the
server spent (utime + stime from /proc/PID/stat, read just before and just
after the load) per 10,000 relayed packets, with every packet echoed back.

A relayed packet is one datagram crossing the relay in one direction: each
message uclient sends goes client → relay → peer and back peer → relay →
client, so relayed = sent + received.

    python loadtest/turn.py                  # 50 clients x 1000 messages each, channels
    python loadtest/turn.py --quick          # 10 x 200: a smoke run
    python loadtest/turn.py --tcp --send     # over TCP, with Send/Data indications
    python loadtest/turn.py --profile        # py-spy callswitch during its run

Loopback only; bounded in messages and time; stops only the processes it started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from loadtest import results  # noqa: E402
from tests.interop.harness import free_port, free_rtp_range, server_command  # noqa: E402
from tests.interop.turn_peers import run_uclient, turnutils_peer  # noqa: E402

USER, PASSWORD, REALM = "load", "load-pass", "callswitch"
SERVER_CPU, LOAD_CPU = 0, 1


def udp_counters() -> dict[str, int]:
    """The kernel's UDP counters (/proc/net/snmp): machine-wide, so a rough witness."""
    lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    names, values = [line for line in lines if line[0] == "Udp:"][:2]
    return dict(zip(names[1:], map(int, values[1:]), strict=True))


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Run:
    server: str
    sent: int
    received: int
    lost: int | None
    cpu: float
    uclient_rc: int
    rcvbuf_errors: int = 0  # datagrams the kernel dropped for full receive buffers (any socket)
    seconds: float = 0.0  # wall time of the load

    @property
    def relayed(self) -> int:
        return self.sent + self.received

    @property
    def cpu_per_10k(self) -> float:
        return self.cpu / self.relayed * 10_000 if self.relayed else float("nan")


def wait_listening(proc: subprocess.Popen, port: int, timeout: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before listening")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on TCP {port} after {timeout:.0f} s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def start_callswitch(workdir: Path, port: int, relay: tuple[int, int]) -> subprocess.Popen:
    cmd = [
        "taskset", "-c", str(SERVER_CPU), *server_command(), "serve",
        "--only", "turn",
        "--bind", "127.0.0.1", "--public-address", "127.0.0.1",
        "--turn-port", str(port), "--relay-ports", f"{relay[0]}-{relay[1]}",
        "--turn-user", f"{USER}:{PASSWORD}", "--turn-allow-peer", "127.0.0.0/8",
        "--data-dir", str(workdir / "data"), "--log-level", "warning",
    ]  # fmt: skip
    log = open(workdir / "callswitch.log", "w")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir)


def start_coturn(workdir: Path, port: int, relay: tuple[int, int]) -> subprocess.Popen:
    config = workdir / "turnserver.conf"
    config.write_text(
        "\n".join(
            [
                "listening-ip=127.0.0.1",
                "relay-ip=127.0.0.1",
                f"listening-port={port}",
                f"min-port={relay[0]}",
                f"max-port={relay[1]}",
                f"realm={REALM}",
                "lt-cred-mech",
                f"user={USER}:{PASSWORD}",
                "allow-loopback-peers",
                "no-tls",
                "no-dtls",
                "no-cli",
                "no-multicast-peers",
                f"pidfile={workdir / 'turnserver.pid'}",
                f"userdb={workdir / 'turndb'}",
                "log-file=stdout",
                "simple-log",
                "",
            ]
        )
    )
    cmd = ["taskset", "-c", str(SERVER_CPU), "turnserver", "-c", str(config)]
    log = open(workdir / "turnserver.log", "w")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=workdir)


def measure(name: str, proc: subprocess.Popen, port: int, args, extra: list[str]) -> Run:
    wait_listening(proc, port)
    time.sleep(0.5)  # let start-up work finish before the CPU reading
    profiler = None
    with turnutils_peer(cpu=LOAD_CPU) as peer_port:
        spy = shutil.which("py-spy") or shutil.which(
            "py-spy", path=str(Path(sys.executable).parent)
        )
        if args.profile and name == "callswitch" and spy:
            out = Path(args.workdir) / "turn-profile.txt"
            profiler = subprocess.Popen(
                [spy, "record", "--pid", str(proc.pid), "--format", "raw", "-o", str(out),
                 "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        before = cpu_seconds(proc.pid)
        counters = udp_counters()
        started = time.monotonic()
        result = run_uclient(
            port, peer_port, *extra, "-u", USER, "-w", PASSWORD, "-z", str(args.interval),
            messages=args.messages, clients=args.clients, timeout=args.timeout, cpu=LOAD_CPU,
        )  # fmt: skip
        cpu = cpu_seconds(proc.pid) - before
        seconds = time.monotonic() - started
        dropped = udp_counters()["RcvbufErrors"] - counters["RcvbufErrors"]
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            profiler.wait(20)
        print(f"py-spy profile of callswitch: {out}")
    if result.returncode != 0:
        print(f"{name}: uclient failed\n{result.output[-2000:]}", file=sys.stderr)
    return Run(
        name, result.sent, result.received, result.lost, cpu, result.returncode, dropped, seconds
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50, help="uclient -m")
    parser.add_argument("--messages", type=int, default=1000, help="uclient -n per session")
    parser.add_argument("--interval", type=int, default=5, help="uclient -z, ms between packets")
    parser.add_argument("--tcp", action="store_true", help="clients over TCP (uclient -t)")
    parser.add_argument("--send", action="store_true", help="Send/Data indications (uclient -s)")
    parser.add_argument("--quick", action="store_true", help="10 clients x 200 messages")
    parser.add_argument("--profile", action="store_true", help="py-spy callswitch's run")
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.messages = 10, 200
    for program in ("turnserver", "turnutils_uclient", "turnutils_peer", "taskset"):
        if shutil.which(program) is None:
            print(f"{program} is not installed (Debian packages coturn, util-linux)")
            return 2
    extra = (["-t"] if args.tcp else []) + (["-s"] if args.send else [])
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="turn-load-"))
    args.workdir = str(workdir)
    runs = []
    for name, start in (("callswitch", start_callswitch), ("coturn", start_coturn)):
        port = free_port()
        relay = free_rtp_range(2 * args.clients * 2 + 50, low=50000, high=58000)
        server_dir = workdir / name
        server_dir.mkdir(parents=True, exist_ok=True)
        proc = start(server_dir, port, relay)
        try:
            runs.append(measure(name, proc, port, args, extra))
        finally:
            stop(proc)
    mode = ("tcp" if args.tcp else "udp") + (" send-indications" if args.send else " channels")
    print(
        f"\nTURN relay, {mode}: {args.clients} uclient clients, "
        f"{args.messages} messages of 100 B each, every {args.interval} ms; "
        f"server on CPU {SERVER_CPU}"
    )
    print(f"{'server':<12}{'sent':>10}{'received':>10}{'lost':>8}{'relayed':>10}"
          f"{'CPU s':>9}{'CPU s/10k pkts':>16}{'rcvbuf drops':>14}")  # fmt: skip
    for run in runs:
        print(
            f"{run.server:<12}{run.sent:>10}{run.received:>10}{run.lost!s:>8}{run.relayed:>10}"
            f"{run.cpu:>9.2f}{run.cpu_per_10k:>16.3f}{run.rcvbuf_errors:>14}"
        )
    ours, theirs = runs
    ratio = ours.cpu_per_10k / theirs.cpu_per_10k if theirs.cpu_per_10k else float("inf")
    met = ratio <= 2.0 and ours.lost == 0 and ours.received == ours.sent > 0
    print(f"ratio callswitch/coturn CPU per packet: {ratio:.2f} (target <= 2.0 with zero loss: "
          f"{'met' if met else 'NOT met'})")  # fmt: skip
    load = os.getloadavg()
    print(f"load average during the runs: {load[0]:.2f} {load[1]:.2f} (2 cores; others share them)")
    print(f"logs in {workdir}")
    if args.json:
        write_json(args, mode, ours, theirs, ratio, met)
    return 0 if all(r.uclient_rc == 0 for r in runs) else 1


def write_json(args, mode: str, ours: Run, theirs: Run, ratio: float, met: bool) -> None:
    """One level (the clients of this run) in loadtest/results.py's shape."""

    def row(run: Run, meets: bool) -> dict:
        return results.level(
            args.clients,
            throughput=run.relayed / run.seconds if run.seconds else None,
            throughput_unit="relayed packets/s",
            latency_p50_ms=None,  # uclient reports no per-packet latency
            latency_p99_ms=None,
            loss_pct=100.0 * run.lost / run.sent if run.lost is not None and run.sent else None,
            cpu_pct=100.0 * run.cpu / run.seconds if run.seconds else None,
            meets=meets,
            cpu_s_per_10k_packets=run.cpu_per_10k,
        )

    results.write(
        args.json,
        results.report(
            "turn",
            target={"load": 50, "unit": "TURN clients", "cpu_ratio_to_coturn_max": 2.0},
            levels=[row(ours, met)],
            largest_passing=args.clients if met else None,
            mode=mode,
            messages_per_client=args.messages,
            interval_ms=args.interval,
            ratio_to_coturn=ratio,
            coturn=row(theirs, True),
            runs=[asdict(run) for run in (ours, theirs)],
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
