"""Browser SIP phones over secure WebSocket (RFC 7118): JsSIP and SIP.js, unmodified
from npm (pinned in tests/interop/browser_sip/package.json, installed by `make test`),
in Debian's headless Chromium with a fake microphone playing 440 Hz.

Each phone registers over WSS with digest (a SIP credential list's user; the
certificate is a self-signed one made here, trusted through Chromium's
``--ignore-certificate-errors-spki-list``), calls ``sip:echo`` and hears its own
tone back through the aiortc leg callswitch answers with, puts the call on hold
and resumes it (re-INVITEs) and hears itself again, then is rung by
``<Dial><Sip>`` and by ``<Dial><Client>`` from a SIPp caller: the page hears SIPp's
1 kHz, SIPp hears 440 Hz.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import shutil
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.peers import require

from .chromium import CHROMIUM, FLAGS, require_chromium
from .conftest import sipp_failure
from .harness import LOOPBACK, CallswitchServer, free_port, make_tls_cert
from .rtp import RtpSink
from .test_outbound_calls import heard, tone_dir
from .test_voice_webhooks import rest_client
from .test_webrtc_chromium import tone_wav
from .webhook_app import WebhookApp, twiml

PAGE_HZ = 440.0
CALLER_HZ = 1000.0
PASSWORD = "Wss-Phone-Secret-1"
NUMBER = "+15005550177"
PACKAGES = Path(__file__).resolve().parent / "browser_sip"
MODULES = PACKAGES / "node_modules"
ARGS = [
    *FLAGS,
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
CONTENT_TYPES = {".html": "text/html", ".js": "text/javascript"}


def spki_hash(cert: Path) -> str:
    """What ``--ignore-certificate-errors-spki-list`` names a certificate by: the
    base64 SHA-256 of its SubjectPublicKeyInfo."""
    key = x509.load_pem_x509_certificate(cert.read_bytes()).public_key()
    der = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


@pytest.fixture(scope="module")
def jssip_bundle(tmp_path_factory) -> Path:
    """JsSIP is published as CommonJS only: esbuild (pinned beside it) makes the
    one-file browser build an application would ship."""
    esbuild = MODULES / ".bin" / "esbuild"
    require(
        (MODULES / "jssip").is_dir() and (MODULES / "sip.js").is_dir() and esbuild.exists(),
        f"npm packages missing: run `npm ci --prefix {PACKAGES}` (make test does)",
    )
    out = tmp_path_factory.mktemp("jssip") / "jssip.js"
    subprocess.run(
        [
            str(esbuild),
            str(MODULES / "jssip" / "lib" / "JsSIP.js"),
            "--bundle",
            "--format=iife",
            "--global-name=JsSIP",
            f"--outfile={out}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return out


@pytest.fixture
def server(tmp_path):
    """callswitch with SIP over WSS on a free port, behind a fresh self-signed certificate."""
    cert, key = make_tls_cert(tmp_path / "tls")
    wss_port = free_port()
    srv = CallswitchServer.start(
        tmp_path / "server",
        extra_args=(
            "--sip-wss-port",
            str(wss_port),
            "--http-tls-cert",
            str(cert),
            "--http-tls-key",
            str(key),
        ),
    )
    srv.wss_port = wss_port
    srv.spki = spki_hash(cert)
    srv.https_cert = cert  # the REST client trusts it
    try:
        yield srv
    finally:
        problems = srv.stop()
        if problems:
            pytest.fail("callswitch: " + "; ".join(problems) + f"\n{srv.tail(200)}", False)


class PageServer(ThreadingHTTPServer):
    """The test page on a loopback HTTP port (a secure context, as localhost is):
    this repository's page, the JsSIP bundle and SIP.js's modules, nothing else."""

    def __init__(self, bundle: Path) -> None:
        self.bundle = bundle
        super().__init__((LOOPBACK, 0), _PageHandler)
        self.url = f"http://{LOOPBACK}:{self.server_address[1]}"
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    def file_for(self, path: str) -> Path | None:
        if path == "jssip.js":
            return self.bundle
        file = (MODULES / path) if path.startswith("sip.js/lib/") else (PACKAGES / path)
        file = file.resolve()
        if not file.is_relative_to(PACKAGES) or not file.is_file():
            return None
        return file

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _PageHandler(BaseHTTPRequestHandler):
    server: PageServer

    def do_GET(self) -> None:
        file = self.server.file_for(self.path.split("?", 1)[0].lstrip("/"))
        if file is None:
            self.send_error(404)
            return
        body = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix, "text/plain"))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass


class Browser:
    """Chromium with a fake microphone, trusting the server's certificate alone."""

    def __init__(self, server, microphone: Path) -> None:
        self.server = server
        self.microphone = microphone
        self.console: list[str] = []

    async def __aenter__(self):
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        self.browser = await self._pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                *ARGS,
                f"--use-file-for-fake-audio-capture={self.microphone}",
                f"--ignore-certificate-errors-spki-list={self.server.spki}",
            ],
        )
        page = await (await self.browser.new_context()).new_page()
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        return page

    async def __aexit__(self, *exc) -> None:
        await self.browser.close()
        await self._pw.stop()

    def why(self) -> str:
        return "console:\n" + "\n".join(self.console[-40:]) + "\n" + self.server.tail(80)


