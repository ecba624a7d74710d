"""The Media Streams path's own Python, without sockets: CPU µs per frame, by stage.

STREAMS sessions, each with the `MediaStreamClient` a `<Connect><Stream>` uses,
connected to a local WebSocket server that says nothing, then moved onto
stand-in transports that only count what is written: every frame, each session is
handed one 20 ms PCMU packet (`datagram_received`, as uvloop hands it over), one
`media` message from the application (`data_received`, a whole WebSocket frame)
and one media tick. The thread's CPU time of each stage is summed over FRAMES
frames per round, the best of ROUNDS rounds kept, and printed per frame:

    rtp in + ws out   packet → Frame → `media` message → masked frame written
    ws in             frame → JSON → payload → playout queue
    tick + rtp out    queue → RTP header → packet written

No kernel, no loop wake-ups, hot caches: what a change to media/session.py,
media/stream_client.py, media/streams.py or media/websocket.py saves of the
interpreter's share, steady on a shared machine (thread CPU time, best of rounds),
where `bench_streams.py`'s end-to-end figure moves with the neighbours' load.

    python loadtest/bench_stream_path.py [--streams 200] [--frames 100] [--rounds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from websockets.asyncio.server import serve  # noqa: E402

from media.clock import MediaClock  # noqa: E402
from media.ports import PortPool  # noqa: E402
from media.sdp import PCMU  # noqa: E402
from media.session import RtpSession  # noqa: E402
from media.stream_client import MediaStreamClient  # noqa: E402
from media.streams import MediaStream  # noqa: E402

PEER = ("127.0.0.1", 30000)
PAYLOAD = bytes(range(160))


class CountingTcp:
    """What the WebSocket connection writes to: counted, the last write kept."""

    def __init__(self) -> None:
        self.writes = 0
        self.last = b""

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.last = data

    def get_extra_info(self, name: str, default: object = None) -> object:
        return default

    def set_write_buffer_limits(self, high: int | None = None) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def abort(self) -> None:
        pass


class CountingUdp:
    """What the RTP session sends to: counted, the last packet kept."""

    def __init__(self) -> None:
        self.sent = 0
        self.last = b""

    def sendto(self, data: bytes, address: object = None) -> None:
        self.sent += 1
        self.last = bytes(data)

    def close(self) -> None:
        pass


def media_frame(stream_sid: str) -> bytes:
    """The application's `media` message as one unmasked server frame."""
    payload = base64.b64encode(PAYLOAD).decode()
    message = f'{{"event":"media","streamSid":"{stream_sid}","media":{{"payload":"{payload}"}}}}'
    data = message.encode()
    return bytes((0x81, 126)) + len(data).to_bytes(2, "big") + data


async def _silent(connection: object) -> None:
    await asyncio.Event().wait()  # the application: it never sends (the bench does)


async def run(streams: int, frames: int, rounds: int) -> list[float]:
    clock = MediaClock()
    pool = PortPool(40000, 40000 + 2 * streams + 2)
    legs = []
    sockets = []  # the real transports, closed at the end
    server = await serve(_silent, "127.0.0.1", 0, ping_interval=None)
    port = next(iter(server.sockets)).getsockname()[1]
    for n in range(streams):
        session = RtpSession(clock, pool, 40000 + 2 * n)
        session.connection_made(CountingUdp())  # type: ignore[arg-type]
        session.configure(PCMU, PEER)
        session.start()  # on the clock, whose tick this bench calls itself
        protocol = MediaStream("AC" + "0" * 32, f"CA{n:032d}", f"MZ{n:032d}")
        client = MediaStreamClient(session, f"ws://127.0.0.1:{port}/bench", protocol)
        await client.connect()
        ws = client._ws
        assert ws is not None and ws.transport is not None
        sockets.append(ws.transport)
        ws.transport = CountingTcp()  # type: ignore[assignment]
        run_task = asyncio.ensure_future(client.run(asyncio.Event()))  # installs the callbacks
        legs.append((session, ws, media_frame(protocol.stream_sid), client, run_task))
    await asyncio.sleep(0)
    assert clock._handle is not None
    clock._handle.cancel()  # ticks are this bench's to call
    packet = bytearray(172)
    packet[0], packet[8:12], packet[12:] = 0x80, b"\x12\x34\x56\x78", PAYLOAD
    best = [float("inf")] * 3
    frame = 0
    for _ in range(rounds):
        spent = [0.0, 0.0, 0.0]
        for _ in range(frames):
            frame += 1
            packet[2:4] = (frame & 0xFFFF).to_bytes(2, "big")
            packet[4:8] = (frame * 160 & 0xFFFFFFFF).to_bytes(4, "big")
            data = bytes(packet)
            t0 = time.thread_time()
            for session, *_ in legs:
                session.datagram_received(data, PEER)
            t1 = time.thread_time()
            for _, ws, message, *_ in legs:
                ws.data_received(message)
            t2 = time.thread_time()
            clock._tick()
            t3 = time.thread_time()
            assert clock._handle is not None
            clock._handle.cancel()
            spent[0] += t1 - t0
            spent[1] += t2 - t1
            spent[2] += t3 - t2
        best = [min(b, 1e6 * s / (frames * streams)) for b, s in zip(best, spent, strict=True)]
    session, ws, _, client, _ = legs[0]
    if client.sent < frame or session.packets_sent < frame - 1:
        sent, played = client.sent, session.packets_sent
        raise RuntimeError(f"frames went missing: {sent} sent, {played} played")
    if session._rtp.last[12:] != PAYLOAD:  # type: ignore[union-attr]
        raise RuntimeError("the application's audio did not come back")
    tasks = [task for *_, task in legs]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for transport in sockets:
        transport.abort()
    server.close()
    clock.close()
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--frames", type=int, default=100, help="frames per round")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    import uvloop

    stages = uvloop.run(run(args.streams, args.frames, args.rounds))
    print(
        f"{args.streams} streams, µs of CPU per frame (best of {args.rounds} rounds): "
        f"rtp in + ws out {stages[0]:.2f}, ws in {stages[1]:.2f}, "
        f"tick + rtp out {stages[2]:.2f}, total {sum(stages):.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
