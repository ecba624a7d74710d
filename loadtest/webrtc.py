"""Concurrent browser calls: SIPp callers answered by aiortc clients through
``<Dial><Client>``. How many one core holds with under 1% loss, PCMU and Opus.

callswitch runs pinned to CPU 0; this script (the aiortc clients) and SIPp share
CPU 1. Each level starts a fresh server, registers N aiortc clients over the
signaling WebSocket (agent0 … agentN-1, each with a token the official twilio
library made; the clients are WebRtcLegs sending an encoded tone, or with
--plain-clients aiortc peers that encode and decode) and places N SIPp calls
(loadtest/scenarios/bridge_uac.xml: a looped 1 kHz tone, 20 ms PCMU) to a number
whose webhook answers call k with ``<Dial><Client>agent{k}</Client></Dial>``.
Every client answers with an SDP that allows only the level's codec (PCMU or
Opus) and sends 440 Hz.

Over the measuring window (after every call is up and a settling pause):

- browser side, per call: frames the client received / 50 per second;
- SIP side, all calls together: RTP packets the server sent to SIPp's media
  sink (a never-read socket whose kernel drop counter counts them) / N x 50/s;
- the server's CPU (user + system, /proc) as a share of one core, and this
  script's own, which says whether the load generator kept up.

A call is *held* when its client was still connected at the window's end and
received at least 99% of its frames, and the SIP side as a whole lost under 1%.

    python loadtest/webrtc.py                     # PCMU 10,20,40,100 and Opus 10,20,40; 30 s
    python loadtest/webrtc.py --quick             # 5 calls of each, 10 s: a smoke run
    python loadtest/webrtc.py --pcmu 20 --opus 10 --window 30
    python loadtest/webrtc.py --sdk               # the same over the official Voice JS
                                                  # SDK's signaling (PStream at /signal)

With ``--sdk`` the clients speak what Twilio's official browser SDK speaks
(signaling/pstream.py: ``listen``, ``register``, ``invite`` answered by ``answer``,
heartbeats, ``register`` again every 30 s) instead of callswitch.js's protocol; the
media side (aiortc) is the same, so the two rows compare the signaling paths.

Loopback only; bounded in calls and time; stops only the processes it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from aiortc import (  # noqa: E402
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError  # noqa: E402
from twilio.jwt.access_token import AccessToken  # noqa: E402
from twilio.jwt.access_token.grants import VoiceGrant  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402

from loadtest import results as report  # noqa: E402
from loadtest.bridge import (  # noqa: E402
    BackgroundSipp,
    MediaSink,
    cpu_seconds,
    profile_server,
    sipp_dir,
    summarize_profile,
)
from tests.interop.harness import CallswitchServer  # noqa: E402
from tests.interop.sipp import find_sipp  # noqa: E402
from tests.interop.test_voice_webhooks import credentials, rest_client  # noqa: E402
from tests.interop.webhook_app import WebhookApp, twiml  # noqa: E402

RATE = 48000
FRAME = 960
PACKETS_PER_S = 50
SERVER_CPU = 0
LOAD_CPU = 1


class CachedTone(MediaStreamTrack):
    """440 Hz from one precomputed second, paced at 20 ms: cheap to send many of."""

    kind = "audio"
    _cycle: list[np.ndarray] | None = None

    def __init__(self) -> None:
        super().__init__()
        if CachedTone._cycle is None:
            t = np.arange(RATE) / RATE
            wave = (0.25 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
            CachedTone._cycle = [wave[i : i + FRAME].reshape(1, -1) for i in range(0, RATE, FRAME)]
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            wait = self._start + self._count * 0.02 - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        samples = self._cycle[self._count % len(self._cycle)]
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._count * FRAME
        frame.time_base = fractions.Fraction(1, RATE)
        self._count += 1
        return frame


@dataclass
class Agent:
    """One aiortc client: registered, answers one call, counts the frames it hears."""

    identity: str
    codec: str
    plain_aiortc: bool = False  # a plain aiortc peer that encodes and decodes itself
    sdk: bool = False  # speak the official SDK's PStream at /signal
    received: int = 0
    leg: object = None  # the WebRtcLeg of a PCMU client, which counts what it sent
    connected: bool = False
    ended: bool = False
    negotiated: str = ""
    error: str = ""
    _tasks: list[asyncio.Task] = field(default_factory=list)

    async def run(self, url: str, token: str, ready: asyncio.Event, stop: asyncio.Event) -> None:
        if self.sdk:
            await self.run_sdk(url, token, ready, stop)
            return
        pc = None
        try:
            async with connect(url, open_timeout=20, max_queue=64) as ws:
                await ws.send(json.dumps({"type": "register", "token": token}))
                if json.loads(await ws.recv()).get("type") != "registered":
                    self.error = "not registered"
                    return
                ready.set()
                while not stop.is_set():
                    message = json.loads(await ws.recv())
                    kind = message.get("type")
                    if kind == "incoming" and pc is None:
                        pc = await self._answer(ws, message)
                    elif kind == "status" and message.get("status") == "in-progress":
                        self.connected = True
                    elif kind in ("hangup", "cancel"):
                        self.ended = True
                        break
        except Exception as exc:  # reported in the table, not raised
            self.error = self.error or f"{type(exc).__name__}: {exc}"[:80]
        finally:
            for task in self._tasks:
                task.cancel()
            if pc is not None:
                await pc.close()

    async def run_sdk(
        self, url: str, token: str, ready: asyncio.Event, stop: asyncio.Event
    ) -> None:
        """As the official SDK does: listen, register (again every 30 s), answer the invite."""
        pc = None

        def frame(kind: str, **payload) -> str:
            return json.dumps({"type": kind, "version": "1.6", "payload": payload})

        async def reregister(ws) -> None:
            while True:
                await asyncio.sleep(30)
                await ws.send(frame("register", media={"audio": True}))

        try:
            async with connect(url, open_timeout=20, max_queue=64) as ws:
                info = {"p": "browser", "v": "2.18.5", "plugin": "rtc"}
                await ws.send(frame("listen", token=token, browserinfo=info, reconnectTimeout=0))
                await ws.send(frame("register", media={"audio": True}))
                self._tasks.append(asyncio.ensure_future(reregister(ws)))
                while not stop.is_set():
                    text = await ws.recv()
                    if text == "\n":  # the heartbeat: the SDK echoes it
                        await ws.send("\n")
                        continue
                    message = json.loads(text)
                    kind, payload = message.get("type"), message.get("payload") or {}
                    if kind == "ready":
                        ready.set()
                    elif kind in ("error", "close"):
                        self.error = str(payload.get("error"))[:80]
                        return
                    elif kind == "invite" and pc is None:
                        call = {"call": payload["callsid"], "sdp": payload["sdp"]}
                        pc = await self._answer(ws, call)
                        self.connected = True  # PStream says nothing more once answered
                    elif kind in ("hangup", "cancel"):
                        self.ended = True
                        break
        except Exception as exc:  # reported in the table, not raised
            self.error = self.error or f"{type(exc).__name__}: {exc}"[:80]
        finally:
            for task in self._tasks:
                task.cancel()
            if pc is not None:
                await pc.close()

    async def _accept(self, ws, call: str, sdp: str) -> None:
        if self.sdk:
            message = {"type": "answer", "version": "1.6", "payload": {"callsid": call, "sdp": sdp}}
        else:
            message = {"type": "accept", "call": call, "sdp": sdp}
        await ws.send(json.dumps(message))

    async def _answer(self, ws, message: dict):
        if not self.plain_aiortc:
            return await self._answer_leg(ws, message)
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        transceiver = pc.addTransceiver(CachedTone(), direction="sendrecv")
        caps = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences(
            [c for c in caps if c.mimeType.lower() == f"audio/{self.codec.lower()}"]
        )
        pc.on("track", lambda track: self._tasks.append(asyncio.ensure_future(self._count(track))))
        await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        sdp = pc.localDescription.sdp
        self.negotiated = "OPUS" if "opus/48000" in sdp.split("m=audio", 1)[1][:400] else "PCMU"
        await self._accept(ws, message["call"], sdp)
        return pc

    async def _answer_leg(self, ws, message: dict):
        """Clients are our own WebRtcLeg (aiortc underneath, payloads untouched, an
        encoded tone looped), so that CPU 1 can run as many as the server carries."""
        from signaling.webrtc_leg import WebRtcLeg

        leg = WebRtcLeg(only_codec=self.codec)
        self.leg = leg
        leg.on_frame = lambda frame: self._heard()
        sdp = await leg.answer_offer(message["sdp"])
        self.negotiated = leg.browser_codec
        leg.source = _tone_frames(leg.codec)
        await self._accept(ws, message["call"], sdp)
        return _LegConnection(leg)

    def _heard(self) -> None:
        self.received += 1

    async def _count(self, track) -> None:
        with contextlib.suppress(MediaStreamError, asyncio.CancelledError):
            while True:
                await track.recv()
                self.received += 1


def _tone_frames(codec: str):
    """A looped 440 Hz in ``codec``, encoded once."""
    from media.codecs import encoder

    encode = encoder(codec)
    rate = encode.sample_rate
    wave = (0.25 * 32767 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.int16)
    size = encode.frame_samples
    frames = itertools.cycle([encode.encode(wave[i : i + size]) for i in range(0, rate, size)])
    return lambda: next(frames)


class _LegConnection:
    def __init__(self, leg) -> None:
        self.leg = leg

    async def close(self) -> None:
        self.leg.close()


@dataclass
class Level:
    codec: str
    calls: int
    answered: int = 0
    held: int = 0
    browser_loss_median: float = 1.0
    browser_loss_worst: float = 1.0
    sip_loss: float = 1.0
    sent: float = -1.0  # what the clients sent / what they should have (PCMU clients only)
    server_cpu: float = 0.0
    generator_cpu: float = 0.0
    notes: list[str] = field(default_factory=list)
    profile: str = ""
    sdk: bool = False

    @property
    def _sent(self) -> str:
        return f"{100 * self.sent:5.1f}%" if self.sent >= 0 else "    -"

    def row(self) -> str:
        codec = self.codec + ("/sdk" if self.sdk else "")
        return (
            f"| {codec:9} | {self.calls:5} | {self.answered:8} | {self.held:4} "
            f"| {100 * self.browser_loss_median:6.2f}% / {100 * self.browser_loss_worst:6.2f}% "
            f"| {100 * self.sip_loss:6.2f}% | {self._sent} | {100 * self.server_cpu:5.0f}% "
            f"| {100 * self.generator_cpu:5.0f}% | {'; '.join(self.notes)[:70]} |"
        )


TARGETS = {"PCMU": 100, "opus": 40}  # calls on one core, issue 6
HEADER = (
    "| codec     | calls | answered | held | browser loss med / worst | SIP loss | clients sent "
    "| server CPU | load CPU | notes |\n|---|---|---|---|---|---|---|---|---|---|"
)


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system


async def run_level(work: Path, sipp: str, codec: str, calls: int, args) -> Level:
    level = Level(codec, calls, sdk=args.sdk)
    server = CallswitchServer.start(
        work / "server",
        cpu=SERVER_CPU,
        rtp_size=max(200, 8 * calls),
        # Up to 100 agents' WebSockets and the REST calls, all from 127.0.0.1.
        extra_args=report.TRUSTED_LOAD,
    )
    sink = MediaSink()
    counter = itertools.count()
    app = WebhookApp()
    app.routes["/voice"] = lambda r: twiml(
        f"<Dial timeout='60'><Client>agent{next(counter) % calls}</Client></Dial>"
    )
    bulk = None
    stop = asyncio.Event()
    agents: list[Agent] = []
    tasks: list[asyncio.Task] = []
    try:
        with app:
            sid, auth = credentials(server)
            rest = rest_client(server, sid, auth)
            number = "+15005550199"
            rest.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
            key = rest.new_keys.create(friendly_name="loadtest")
            url = f"ws://127.0.0.1:{server.http_port}/{'signal' if args.sdk else 'signaling'}"
            for k in range(calls):
                token = AccessToken(sid, key.sid, key.secret, identity=f"agent{k}", ttl=3600)
                token.add_grant(VoiceGrant(incoming_allow=True))
                agent = Agent(f"agent{k}", codec, plain_aiortc=args.plain_clients, sdk=args.sdk)
                ready = asyncio.Event()
                agents.append(agent)
                tasks.append(asyncio.ensure_future(agent.run(url, token.to_jwt(), ready, stop)))
                await asyncio.wait_for(ready.wait(), 20)
            setup_s = calls / args.rate + 15
            hold_ms = int((setup_s + args.settle + args.window + 5) * 1000)
            bulk = BackgroundSipp(
                "bridge_uac.xml",
                server.sip_target,
                cwd=sipp_dir(work / "sipp"),
                sipp=sipp,
                service=number.lstrip("+"),
                calls=calls,
                rate=args.rate,
                limit=calls,
                pause_ms=hold_ms,
                keys={"sink_port": sink.port},
                timeout=hold_ms / 1000 + 30,
                cpu=LOAD_CPU,
            )
            deadline = time.monotonic() + setup_s
            while time.monotonic() < deadline and sum(a.connected for a in agents) < calls:
                await asyncio.sleep(0.2)
            level.answered = sum(a.connected for a in agents)
            if level.answered < calls:
                level.notes.append(f"{calls - level.answered} not answered in {setup_s:.0f} s")
            await asyncio.sleep(args.settle)
            rx0 = [a.received for a in agents]
            tx0 = sum(a.leg.frames_sent for a in agents if a.leg is not None)
            sip0 = sink.delivered() or 0
            cpu0, own0, t0 = cpu_seconds(server.pid) or 0.0, _own_cpu(), time.monotonic()
            spy = None
            if args.profile:
                spy = profile_server(server.pid, args.window, work / "profile.txt")
            await asyncio.sleep(args.window)
            if spy is not None:
                await asyncio.to_thread(spy.wait, 30)
                level.profile = summarize_profile(work / "profile.txt")
            elapsed = time.monotonic() - t0
            rx1 = [a.received for a in agents]
            tx1 = sum(a.leg.frames_sent for a in agents if a.leg is not None)
            sip1 = sink.delivered() or 0
            level.server_cpu = ((cpu_seconds(server.pid) or 0.0) - cpu0) / elapsed
            level.generator_cpu = (_own_cpu() - own0) / elapsed
            expected = PACKETS_PER_S * elapsed
            losses = [
                max(0.0, 1 - (b - a) / expected) if agent.connected and not agent.ended else 1.0
                for agent, a, b in zip(agents, rx0, rx1, strict=True)
            ]
            level.browser_loss_median = statistics.median(losses)
            level.browser_loss_worst = max(losses)
            if any(a.leg is not None for a in agents):
                level.sent = (tx1 - tx0) / (expected * max(1, level.answered))
            level.sip_loss = max(0.0, 1 - (sip1 - sip0) / (expected * max(1, level.answered)))
            if level.sip_loss < 0.01:
                level.held = sum(loss < 0.01 for loss in losses)
            wrong = [a for a in agents if a.negotiated and a.negotiated != codec.upper()]
            if wrong:
                level.notes.append(f"{len(wrong)} negotiated another codec")
            errors = [a.error for a in agents if a.error]
            if errors:
                level.notes.append(f"{len(errors)} client errors, e.g. {errors[0]}")
    finally:
        stop.set()
        if bulk is not None:
            bulk.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        problems = server.stop()
        sink.close()
        if problems:
            level.notes.append("server: " + "; ".join(problems)[:60])
    return level


async def main_async(args) -> int:
    sipp = find_sipp()
    if sipp is None:
        print("sipp is not installed (Debian package sip-tester)", file=sys.stderr)
        return 2
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {LOAD_CPU})
    from signaling.webrtc_leg import use_host_addresses

    use_host_addresses(["127.0.0.1"])  # loopback only, as the server bound to it
    plan = [("PCMU", n) for n in args.pcmu] + [("opus", n) for n in args.opus]
    print(
        f"callswitch on CPU {SERVER_CPU}; aiortc clients and SIPp on CPU {LOAD_CPU}; "
        f"window {args.window:.0f} s after {args.settle:.0f} s settling\n"
    )
    print(HEADER, flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="callswitch-webrtc-load-") as tmp:
        if args.workdir:  # kept for reading the server's log afterwards
            tmp = args.workdir
        for index, (codec, calls) in enumerate(plan):
            workdir = Path(tmp) / f"{index}-{codec}-{calls}"
            level = await run_level(workdir, sipp, codec, calls, args)
            results.append(level)
            print(level.row(), flush=True)
            if level.profile:
                print(level.profile, flush=True)
    print()
    for codec, target in TARGETS.items():
        if not any(lv.codec == codec for lv in results):
            continue  # not run (the suite runs one codec at a time)
        held = [lv.held for lv in results if lv.codec == codec and lv.held == lv.calls]
        best = max(held, default=0)
        print(f"{codec}: {best} calls held with under 1% loss on one core (target {target})")
    if args.json:
        write_json(args.json, results)
    return 0


def write_json(path: Path, levels: list[Level]) -> None:
    """loadtest/results.py's shape for one codec (the suite runs each codec apart)."""
    codecs = sorted({level.codec for level in levels})
    if len(codecs) != 1:
        print(f"--json needs levels of one codec (--pcmu N... --opus, or the reverse), "
              f"not {codecs}", file=sys.stderr)  # fmt: skip
        return
    codec = codecs[0]
    rows = [
        report.level(
            level.calls,
            throughput=level.held,
            throughput_unit="calls held (< 1% loss)",
            latency_p50_ms=None,  # the clients count frames; they do not time them
            latency_p99_ms=None,
            loss_pct=100.0 * max(level.browser_loss_worst, level.sip_loss),
            cpu_pct=100.0 * level.server_cpu,
            meets=level.answered == level.held == level.calls,
            browser_loss_median_pct=100.0 * level.browser_loss_median,
            sip_loss_pct=100.0 * level.sip_loss,
            load_cpu_pct=100.0 * level.generator_cpu,
            notes=level.notes,
        )
        for level in levels
    ]
    passing = [row["load"] for row in rows if row["meets"]]
    report.write(
        path,
        report.report(
            f"webrtc_{codec.lower()}" + ("_sdk" if levels[0].sdk else ""),
            target={"load": TARGETS[codec], "unit": f"{codec} browser calls", "loss_pct_max": 1.0},
            levels=rows,
            largest_passing=max(passing, default=None),
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pcmu", type=int, nargs="*", default=[10, 20, 40, 100])
    parser.add_argument("--opus", type=int, nargs="*", default=[10, 20, 40])
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--rate", type=float, default=10.0, help="SIPp calls per second")
    parser.add_argument(
        "--plain-clients", action="store_true", help="clients that encode and decode (costly)"
    )
    parser.add_argument(
        "--sdk", action="store_true", help="clients speak the official SDK's PStream (/signal)"
    )
    parser.add_argument("--workdir", default=None, help="keep servers' logs here")
    parser.add_argument("--profile", action="store_true", help="py-spy the server's window")
    parser.add_argument("--quick", action="store_true", help="5 calls of each codec, 10 s")
    parser.add_argument("--json", type=Path, default=None, help="figures of one codec, here")
    args = parser.parse_args(argv)
    if args.quick:
        args.window = 10.0
        args.pcmu = [5] if args.pcmu else []  # `--quick --opus` (no numbers): PCMU only
        args.opus = [5] if args.opus else []
    try:
        import uvloop

        return uvloop.run(main_async(args))
    except ImportError:
        return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
