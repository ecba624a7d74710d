"""Headless Chromium (Debian's, driven by Playwright) on the softphone page /phone:
it is rung by ``<Dial><Client>alice</Client>`` from a SIPp caller, answered with a
click, and each side hears the other's tone; a call from the page reaches a SIPp
UAS. A screenshot of the page in a call is kept under test-artifacts/webrtc/."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.peers import require

from .audio import level_dbfs, ulaw_decode
from .chromium import CHROMIUM, FLAGS, require_chromium
from .conftest import sipp_failure
from .harness import free_port
from .rtp import RtpSink
from .test_outbound_calls import CARRIER_TONE_HZ, heard, start_carrier, tone_dir
from .test_voice_webhooks import rest_client
from .webhook_app import WebhookApp, twiml
from .webrtc_client import access_token

TONE_HZ = 1000.0
PAGE_HZ = 440.0
ARTIFACTS = Path(os.environ.get("CALLSWITCH_TEST_ARTIFACTS", "test-artifacts")) / "webrtc"
ARGS = [
    *FLAGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    # ICE over loopback only: Chromium skips loopback and hides host addresses
    # behind mDNS names unless told otherwise.
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]


# The addresses of the candidate pair ICE selected, from the page's RTCPeerConnection.
SELECTED_PAIR = """async () => {
  const stats = await window.phone.call._pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
  });
  if (!pair) return null;
  return [stats.get(pair.localCandidateId).address, stats.get(pair.remoteCandidateId).address];
}"""


def tone_wav(path: Path, hz: float, seconds: float = 10.0, rate: int = 48000) -> Path:
    """The microphone of the fake capture device: a steady tone."""
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return path


@pytest.fixture
def browser_page(tmp_path):
    """A Playwright page in Debian's Chromium whose microphone plays 440 Hz."""
    require_chromium()
    from playwright.async_api import async_playwright

    wav = tone_wav(tmp_path / "mic.wav", PAGE_HZ)

    class Launcher:
        async def __aenter__(self):
            self._pw = await async_playwright().start()
            self.browser = await self._pw.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=[*ARGS, f"--use-file-for-fake-audio-capture={wav}"],
            )
            context = await self.browser.new_context()
            page = await context.new_page()
            self.console: list[str] = []
            page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
            return page

        async def __aexit__(self, *exc):
            await self.browser.close()
            await self._pw.stop()

    return Launcher()


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


async def _status_starts(page, text: str, launcher, server, timeout: float = 30.0) -> None:
    """Wait for the page's status line; on time-out say what it showed and why."""
    script = f"document.getElementById('status').textContent.startsWith({text!r})"
    try:
        await page.wait_for_function(script, timeout=timeout * 1000)
    except Exception as exc:
        status = await page.text_content("#status")
        raise AssertionError(
            f"waited {timeout} s for {text!r}, the page says {status!r} ({exc})\n"
            f"console: {launcher.console}\n{server.tail()}"
        ) from None


async def _frequency(page, seconds: float = 2.0) -> tuple[float, float]:
    """The page's own analysis of what it receives: the median of a few readings."""
    readings = []
    for _ in range(int(seconds / 0.25)):
        readings.append(await page.evaluate("window.phone.call && window.phone.call.analyse()"))
        await asyncio.sleep(0.25)
    readings = [r for r in readings if r]
    if not readings:
        return 0.0, -120.0
    return (
        float(np.median([r["frequency"] for r in readings])),
        float(np.median([r["level"] for r in readings])),
    )


async def test_chromium_answers_a_sip_call_on_the_phone_page(
    server, sipp, rtp_sink, app, tmp_path, browser_page
):
    require(shutil.which("sipp") is not None, "sipp is not installed (Debian package sip-tester)")
    client = rest_client(server)
    app.routes["/voice"] = lambda r: twiml("<Dial><Client>alice</Client></Dial>")
    number = "+15005550181"
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
    token = access_token(server, "alice")
    async with browser_page as page:
        await page.goto(f"http://127.0.0.1:{server.http_port}/phone#token={token}")
        await _status_starts(page, "Ready", browser_page, server)
        caller = asyncio.ensure_future(
            asyncio.to_thread(
                sipp,
                "uac_tone_wait_bye.xml",
                service=number.lstrip("+"),
                keys={"sink_port": rtp_sink.port},
                cwd=tone_dir(tmp_path / "tone", TONE_HZ),
                calls=1,
                timeout=40,
            )
        )
        await page.wait_for_selector("#answer:not(.hidden)", timeout=30000)
        assert "Incoming call" in await page.text_content("#status")
        await page.click("#answer")
        await _status_starts(page, "In call", browser_page, server)
        await asyncio.sleep(2)
        frequency, level = await _frequency(page)
        pair = await page.evaluate(SELECTED_PAIR)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "phone-in-call.png"))
        await page.click("#mute")
        assert await page.text_content("#mute") == "Unmute"
        muted_at = time.monotonic()
        await asyncio.sleep(1.5)
        await page.click("#hangup")
        result = await caller
        await _status_starts(page, "Call ended", browser_page, server, timeout=10)
        console = list(browser_page.console)
    assert result.ok(1), sipp_failure(result, server, "the SIPp call did not end cleanly")
    assert abs(frequency - TONE_HZ) < 15 and level > -40, (frequency, level, console)
    assert heard(rtp_sink, PAGE_HZ), f"SIPp did not hear the page\n{console}\n{server.tail()}"
    assert (ARTIFACTS / "phone-in-call.png").stat().st_size > 1000
    assert pair == ["127.0.0.1", "127.0.0.1"], f"ICE used {pair}, not loopback"
    after_mute = b"".join(
        p.payload for p in rtp_sink.packets() if p.arrival > muted_at + 0.3 and p.payload_type == 0
    )
    if after_mute:  # nothing at all, or silence
        assert level_dbfs(ulaw_decode(after_mute)) < -50, "SIPp still hears the muted page"


async def test_chromium_calls_a_sip_phone_from_the_phone_page(server, app, tmp_path, browser_page):
    uas_port = free_port()
    client = rest_client(server)
    app.routes["/voice"] = lambda r: twiml(f"<Dial><Sip>sip:desk@127.0.0.1:{uas_port}</Sip></Dial>")
    application = client.applications.create(friendly_name="page", voice_url=app.url("/voice"))
    token = access_token(server, "alice", application_sid=application.sid)
    with RtpSink() as sink:
        uas = start_carrier(tmp_path / "uas", uas_port, sink.port, "uas_answer_tone_bye.xml")
        async with browser_page as page:
            await page.goto(f"http://127.0.0.1:{server.http_port}/phone")
            await page.fill("#token", token)
            await page.click("#login-button")
            await page.wait_for_selector("#phone:not(.hidden)", timeout=30000)
            await page.fill("#to", "desk")
            await page.click("#call")
            await _status_starts(page, "In call", browser_page, server)
            frequency, _ = await _frequency(page, 1.5)
            # The UAS hangs up after 3 s of talk.
            await _status_starts(page, "Call ended", browser_page, server)
            console = list(browser_page.console)
        result = await asyncio.to_thread(uas.wait, 20)
    assert result.ok(1), f"the UAS call failed\n{result.describe()}\n{server.tail()}"
    assert abs(frequency - CARRIER_TONE_HZ) < 15, (frequency, console)
    assert heard(sink, PAGE_HZ), f"the SIP phone did not hear the page\n{console}"
    webhook = app.wait_for("/voice", count=1)[0]
    assert webhook.field("From") == "client:alice" and webhook.field("To") == "desk"
