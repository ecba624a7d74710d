"""The bridge's relay path alone: server CPU per relayed RTP packet.

A child process (pinned to CPU 0) holds PAIRS bridged RtpSession pairs (the
same objects and the same `relay_to` fast path a `<Dial>` bridge uses) on
uvloop. This process (CPU 1) sends 20 ms PCMU packets into one side of every
pair at 50 packets/s each and counts what comes out of the other side. It
prints packets sent, relayed and lost, the child's CPU seconds per 10,000
relayed packets and the CPU share, for each PAIRS level. No SIP, no SIPp: a
steady figure to judge a change of media/session.py or media/bridge.py by.

    python loadtest/bench_relay.py [--pairs 100,300,500] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TICKS_PER_SECOND = 50


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def serve(pairs: int, sink: tuple[str, int], rtp_low: int) -> None:
    """The child: PAIRS bridged sessions; prints the A-side ports, then waits for stdin EOF."""
    from media.bridge import Bridge
    from media.clock import MediaClock
    from media.ports import PortPool
    from media.sdp import PCMU
    from media.session import RtpSession

    clock = MediaClock()
    pool = PortPool(rtp_low, rtp_low + 8 * pairs + 16)
    bridges, ports = [], []
    for _ in range(pairs):
        a = await RtpSession.bind("127.0.0.1", pool, clock)
        b = await RtpSession.bind("127.0.0.1", pool, clock)
        a.configure(PCMU, ("127.0.0.1", 9))  # A's peer sends from an arbitrary port; never sent to
        b.configure(PCMU, sink)
        a.start()
        b.start()
        bridge = Bridge(a, b)
        bridge.start()
        bridges.append(bridge)
        ports.append(a.port)
    print(" ".join(map(str, ports)), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


def run_level(pairs: int, seconds: float) -> dict:
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    receiver.setblocking(False)
    child = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            __file__,
            "--serve",
            str(pairs),
            str(receiver.getsockname()[1]),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        ports = [int(p) for p in child.stdout.readline().split()]
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))
        header = bytearray(12 + 160)
        header[0], header[1] = 0x80, 0
        header[8:12] = b"\x12\x34\x56\x78"
        sent = received = 0
        start_cpu = cpu_seconds(child.pid)
        start = time.monotonic()
        ticks = int(seconds * TICKS_PER_SECOND)
        for tick in range(ticks):
            header[2:4] = (tick & 0xFFFF).to_bytes(2, "big")
            header[4:8] = (tick * 160 & 0xFFFFFFFF).to_bytes(4, "big")
            for port in ports:
                sender.sendto(header, ("127.0.0.1", port))
                sent += 1
            received += _drain(receiver)
            delay = start + (tick + 1) / TICKS_PER_SECOND - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        time.sleep(0.2)
        received += _drain(receiver)
        cpu = cpu_seconds(child.pid) - start_cpu
        elapsed = time.monotonic() - start
    finally:
        child.stdin.close()
        child.wait(10)
    return {
        "pairs": pairs,
        "sent": sent,
        "relayed": received,
        "loss_pct": 100.0 * (sent - received) / sent if sent else 0.0,
        "cpu_per_10k": 10_000 * cpu / max(received, 1),
        "cpu_pct": 100.0 * cpu / elapsed,
    }


def _drain(sock: socket.socket) -> int:
    count = 0
    for _ in range(100_000):
        try:
            sock.recv(2048)
        except BlockingIOError:
            break
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="100,300,500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        import uvloop

        uvloop.run(serve(args.serve[0], ("127.0.0.1", args.serve[1]), 40000))
        return 0
    print(
        f"{'pairs':>6} {'pkts/s':>8} {'sent':>8} {'relayed':>8} {'loss %':>7} "
        f"{'CPU s/10k':>9} {'CPU %':>6}"
    )
    for pairs in (int(p) for p in args.pairs.split(",")):
        r = run_level(pairs, args.seconds)
        print(
            f"{r['pairs']:>6} {pairs * TICKS_PER_SECOND:>8} {r['sent']:>8} {r['relayed']:>8} "
            f"{r['loss_pct']:>7.2f} {r['cpu_per_10k']:>9.3f} {r['cpu_pct']:>6.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
