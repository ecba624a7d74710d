"""The Media Streams path alone: server CPU per streamed frame, both ways.

A child process (pinned to CPU 0, uvloop) holds STREAMS RTP sessions, each with
the same `MediaStreamClient` a `<Connect><Stream>` uses, connected to the echo
server of `loadtest/streams.py` (a process of its own on CPU 1). This process
(CPU 1) sends 20 ms PCMU packets into every session at 50 packets/s; each
packet leaves as a `media` message, comes back from the echo server as a
`media` message and is played to a sink socket on the session's next tick.

It prints, per level: media messages/s into and out of the echo server, RTP
packets/s played back, the loss of each, and the child's CPU seconds per
10,000 frames streamed (one frame = one packet in, one message out, one
message in, one packet out), its CPU per stream-second (µs of CPU per second
of one stream: fifty frames, whether or not the starved child played them all)
and its CPU share. The child sets the collector as the server does. No SIP, no SIPp, no store:
a steady figure to judge a change of media/stream_client.py, media/streams.py,
media/websocket.py or media/session.py by, even on a busy machine (CPU time
per frame moves little when the core is shared; wall-clock latency does).

    python loadtest/bench_streams.py [--streams 100,300,500] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from loadtest.bench_relay import cpu_seconds  # noqa: E402
from loadtest.bridge import MediaSink  # noqa: E402
from loadtest.streams import EchoProcess  # noqa: E402

TICKS_PER_SECOND = 50
SERVER_GC_YOUNG_THRESHOLD = 20_000  # callswitch/server.py's GC_YOUNG_THRESHOLD
SETTLE_S = 1.0


async def serve(streams: int, echo_port: int, sink: tuple[str, int], rtp_low: int) -> None:
    """The child: STREAMS sessions streaming to the echo server; prints their ports,
    then runs until stdin closes."""
    from media.clock import MediaClock
    from media.ports import PortPool
    from media.sdp import PCMU
    from media.session import RtpSession
    from media.stream_client import MediaStreamClient
    from media.streams import MediaStream

    clock = MediaClock()
    pool = PortPool(rtp_low, rtp_low + 4 * streams + 16)
    ended = asyncio.Event()
    runs, ports = [], []
    for n in range(streams):
        session = await RtpSession.bind("127.0.0.1", pool, clock)
        session.configure(PCMU, sink)
        session.start()
        protocol = MediaStream("AC" + "0" * 32, f"CA{n:032d}", f"MZ{n:032d}")
        client = MediaStreamClient(session, f"ws://127.0.0.1:{echo_port}/bench", protocol)
        await client.connect()
        runs.append(asyncio.ensure_future(client.run(ended)))
        ports.append(session.port)
    # The collector as the server sets it (callswitch/server.py serve(); importing
    # the server here would find loadtest/turn.py for the turn package).
    gc.collect()
    gc.freeze()
    gc.set_threshold(SERVER_GC_YOUNG_THRESHOLD, 50, 100)
    print(" ".join(map(str, ports)), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    ended.set()
    await asyncio.gather(*runs, return_exceptions=True)
    print(f"skipped_ticks={clock.skipped} max_lag_ms={clock.max_lag * 1000:.1f}", flush=True)


def run_level(streams: int, seconds: float, echo: EchoProcess) -> dict:
    sink = MediaSink()
    child = subprocess.Popen(
        ["taskset", "-c", "0", sys.executable, __file__, "--serve", str(streams),
         str(echo.port), str(sink.port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ports = [int(p) for p in child.stdout.readline().split()]
        if len(ports) != streams:
            raise RuntimeError("the child did not open its streams")
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sender.bind(("127.0.0.1", 0))
        packet = bytearray(12 + 160)
        packet[0], packet[1] = 0x80, 0
        packet[8:12] = b"\x12\x34\x56\x78"
        packet[12:] = b"\x55" * 160
        total_ticks = int((seconds + SETTLE_S) * TICKS_PER_SECOND)
        settle_ticks = int(SETTLE_S * TICKS_PER_SECOND)
        sent = 0
        start = time.monotonic()
        for tick in range(total_ticks):
            if tick == settle_ticks:
                before = echo.counters(), sink.delivered() or 0, cpu_seconds(child.pid)
                window_start = time.monotonic()
                sent = 0
            packet[2:4] = (tick & 0xFFFF).to_bytes(2, "big")
            packet[4:8] = (tick * 160 & 0xFFFFFFFF).to_bytes(4, "big")
            for port in ports:
                sender.sendto(packet, ("127.0.0.1", port))
            sent += streams
            delay = start + (tick + 1) / TICKS_PER_SECOND - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        time.sleep(0.1)  # the last frames' round trip
        after = echo.counters(), sink.delivered() or 0, cpu_seconds(child.pid)
        elapsed = time.monotonic() - window_start
    finally:
        child.stdin.close()
        tail = child.stdout.read()
        child.wait(20)
        sink.close()
    ws_in = after[0]["ws_in"] - before[0]["ws_in"]
    ws_out = after[0]["ws_out"] - before[0]["ws_out"]
    played = after[1] - before[1]
    cpu = after[2] - before[2]
    return {
        "streams": streams,
        "sent": sent,
        "ws_in": ws_in,
        "ws_out": ws_out,
        "played": played,
        "loss_in_pct": 100.0 * (sent - ws_in) / sent,
        "loss_out_pct": 100.0 * (sent - played) / sent,
        "cpu_per_10k": 10_000 * cpu / max(played, 1),
        "us_per_stream_s": 1e6 * cpu / (streams * elapsed),
        "cpu_pct": 100.0 * cpu / elapsed,
        "clock": tail.strip(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", default="100,300,500")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--serve", nargs=3, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        import uvloop

        streams, echo_port, sink_port = args.serve
        uvloop.run(serve(streams, echo_port, ("127.0.0.1", sink_port), 42000))
        return 0
    levels = [int(n) for n in args.streams.split(",")]
    os.sched_setaffinity(0, {1})
    echo = EchoProcess(lifetime=len(levels) * (args.seconds + 60) + 60)
    print(
        f"{'streams':>7} {'ws in/s':>8} {'ws out/s':>8} {'RTP out/s':>9} {'loss in %':>9} "
        f"{'loss out %':>10} {'CPU s/10k':>9} {'µs/stream-s':>11} {'CPU %':>6}  media clock"
    )
    try:
        for streams in levels:
            r = run_level(streams, args.seconds, echo)
            window = args.seconds
            print(
                f"{streams:>7} {r['ws_in'] / window:>8.0f} {r['ws_out'] / window:>8.0f} "
                f"{r['played'] / window:>9.0f} {r['loss_in_pct']:>9.2f} {r['loss_out_pct']:>10.2f} "
                f"{r['cpu_per_10k']:>9.3f} {r['us_per_stream_s']:>11.0f} {r['cpu_pct']:>6.1f}  "
                f"{r['clock']}",
                flush=True,
            )
    finally:
        echo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
