"""DTMF between Debian's headless Chromium on /phone and SIP, as RFC 4733 both ways.

The page's digits are keyed with the browser's own ``RTCDTMFSender`` (which works
only when callswitch negotiated telephone-event) and must reach a SIPp caller as
telephone-event packets naming the digits keyed. Digits toward the browser (the
SIPp caller's, bridged by ``<Dial><Client>``; ``<Play digits>`` on the page's own
call) must be heard by the browser: Chromium plays received telephone-events out
as DTMF tones, the page records what it plays, and the digits are found in that
audio by the Goertzel detector.
"""

from __future__ import annotations

import asyncio
import shutil
import struct

import numpy as np
import pytest

from media.dtmf import GoertzelDetector
from media.resample import resample
from tests.peers import require

from . import test_webrtc_chromium
from .conftest import sipp_failure
from .test_voice_webhooks import rest_client
from .test_webrtc_chromium import _status_starts
from .webhook_app import WebhookApp, twiml
from .webrtc_client import access_token

KEYS = "0123456789*#ABCD"
SIPP_KEYS = "15#"  # uac_dtmf_keys_wait_bye.xml plays these
PAGE_KEYS = "7*9#"
SIPP_PAUSE_MS = 3000  # after the page answered: its ICE and DTLS, on a loaded machine too

# Records what the page plays from the far end (the remote stream, as Chromium
# decodes it: audio and the tones of received telephone-events), from the moment
# the call has a remote stream: installed before the call starts.
START_RECORDING = """() => {
  window.received = [];
  const context = new AudioContext({ sampleRate: 48000 });
  const watch = setInterval(() => {
    const call = window.phone.call;
    if (!call || !call._audio || !call._audio.srcObject) return;
    clearInterval(watch);
    context.resume();
    const source = context.createMediaStreamSource(call._audio.srcObject);
    const recorder = context.createScriptProcessor(4096, 1, 1);
    recorder.onaudioprocess = (e) => {
      window.received.push(Array.from(e.inputBuffer.getChannelData(0)));
    };
    source.connect(recorder);
    recorder.connect(context.destination);
    window.recorder = recorder;
  }, 20);
  return context.sampleRate;
}"""
TAKE_RECORDING = "() => { const r = window.received.flat(); window.received = []; return r; }"
# The page's RTCDTMFSender can send: telephone-event negotiated and the transport up.
CAN_INSERT_DTMF = """() => {
  const pc = window.phone.call && window.phone.call._pc;
  const sender = pc && pc.getSenders().find((s) => s.track && s.track.kind === "audio");
  return !!(sender && sender.dtmf && sender.dtmf.canInsertDTMF);
}"""
# Keys digits with the browser's RTCDTMFSender; resolves once the last tone ended.
INSERT_DTMF = """(digits) => new Promise((resolve) => {
  const senders = window.phone.call._pc.getSenders();
  const sender = senders.find((s) => s.track && s.track.kind === "audio");
  sender.dtmf.ontonechange = (e) => { if (e.tone === "") resolve(true); };
  sender.dtmf.insertDTMF(digits, 100, 100);
})"""


browser_page = test_webrtc_chromium.browser_page  # Chromium on a 440 Hz microphone


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


class PageEar:
    """The digits in what the page plays, found in the audio it recorded."""

    def __init__(self, page, rate: int) -> None:
        self.page = page
        self.rate = rate
        self.detector = GoertzelDetector()
        self.digits = ""
        self.level = -120.0

    async def listen(self) -> str:
        samples = np.asarray(await self.page.evaluate(TAKE_RECORDING), dtype=np.float64)
        pcm = resample(np.clip(samples * 32767, -32768, 32767).astype(np.int16), self.rate, 8000)
        if len(pcm):
            rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
            self.level = max(self.level, 20 * np.log10(max(rms, 1e-3) / 32768))
        self.digits += self.detector.feed(pcm) or ""
        return self.digits

    async def until(self, digits: str, timeout: float) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(await self.listen()) < len(digits) and loop.time() < deadline:
            await asyncio.sleep(0.25)
        return self.digits


def telephone_events(packets, payload_type: int) -> list[tuple[str, list]]:
    """(digit, its packets) per event, in order: packets grouped by RTP timestamp."""
    events: dict[int, list] = {}
    for packet in packets:
        if packet.payload_type == payload_type:
            events.setdefault(packet.timestamp, []).append(packet)
    found = []
    for group in events.values():
        codes = {group_packet.payload[0] for group_packet in group}
        assert len(codes) == 1, f"one event, several keys: {codes}"
        found.append((KEYS[codes.pop()], group))
    return found


