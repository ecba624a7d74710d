"""``<Play>`` of a tiny file that decodes to hours of audio, as a tenant's URL can
serve it: each fetch is decoded to ten minutes at most (``play.too_long``), and the
decoded audio the node keeps stays within ``--audio-cache-mb``, so RSS stays
bounded (it used to cost ~95 MB per URL, cached 64 deep)."""

from __future__ import annotations

import io
import itertools
import time

import av
import numpy as np
import pytest

from tests.interop.test_metrics import scrape, value
from tests.interop.test_voice_webhooks import rest_client
from tests.interop.webhook_app import WebhookApp, twiml

from .node import rss_kb
from .phone import RawCall

pytestmark = pytest.mark.solo  # load-sensitive: run alone, after the parallel run

NUMBER = "+15005550071"
CALLS = 4
CACHE_MB = 16


def silent_flac(seconds: float, rate: int = 8000) -> bytes:
    """``seconds`` of digital silence as FLAC: a few hundred KB for an hour."""
    out = io.BytesIO()
    with av.open(out, "w", format="flac") as box:
        stream = box.add_stream("flac", rate=rate, layout="mono")
        stream.format = "s16"
        chunk = np.zeros((1, rate * 10), dtype=np.int16)
        for index in range(int(seconds // 10)):
            frame = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = index * chunk.shape[1]
            for packet in stream.encode(frame):
                box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return out.getvalue()


@pytest.mark.callswitch(extra_args=("--audio-cache-mb", str(CACHE_MB)))
def test_play_of_an_hour_of_silence_is_capped_and_the_cache_bounded(server, rtp_sink):
    flac = silent_flac(3600)
    assert len(flac) < 4 * 1024 * 1024
    counter = itertools.count()
    calls: list[RawCall] = []
    with WebhookApp() as app:
        app.routes["/long.flac"] = lambda r: (200, "audio/flac", flac)
        app.routes["/voice"] = lambda r: twiml(
            f"<Play>{app.url('/long.flac')}?n={next(counter)}</Play>"
        )
        rest_client(server).incoming_phone_numbers.create(
            phone_number=NUMBER, voice_url=app.url("/voice")
        )
        before = 0.0

        def too_long(count: int) -> dict:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                samples = scrape(server)
                if value(samples, "callswitch_refusals_total", reason="play.too_long") >= count:
                    break
                time.sleep(0.2)
            return samples

        try:
            for index in range(CALLS + 1):  # each call plays a URL of its own: no cache hits
                call = RawCall(server.sip_addr, NUMBER.lstrip("+"), ("127.0.0.1", rtp_sink.port))
                calls.append(call)
                response = call.invite()
                assert response is not None and response.status == 200, server.tail()
                call.ack()
                if index == 0:  # the first call loads FFmpeg and the TwiML machinery
                    too_long(1)
                    before = rss_kb(server.pid) / 1024
            samples = too_long(CALLS + 1)
            assert len(app.to("/long.flac")) == CALLS + 1
            assert value(samples, "callswitch_refusals_total", reason="play.too_long") == CALLS + 1
            assert rtp_sink.wait_for(CALLS * 25, 10), "the calls play nothing"
            grown = rss_kb(server.pid) / 1024 - before
            cached = value(samples, "callswitch_audio_cache_bytes")
        finally:
            for call in calls:
                call.bye()
                call.close()
    # Ten minutes at 8 kHz is 9.6 MB of samples (4.8 MB more as PCMU frames) per call
    # playing; uncapped, each of the four calls after the first would cost ~95 MB.
    assert cached <= CACHE_MB * 1024 * 1024
    assert value(samples, "callswitch_audio_cache_evictions_total") >= 1
    assert grown < 120, f"RSS grew by {grown:.0f} MB"
    [refusal] = server.events("security.refused")[:1]
    assert refusal["reason"] == "play.too_long" and refusal["source_ip"] == "127.0.0.1"
