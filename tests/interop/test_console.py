"""The web console in headless Chromium (Debian's, driven by Playwright) during a
real SIPp call: a wrong token is refused, the right one shows the live call with
its codec and quality figures, the numbers and the call list. A screenshot of the
page in a call is kept under test-artifacts/console/."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from .audio import sine, ulaw_encode
from .chromium import CHROMIUM, FLAGS, require_chromium
from .conftest import require
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_voice_webhooks import credentials, rest_client
from .webhook_app import WebhookApp, twiml

ARTIFACTS = Path(os.environ.get("CALLSWITCH_TEST_ARTIFACTS", "test-artifacts")) / "console"
NUMBER = "+15005550070"


@pytest.fixture
def chromium():
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        try:
            yield browser
        finally:
            browser.close()


def test_console_signs_in_and_shows_a_live_call_with_its_quality(server, chromium, tmp_path):
    sipp = find_sipp()
    require(sipp is not None, "sipp is not installed (Debian package sip-tester)")
    sid, token = credentials(server)
    base = f"http://127.0.0.1:{server.http_port}"
    client = rest_client(server, sid, token)
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The page works under its own Content-Security-Policy: nothing of it is refused.
    page.on(
        "console",
        lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
    )

    page.goto(f"{base}/console")
    page.fill("input[name=sid]", sid)
    page.fill("input[name=token]", "0" * 32)
    page.click("button[type=submit]")
    page.wait_for_selector("#sign-in-error:not([hidden])", timeout=5000)
    assert "Wrong Account SID or auth token" in page.inner_text("#sign-in-error")
    assert page.is_hidden("#console")

    with WebhookApp() as app, RtpSink() as sink:
        app.routes["/voice"] = lambda r: twiml('<Say>Hello.</Say><Pause length="8"/><Hangup/>')
        voice_url = app.url("/voice")
        client.incoming_phone_numbers.create(
            phone_number=NUMBER, voice_url=app.url("/voice"), friendly_name="console test"
        )
        caller = SippBackground(
            "uac_tone_wait_bye.xml",
            server.sip_target,
            workdir=tmp_path / "caller",
            sipp=sipp,
            service=NUMBER.lstrip("+"),
            keys={"sink_port": sink.port},
            calls=1,
            timeout=30,
            trace_msg=True,
            files={"tone.ulaw": ulaw_encode(sine(1000.0, 1.0, amplitude=0.2))},
        )
        try:
            page.fill("input[name=token]", token)
            page.click("button[type=submit]")
            page.wait_for_selector("#console:not([hidden])", timeout=5000)
            # The live row: the call, its PCMU leg, packets counted and a MOS badge.
            page.wait_for_selector("#live-table tbody .mos", timeout=10_000)
            time.sleep(1.5)  # a few more updates: packets keep counting
            live = page.inner_text("#live-table tbody")
            call_sid = next(c.sid for c in client.calls.list(status="in-progress"))
            assert call_sid in live
            assert "PCMU" in live and "caller (sip)" in live and "inbound" in live
            mos = float(page.inner_text("#live-table tbody .mos"))
            assert 4.0 < mos <= 4.5  # loopback: no loss, no jitter to speak of
            # Selectors, not wait_for_function: the page's CSP forbids the eval it polls with.
            page.wait_for_selector("#numbers tbody:has-text('+15005550070')", timeout=10_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "console-live-call.png"), full_page=True)
            result = caller.wait(20)
        finally:
            caller.stop()
    assert result.ok(1), result.describe()
    # After the call: the live table empties and the call is listed as completed.
    page.wait_for_selector("#live-empty:not([hidden])", timeout=5000)
    page.wait_for_selector(  # the list refreshes every 5 s
        f"#calls tbody tr:has-text('{call_sid}'):has-text('completed')", timeout=12_000
    )
    # Choosing the call shows its log: no error, and the request that fetched its TwiML.
    page.click(f"#calls tbody button:has-text('{call_sid}')")
    page.wait_for_selector(f"#call-events tbody tr:has-text('{voice_url}')", timeout=5000)
    assert "200" in page.inner_text("#call-events tbody")
    assert page.is_visible("#call-log-empty")
    assert not errors, errors
    assert (ARTIFACTS / "console-live-call.png").stat().st_size > 10_000


def test_live_calls_resource_refuses_other_accounts(server):
    import urllib.error
    import urllib.request

    sid, token = credentials(server)
    other = "AC" + "0" * 32
    url = f"http://127.0.0.1:{server.http_port}/console/api/Accounts/{other}/LiveCalls.json"
    request = urllib.request.Request(url)
    request.add_header("Authorization", "Basic " + __import__("base64").b64encode(
        f"{sid}:{token}".encode()).decode())  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