async def _status(page, browser: Browser, wanted: str, timeout: float = 30.0) -> None:
    script = f"window.phone && window.phone.status.startsWith({wanted!r})"
    try:
        await page.wait_for_function(script, timeout=timeout * 1000)
    except Exception as exc:
        status = await page.evaluate("window.phone && window.phone.status")
        raise AssertionError(
            f"waited {timeout} s for {wanted!r}, the phone says {status!r} ({exc})\n"
            + browser.why()
        ) from None


async def _frequency(page, seconds: float = 2.0) -> tuple[float, float]:
    """The median of the page's own readings of what it receives."""
    readings = []
    for _ in range(int(seconds / 0.25)):
        readings.append(await page.evaluate("window.phone.analyse()"))
        await asyncio.sleep(0.25)
    readings = [r for r in readings if r]
    if not readings:
        return 0.0, -120.0
    return (
        float(np.median([r["frequency"] for r in readings])),
        float(np.median([r["level"] for r in readings])),
    )


@pytest.mark.parametrize("client", ["jssip", "sipjs"])
async def test_browser_phone_registers_over_wss_calls_echo_and_is_rung(
    client, server, sipp, jssip_bundle, tmp_path
):
    require_chromium()
    require(shutil.which("sipp") is not None, "sipp is not installed (Debian package sip-tester)")
    rest = rest_client(server)
    phones = rest.sip.credential_lists.create(friendly_name="browser phones")
    rest.sip.credential_lists(phones.sid).credentials.create(username="alice", password=PASSWORD)
    microphone = tone_wav(tmp_path / "mic.wav", PAGE_HZ, seconds=90.0)
    browser = Browser(server, microphone)
    options = {
        "url": f"wss://127.0.0.1:{server.wss_port}",
        "user": "alice",
        "password": PASSWORD,
        "domain": "127.0.0.1",
    }
    nouns = {
        "sip": f"<Sip>sip:alice@{server.sip_target}</Sip>",
        "client": "<Client>alice</Client>",  # a SIP user is a client of its account too
    }
    rung: dict[str, tuple[float, float, object, bool]] = {}
    pages = PageServer(jssip_bundle)
    with WebhookApp() as app, contextlib.closing(pages):
        dialled = {"noun": nouns["sip"]}  # what the number's TwiML dials, step by step
        app.routes["/voice"] = lambda r: twiml(f'<Dial timeout="20">{dialled["noun"]}</Dial>')
        rest.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))
        async with browser as page:
            await page.goto(f"{pages.url}/phone.html?client={client}")
            await _status(page, browser, "loaded")
            await page.evaluate("(options) => { window.phone.start(options); }", options)
            await _status(page, browser, "registered")
            [registered] = await asyncio.to_thread(server.wait_events, "sip.registered")
            assert registered["aor"] == "alice"

            # The phone calls the echo test and hears its own tone back.
            await page.evaluate(f"window.phone.call('sip:echo@{server.sip_target}')")
            await _status(page, browser, "in-call")
            await asyncio.sleep(1.0)
            echo_hz, echo_level = await _frequency(page)
            # Hold and resume: re-INVITEs answered from the call's own ICE and DTLS.
            await page.evaluate("window.phone.hold(true)")
            await _status(page, browser, "held", timeout=10)
            await page.evaluate("window.phone.hold(false)")
            await _status(page, browser, "resumed", timeout=10)
            await asyncio.sleep(1.0)
            resumed_hz, resumed_level = await _frequency(page)
            await page.evaluate("window.phone.hangup()")
            await _status(page, browser, "ended", timeout=10)

            # A SIP caller's <Dial> rings the phone on the connection it registered on.
            for name, noun in nouns.items():
                dialled["noun"] = noun
                await page.evaluate("window.phone.meter = null")
                with RtpSink() as sink:
                    caller = asyncio.ensure_future(
                        asyncio.to_thread(
                            sipp,
                            "uac_tone_wait_bye.xml",
                            service=NUMBER.lstrip("+"),
                            keys={"sink_port": sink.port},
                            cwd=tone_dir(tmp_path / f"tone-{name}", CALLER_HZ),
                            calls=1,
                            timeout=40,
                        )
                    )
                    await _status(page, browser, "in-call")
                    await asyncio.sleep(1.0)
                    hz, level = await _frequency(page)
                    await page.evaluate("window.phone.hangup()")
                    result = await caller
                    rung[name] = (hz, level, result, heard(sink, PAGE_HZ))
                await _status(page, browser, "ended", timeout=10)
            why = browser.why()
    assert abs(echo_hz - PAGE_HZ) < 15 and echo_level > -45, (
        f"echo: {echo_hz} Hz {echo_level} dB\n{why}"
    )
    assert abs(resumed_hz - PAGE_HZ) < 15 and resumed_level > -45, (
        f"after hold and resume: {resumed_hz} Hz {resumed_level} dB\n{why}"
    )
    for name, (hz, level, result, caller_heard) in rung.items():
        assert result.ok(1), sipp_failure(result, server, f"<Dial>{nouns[name]}: SIPp failed")
        assert abs(hz - CALLER_HZ) < 15 and level > -45, f"{name}: {hz} Hz {level} dB\n{why}"
        assert caller_heard, f"<Dial>{nouns[name]}: the caller did not hear the browser\n{why}"
    answered = [e for e in server.events("call.answered") if e.get("media") == "webrtc"]
    assert len(answered) == 3, answered  # the echo call and the two <Dial> children