@pytest.mark.usefixtures("raw_sockets")
async def test_digits_cross_between_a_sip_caller_and_the_phone_page(
    server, sipp, rtp_sink, app, browser_page
):
    require(shutil.which("sipp") is not None, "sipp is not installed (Debian package sip-tester)")
    client = rest_client(server)
    # answerOnBridge: SIPp's call is answered (and its pause starts) once the page answers.
    app.routes["/voice"] = lambda r: twiml(
        '<Dial answerOnBridge="true"><Client>alice</Client></Dial>'
    )
    number = "+15005550182"
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
    token = access_token(server, "alice")
    async with browser_page as page:
        await page.goto(f"http://127.0.0.1:{server.http_port}/phone#token={token}")
        await _status_starts(page, "Ready", browser_page, server)
        caller = asyncio.ensure_future(
            asyncio.to_thread(
                sipp,
                "uac_dtmf_keys_wait_bye.xml",
                service=number.lstrip("+"),
                keys={"sink_port": rtp_sink.port},
                pause_ms=SIPP_PAUSE_MS,
                calls=1,
                timeout=60,
            )
        )
        ear = PageEar(page, int(await page.evaluate(START_RECORDING)))
        await page.wait_for_selector("#answer:not(.hidden)", timeout=30000)
        await page.click("#answer")
        await _status_starts(page, "In call", browser_page, server)
        await page.wait_for_function(CAN_INSERT_DTMF, timeout=30000)
        await page.evaluate(INSERT_DTMF, PAGE_KEYS)
        heard = await ear.until(SIPP_KEYS, SIPP_PAUSE_MS / 1000 + 20)
        await asyncio.sleep(1.0)  # SIPp's last pause, then it waits for BYE
        await page.click("#hangup")
        result = await caller
        console = list(browser_page.console)
    assert result.ok(1), sipp_failure(result, server, "the SIPp call did not end cleanly")
    # The page's RTCDTMFSender keys reached SIPp as telephone-events (its offer's 101).
    events = telephone_events(rtp_sink.packets(), 101)
    assert "".join(digit for digit, _ in events) == PAGE_KEYS, (events, server.tail())
    for digit, packets in events:
        assert packets[0].marker, digit
        ends = [p for p in packets if p.payload[1] & 0x80]
        assert len(ends) >= 2, f"{digit}: the end of the event is not repeated"
        duration = struct.unpack("!H", ends[0].payload[2:4])[0]
        assert 400 <= duration <= 2400, f"{digit}: {duration} samples"  # 100 ms and more
    # SIPp's keys, bridged to the browser, were played by it as DTMF tones.
    assert heard == SIPP_KEYS, (heard, ear.level, console, server.tail())


async def test_play_digits_reach_the_page_and_its_keys_reach_gather(server, app, browser_page):
    client = rest_client(server)
    app.routes["/voice"] = lambda r: twiml(
        '<Play digits="2w48"/><Gather input="dtmf" numDigits="2" timeout="40" action="/keys"/>'
    )
    app.routes["/keys"] = lambda r: twiml("<Hangup/>")
    application = client.applications.create(friendly_name="keys", voice_url=app.url("/voice"))
    token = access_token(server, "alice", application_sid=application.sid)
    async with browser_page as page:
        await page.goto(f"http://127.0.0.1:{server.http_port}/phone#token={token}")
        await _status_starts(page, "Ready", browser_page, server)
        ear = PageEar(page, int(await page.evaluate(START_RECORDING)))
        await page.fill("#to", "keys")
        await page.click("#call")
        await _status_starts(page, "In call", browser_page, server)
        heard = await ear.until("248", 20)
        await page.wait_for_function(CAN_INSERT_DTMF, timeout=30000)
        await page.evaluate(INSERT_DTMF, "36")
        await _status_starts(page, "Call ended", browser_page, server, timeout=30)
        console = list(browser_page.console)
    assert heard == "248", (heard, ear.level, console, server.tail())
    keys = await asyncio.to_thread(app.wait_for, "/keys", 1, 10)
    assert keys[0].field("Digits") == "36"


async def test_a_rest_calls_send_digits_reach_the_page(server, browser_page):
    client = rest_client(server)
    token = access_token(server, "alice")
    async with browser_page as page:
        await page.goto(f"http://127.0.0.1:{server.http_port}/phone#token={token}")
        await _status_starts(page, "Ready", browser_page, server)
        ear = PageEar(page, int(await page.evaluate(START_RECORDING)))
        call = await asyncio.to_thread(
            client.calls.create,
            to="client:alice",
            from_="+15005550006",
            send_digits="9w0",
            twiml="<Response><Pause length='20'/></Response>",
        )
        await page.wait_for_selector("#answer:not(.hidden)", timeout=30000)
        await page.click("#answer")
        heard = await ear.until("90", 25)
        await page.click("#hangup")
        console = list(browser_page.console)
    assert heard == "90", (heard, ear.level, call.sid, console, server.tail())
