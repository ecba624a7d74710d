"""A Media Streams application that floods ``media`` messages as fast as TCP lets it
(it used to stall every call's media clock, OPTIONS and ``/health`` up to 686 ms):
the node reads it at its playout's pace, so another call's tone keeps its 20 ms
rhythm and SIP and HTTP keep answering."""

from __future__ import annotations

import itertools
import statistics
import threading
import time

import pytest
from websockets.asyncio.server import ServerConnection

from tests.interop.rtp import RtpSink
from tests.interop.sipclient import udp_options
from tests.interop.test_media_streams import StreamBot, media_message
from tests.interop.test_metrics import scrape, value
from tests.interop.test_voice_webhooks import rest_client
from tests.interop.webhook_app import WebhookApp, twiml

from .node import health as node_health
from .phone import RawCall

pytestmark = pytest.mark.solo  # load-sensitive: run alone, after the parallel run

NUMBER = "+15005550072"
FLOOD_S = 6.0
FLOODS = 3  # calls whose stream application floods


class Flood:
    """A Media Streams application's behaviour (for the interop suite's StreamBot):
    once its stream starts, ``media`` messages back to back for ``FLOOD_S`` seconds,
    counting what it got out."""

    def __init__(self) -> None:
        self.sent = 0
        self.streams = 0
        self.started = threading.Event()

    async def __call__(self, bot: StreamBot, ws: ServerConnection) -> None:
        stream_sid = ""
        while not stream_sid:
            stream_sid = (await bot.next_message(ws)).get("streamSid", "")
        self.streams += 1
        if self.streams == FLOODS:
            self.started.set()
        message = media_message(stream_sid, b"\xff" * 160)
        end = time.monotonic() + FLOOD_S
        try:
            while time.monotonic() < end:
                await ws.send(message)
                self.sent += 1
        except Exception:  # the call ended under us
            return


def timed(action) -> float:
    started = time.monotonic()
    assert action()
    return time.monotonic() - started


def test_a_media_flood_does_not_stall_another_calls_media(server, rtp_sink):
    flood = Flood()
    with StreamBot(flood) as bot, WebhookApp() as app, RtpSink() as flood_sink:
        app.routes["/voice"] = lambda r: twiml(
            f'<Connect><Stream url="ws://127.0.0.1:{bot.port}/"/></Connect>'
        )
        rest_client(server).incoming_phone_numbers.create(
            phone_number=NUMBER, voice_url=app.url("/voice")
        )
        listener = RawCall(server.sip_addr, "tone", ("127.0.0.1", rtp_sink.port))
        flooded = [
            RawCall(server.sip_addr, NUMBER.lstrip("+"), ("127.0.0.1", flood_sink.port))
            for _ in range(FLOODS)
        ]
        try:
            for call in (listener, *flooded):
                response = call.invite()
                assert response is not None and response.status == 200, server.tail()
                call.ack()
            assert flood.started.wait(10), "the stream never started\n" + server.tail()
            flood_began = time.monotonic()
            options, health = [], []
            while time.monotonic() - flood_began < FLOOD_S - 1:
                options.append(timed(lambda: udp_options(server.sip_addr) is not None))
                health.append(timed(lambda: node_health(server) == 200))
                time.sleep(0.2)
            window_end = time.monotonic()
            samples = scrape(server)
        finally:
            for call in (listener, *flooded):
                call.bye()
                call.close()
    arrivals = [
        p.arrival for p in rtp_sink.packets() if flood_began + 0.5 <= p.arrival <= window_end
    ]
    assert len(arrivals) > 100, f"only {len(arrivals)} tone packets during the flood"
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    # The flood used to stall every tick for up to 686 ms. On a shared two-core test
    # machine a tick can be late by tens of ms for reasons of its own: the bound is
    # what the feature needs (no stall), not what a quiet machine shows.
    assert statistics.median(gaps) < 0.030, statistics.median(gaps)
    assert max(gaps) < 0.300, max(gaps)
    assert max(options) < 0.5 and max(health) < 0.5, (max(options), max(health))
    # It was met by back-pressure (reading paused), not by parsing everything it sent.
    assert value(samples, "callswitch_media_streams_read_pauses_total") >= 1
    # What the applications got out is mostly what the kernel's socket buffers took
    # (a few MB each); unthrottled, one flooding stream alone got ~160,000 messages/s
    # out, and the other streams did not even start within 10 s.
    rate = flood.sent / (window_end - flood_began)
    assert rate < 60_000, f"the applications got {rate:.0f} messages/s out"
