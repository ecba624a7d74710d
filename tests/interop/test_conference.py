"""A three-party `<Conference>`: each SIPp caller streams its own tone and must
hear the other two and not itself; a muted party is heard by nobody. The
Conferences and Participants resources show the room, and ending it through
the API hangs everybody up."""

from __future__ import annotations

import time

import numpy as np
from twilio.rest import Client

from .audio import sine, ulaw_decode, ulaw_encode
from .conftest import require
from .media_checks import PCMU
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550040"
MUTED_NUMBER = "+15005550041"
TONES = (440.0, 1000.0, 1700.0)  # caller 3 joins muted


def band_level(audio: np.ndarray, hz: float) -> float:
    """The amplitude of the `hz` component (0..32768 scale) over the whole window."""
    x = audio.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)))) / (len(x) / 4)
    freqs = np.fft.rfftfreq(len(x), 1 / 8000)
    return float(spectrum[np.abs(freqs - hz) <= 15].max())


def test_three_party_conference(server, tmp_path):
    sipp = find_sipp()
    require(sipp is not None, "sipp is not installed (Debian package sip-tester)")
    sid, token = credentials(server)
    client = Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))
    with WebhookApp() as app:
        app.routes["/room"] = lambda r: twiml(
            '<Dial><Conference beep="false">room</Conference></Dial>'
        )
        app.routes["/muted"] = lambda r: twiml(
            '<Dial><Conference beep="false" muted="true">room</Conference></Dial>'
        )
        client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/room"))
        client.incoming_phone_numbers.create(phone_number=MUTED_NUMBER, voice_url=app.url("/muted"))
        sinks = [RtpSink() for _ in TONES]
        callers = []
        try:
            for index, (hz, sink) in enumerate(zip(TONES, sinks, strict=True)):
                sink.__enter__()
                caller = SippBackground(
                    "uac_tone_wait_bye.xml",
                    server.sip_target,
                    workdir=tmp_path / f"caller{index}",
                    sipp=sipp,
                    service=(MUTED_NUMBER if index == 2 else NUMBER).lstrip("+"),
                    keys={"sink_port": sink.port},
                    calls=1,
                    timeout=30,
                    trace_msg=True,
                    files={"tone.ulaw": ulaw_encode(sine(hz, 1.0, amplitude=0.2))},
                )
                callers.append(caller)
            deadline = time.monotonic() + 10
            while True:
                rooms = client.conferences.list(status="in-progress")
                participants = rooms[0].participants.list() if rooms else []
                if len(participants) == 3:
                    break
                assert time.monotonic() < deadline, f"{len(participants)} joined\n{server.tail()}"
                time.sleep(0.2)
            [room] = rooms
            assert room.friendly_name == "room"
            assert sorted(p.muted for p in participants) == [False, False, True]
            time.sleep(3)  # all three talk at once
            client.conferences(room.sid).update(status="completed")
            results = [caller.wait(15) for caller in callers]
            for result in results:
                assert result.ok(1), f"{result.describe()}\n{server.tail()}"
            assert client.conferences(room.sid).fetch().status == "completed"
        finally:
            for caller in callers:
                caller.kill()
            for sink in sinks:
                sink.__exit__(None, None, None)

    heard = []
    for sink in sinks:
        packets = [p for p in sink.packets() if p.payload_type == PCMU]
        audio = ulaw_decode(b"".join(p.payload for p in packets))
        assert len(audio) >= 2 * 8000, len(audio)
        window = audio[-2 * 8000 - 4000 : -4000] if len(audio) > 3 * 8000 else audio[-2 * 8000 :]
        heard.append({hz: band_level(window, hz) for hz in TONES})
    loud, quiet = 3000.0, 300.0  # each tone is sent at amplitude 0.2 * 32767 ≈ 6500
    first, second, muted = heard
    assert first[1000.0] > loud and first[440.0] < quiet and first[1700.0] < quiet, first
    assert second[440.0] > loud and second[1000.0] < quiet and second[1700.0] < quiet, second
    assert muted[440.0] > loud and muted[1000.0] > loud and muted[1700.0] < quiet, muted
