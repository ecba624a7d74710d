"""The bridge's relay path alone: server CPU per relayed RTP packet.

A child process (pinned to CPU 0) holds PAIRS bridged RtpSession pairs (the
same objects and the same `relay_to` fast path a `<Dial>` bridge uses) on
uvloop. This process (CPU 1) sends 20 ms PCMU packets into one side of every
pair at 50 packets/s each and counts what comes out of the other side. It
prints packets sent, relayed and lost, the child's CPU seconds per 10,000
relayed packets and the CPU share, for each PAIRS level. No SIP, no SIPp: a
steady figure to judge a change of media/session.py or media/bridge.py by.

`--bare` measures, in the same run and the same way, a baseline: the least a
relay on uvloop can do. Its child holds, per pair, a minimal
`asyncio.DatagramProtocol` on the A side's port that `sendto()`s each datagram
unchanged to the sink from the B side's socket (the same port numbers, the same
sender, the same pinning). Each level then runs ours and the bare relay back to
back and prints both CPU figures and their ratio, and a verdict against issue
22's target (the bridge relay within 1.3x of a bare uvloop relay): a level
passes only if neither lost a packet and the ratio holds.

    python loadtest/bench_relay.py [--pairs 100,300,500] [--seconds 10] [--bare]
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
TARGET_RATIO = 1.3  # issue 22: the bridge relay within 1.3x of a bare uvloop relay
RTP_LOW = 40000


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


async def serve_bare(pairs: int, sink: tuple[str, int], rtp_low: int) -> None:
    """The child with --bare: PAIRS minimal relays on the ports ``serve`` would bind
    (RTP and RTCP sockets alike, the RTCP ones idle); prints the A-side ports, then
    waits for stdin EOF."""
    from media.ports import PortPool

    loop = asyncio.get_running_loop()
    pool = PortPool(rtp_low, rtp_low + 8 * pairs + 16)
    held, ports = [], []

    def bound() -> tuple[int, socket.socket, socket.socket]:
        for _ in range(8):  # as RtpSession.bind: a pair another program holds is skipped
            port = pool.acquire()
            try:
                return (port, *_bind_pair(port))
            except OSError:
                continue
        raise RuntimeError("could not bind an RTP port pair")

    for _ in range(pairs):
        a_port, a_rtp, a_rtcp = bound()
        _, b_rtp, b_rtcp = bound()
        out, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, sock=b_rtp)
        transport, _ = await loop.create_datagram_endpoint(
            lambda out=out: _BareRelay(out, sink), sock=a_rtp
        )
        held.append((transport, out, a_rtcp, b_rtcp))
        ports.append(a_port)
    print(" ".join(map(str, ports)), flush=True)
    await loop.run_in_executor(None, sys.stdin.read)


def _bind_pair(port: int) -> tuple[socket.socket, socket.socket]:
    """UDP sockets on ``port`` and ``port + 1`` of loopback, as RtpSession.bind takes them."""
    socks: list[socket.socket] = []
    try:
        for each in (port, port + 1):
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(sock)
            sock.setblocking(False)
            sock.bind(("127.0.0.1", each))
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks[0], socks[1]


class _BareRelay(asyncio.DatagramProtocol):
    """Each datagram goes on unchanged to ``sink`` through ``out``: nothing checked,
    counted or rewritten (the floor a relay in Python on uvloop stands on)."""

    def __init__(self, out: asyncio.DatagramTransport, sink: tuple[str, int]) -> None:
        self.sendto = out.sendto
        self.sink = sink

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.sendto(data, self.sink)


def run_level(pairs: int, seconds: float, *, bare: bool = False) -> dict:
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
            *(["--bare"] if bare else []),
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
        # A tag of this level in the payload (which both relays pass on untouched): only
        # packets carrying it count, not a stray datagram another program sent this port.
        tag = os.urandom(8)
        header[12:20] = tag
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
            received += _drain(receiver, tag)
            delay = start + (tick + 1) / TICKS_PER_SECOND - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        time.sleep(0.2)
        received += _drain(receiver, tag)
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


def _drain(sock: socket.socket, tag: bytes) -> int:
    """The relayed packets waiting at ``sock`` (those whose payload starts with ``tag``)."""
    count = 0
    for _ in range(100_000):
        try:
            data = sock.recv(2048)
        except BlockingIOError:
            break
        count += data[12:20] == tag
    return count


def verdict(ours: dict, bare: dict) -> tuple[float, bool]:
    """Our CPU per packet over the bare relay's, and whether the level passes: nothing
    lost by either (a baseline that lost packets measured less work) and the ratio
    within TARGET_RATIO."""
    ratio = ours["cpu_per_10k"] / max(bare["cpu_per_10k"], 1e-9)
    carried = ours["relayed"] == ours["sent"] and bare["relayed"] == bare["sent"]
    return ratio, carried and ratio <= TARGET_RATIO


def _row(label: str, pairs: int, r: dict) -> str:
    return (
        f"{label:<5} {r['pairs']:>6} {pairs * TICKS_PER_SECOND:>8} {r['sent']:>8} "
        f"{r['relayed']:>8} {r['loss_pct']:>7.2f} {r['cpu_per_10k'] * 100:>7.2f} "
        f"{r['cpu_pct']:>6.1f}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="100,300,500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--bare",
        action="store_true",
        help="also measure a bare uvloop relay at each level and print the ratio",
    )
    parser.add_argument("--serve", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        import uvloop

        serving = serve_bare if args.bare else serve
        uvloop.run(serving(args.serve[0], ("127.0.0.1", args.serve[1]), RTP_LOW))
        return 0
    print(
        f"{'relay':<5} {'pairs':>6} {'pkts/s':>8} {'sent':>8} {'relayed':>8} {'loss %':>7} "
        f"{'µs/pkt':>7} {'CPU %':>6}"
    )
    verdicts = []
    for pairs in (int(p) for p in args.pairs.split(",")):
        ours = run_level(pairs, args.seconds)
        print(_row("ours", pairs, ours), flush=True)
        if not args.bare:
            continue
        bare = run_level(pairs, args.seconds, bare=True)
        print(_row("bare", pairs, bare), flush=True)
        ratio, passes = verdict(ours, bare)
        verdicts.append((pairs, ours, bare, ratio, passes))
    for pairs, ours, bare, ratio, passes in verdicts:
        lost = ours["sent"] - ours["relayed"] + bare["sent"] - bare["relayed"]
        print(
            f"{pairs} pairs: ours {ours['cpu_per_10k'] * 100:.2f} µs/pkt, bare "
            f"{bare['cpu_per_10k'] * 100:.2f} µs/pkt, ratio {ratio:.2f} "
            f"(target <= {TARGET_RATIO}), {lost} lost: {'PASS' if passes else 'FAIL'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
