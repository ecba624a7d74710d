"""The official Twilio Voice JS SDK (npm ``@twilio/voice-sdk``, pinned in
tests/interop/npm), unmodified, in Debian's headless Chromium against callswitch
over HTTPS/WSS (``--http-tls-cert``): configured only through Device options
(``chunderw`` to our ``/signal``, ``publishEvents: false``, ``sounds`` from
``/signal/sounds/``).

- registered as ``alice``, it is rung by a SIPp call through ``<Dial><Client>``
  (with a ``<Parameter>`` it reads as a custom parameter), accepts, and each side
  hears the other's tone;
- it places a call whose custom parameters reach the application's webhook; its
  ``sendDigits`` arrive as RFC 4733 events at the SIPp callee; the signaling socket
  is dropped mid-call (a proxy aborts it) and the call goes on on the next socket;
  ``device.updateToken()`` (a second ``listen``) leaves the call and registration up;
- a second Device picks up a call ringing on the first with ``call.connectToken``;
- forged, expired and revoked tokens give the SDK's own ``AccessTokenInvalid``
  (20101) and ``AccessTokenExpired`` (20104) errors;
- Chromium's net log names no host but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import shutil
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant
from twilio.rest import Client

from tests.peers import require

from .chromium import CHROMIUM, FLAGS, require_chromium
from .conftest import sipp_failure
from .harness import CallswitchServer, free_port, make_tls_cert
from .rtp import RtpSink
from .test_outbound_calls import heard, start_carrier, tone_dir
from .test_voice_webhooks import rest_client
from .test_webrtc_chromium import tone_wav
from .webhook_app import WebhookApp, twiml

SDK_VERSION = "2.18.5"
SDK = Path(__file__).parent / "npm" / "node_modules" / "@twilio" / "voice-sdk"
TONE_HZ = 1000.0  # SIPp's
PAGE_HZ = 440.0  # the page's microphone
SOUNDS = [
    "incoming",
    "outgoing",
    "disconnect",
    *[f"dtmf{d}" for d in range(10)],
    "dtmfs",
    "dtmfh",
]
DTMF_EVENTS = "0123456789*#ABCD"
# One --disable-features wins over another: Playwright's own list (which keeps Chromium's
# startup requests to Google away) is repeated with ours.
DISABLED_FEATURES = [
    "WebRtcHideLocalIpsWithMdns",  # loopback ICE candidates, not mDNS names
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>SDK</title></head><body>
<script src="twilio.min.js"></script>
<script>
window.events = [];
const note = (...e) => window.events.push(e);
function watch(call) {
  window.call = call;
  for (const name of ["accept", "disconnect", "cancel", "reject", "ringing",
                      "reconnecting", "reconnected"])
    call.on(name, () => note("call:" + name));
  call.on("error", (e) => note("call:error", e.code));
}
window.start = (token, options) => {
  const device = new Twilio.Device(token, options);
  window.device = device;
  device.on("registered", () => note("registered"));
  device.on("error", (e) => note("error", e.code, e.message));
  device.on("incoming", (call) => {
    note("incoming", Object.fromEntries(call.customParameters), call.parameters);
    watch(call);
  });
  return device.register().then(() => "registered", (e) => "refused " + (e && e.code));
};
window.dial = async (params) => {
  watch(await window.device.connect({ params }));
};
window.pickUp = async (connectToken) => {
  watch(await window.device.connect({ connectToken }));
};
window.listen = () => {
  // What the far end sends, as the page hears it (the SDK plays the remote stream).
  const stream = window.call.getRemoteStream();
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 8192;
  context.createMediaStreamSource(stream).connect(analyser);
  window.analyse = () => {
    const bins = new Float32Array(analyser.frequencyBinCount);
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    return { frequency: (best * context.sampleRate) / analyser.fftSize, level: bins[best] };
  };
};
</script></body></html>
"""


@pytest.fixture
def server(tmp_path):
    """callswitch serving HTTPS/WSS on its HTTP port with a self-signed certificate."""
    cert, key = make_tls_cert(tmp_path / "https")
    srv = CallswitchServer.start(
        tmp_path / "callswitch",
        extra_args=("--http-tls-cert", str(cert), "--http-tls-key", str(key)),
    )
    srv.https_cert = cert
    yield srv
    problems = srv.stop()
    if problems:
        pytest.fail("callswitch: " + "; ".join(problems) + f"\n{srv.tail(200)}", pytrace=False)


def rest(server) -> Client:
    return rest_client(server)  # HTTPS, trusting the node's certificate


def sdk_token(server, identity: str, application_sid: str | None = None) -> str:
    """A token made by Twilio's own Python library with a key made through the REST API."""
    client = rest(server)
    key = client.new_keys.create(friendly_name="sdk")
    token = AccessToken(client.account_sid, key.sid, key.secret, identity=identity, ttl=600)
    token.add_grant(VoiceGrant(incoming_allow=True, outgoing_application_sid=application_sid))
    return token.to_jwt()


class SocketProxy:
    """A TCP relay between Chromium and callswitch's HTTPS port: ``drop()`` aborts the
    connections it carries (the browser sees its WebSocket fail, code 1006)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.connections = 0
        self._transports: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> SocketProxy:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self.drop()
        assert self._server is not None
        self._server.close()

    async def _relay(self, reader, writer) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._transports += [writer, up_writer]

        async def pipe(source, sink) -> None:
            with contextlib.suppress(Exception):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(Exception):
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def drop(self) -> None:
        for writer in self._transports:
            writer.transport.abort()
        self._transports.clear()


@pytest.fixture
def page_host(tmp_path):
    """The application's page and the SDK bundle, from a plain HTTP server on loopback."""
    require((SDK / "dist" / "twilio.min.js").exists(), f"npm ci in {SDK.parent.parent.parent}")
    package = json.loads((SDK / "package.json").read_text())
    assert package["version"] == SDK_VERSION, package["version"]
    root = tmp_path / "page"
    root.mkdir()
    (root / "index.html").write_text(PAGE)
    shutil.copy(SDK / "dist" / "twilio.min.js", root / "twilio.min.js")
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class Browser:
    """Chromium with a 440 Hz microphone, its net log kept for :meth:`hosts`."""

    def __init__(self, tmp_path: Path) -> None:
        self.wav = tone_wav(tmp_path / "mic.wav", PAGE_HZ, seconds=30.0)
        self.net_log = tmp_path / "netlog.json"
        self.console: list[str] = []

    async def __aenter__(self):
        from playwright.async_api import async_playwright

        self._pw = await async_playwright().start()
        self.browser = await self._pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                *FLAGS,
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={self.wav}",
                "--autoplay-policy=no-user-gesture-required",
                "--allow-loopback-in-peer-connection",
                "--disable-features=" + ",".join(DISABLED_FEATURES),
                "--disable-extensions",
                "--ignore-certificate-errors",  # our self-signed wss://127.0.0.1
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                f"--log-net-log={self.net_log}",
            ],
        )
        self.context = await self.browser.new_context(ignore_https_errors=True)
        self.page = await self.context.new_page()
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        return self

    async def __aexit__(self, *exc) -> None:
        await self.browser.close()
        await self._pw.stop()

    def traffic(self) -> tuple[set[str], set[str], list[str]]:
        """From the net log (read after the browser closed): the hosts the page's own
        requests named (the SDK's XHRs and WebSockets, the page and its script), the
        addresses TCP connected to, and every URL of any request (Chromium's own
        background requests included: they name Google hosts that --host-resolver-rules
        never resolves, so they leave nothing but a log line)."""
        log = json.loads(self.net_log.read_text(errors="replace"))
        kinds = {number: name for name, number in log["constants"]["logEventTypes"].items()}
        page_hosts, connected, urls = set(), set(), []
        for event in log["events"]:
            kind, params = kinds.get(event["type"], ""), event.get("params") or {}
            if kind == "URL_REQUEST_START_JOB" and "url" in params:
                urls.append(params["url"])
                if str(params.get("initiator", "")).startswith("http"):  # the page's origin
                    page_hosts.add(urlsplit(params["url"]).hostname or "")
            elif kind.startswith("TCP_CONNECT") and "address" in params:
                connected.add(params["address"].rsplit(":", 1)[0])
        return page_hosts, connected, urls

    async def events(self) -> list[list]:
        return await self.page.evaluate("window.events")

    async def wait_event(self, name: str, timeout: float = 20.0) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in await self.events():
                if event[0] == name:
                    return event
            await asyncio.sleep(0.1)
        raise AssertionError(f"no {name} within {timeout} s: {await self.events()}\n{self.console}")

    async def frequency(self, seconds: float = 2.0) -> float:
        readings = []
        for _ in range(int(seconds / 0.25)):
            readings.append(await self.page.evaluate("window.analyse()"))
            await asyncio.sleep(0.25)
        loud = sorted(r["frequency"] for r in readings if r["level"] > -70)
        return loud[len(loud) // 2] if loud else 0.0


def device_options(server, proxy: SocketProxy) -> dict:
    sounds = f"https://127.0.0.1:{server.http_port}/signal/sounds"
    return {
        "chunderw": f"127.0.0.1:{proxy.port}",
        "publishEvents": False,
        "sounds": {name: f"{sounds}/{name}.wav" for name in SOUNDS},
        "logLevel": "warn",
    }


def digits_at(sink: RtpSink) -> str:
    """The RFC 4733 events the SIPp callee received (one digit per event timestamp)."""
    seen, digits = set(), []
    for packet in sink.packets():
        if packet.payload_type == 101 and packet.payload and packet.timestamp not in seen:
            seen.add(packet.timestamp)
            if packet.payload[0] < len(DTMF_EVENTS):
                digits.append(DTMF_EVENTS[packet.payload[0]])
    return "".join(digits)


async def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(what)
        await asyncio.sleep(0.1)


def assert_loopback_only(browser: Browser, server) -> None:
    """Nothing the page or the SDK asked for left 127.0.0.1, no TCP connection did,
    no URL names Twilio, and the 15 sounds came from callswitch."""
    page_hosts, connected, urls = browser.traffic()
    assert page_hosts == {"127.0.0.1"}, f"the page asked for {sorted(page_hosts)}"
    assert connected == {"127.0.0.1"}, f"Chromium connected to {sorted(connected)}"
    assert not [url for url in urls if "twilio" in (urlsplit(url).hostname or "")], urls
    for name in SOUNDS:
        assert f"https://127.0.0.1:{server.http_port}/signal/sounds/{name}.wav" in urls, name


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


async def test_the_sdk_is_rung_through_dial_client_and_hears_and_is_heard(
    server, sipp, rtp_sink, app, tmp_path, page_host
):
    require_chromium()
    require(shutil.which("sipp") is not None, "sipp is not installed (Debian package sip-tester)")
    client = rest(server)
    app.routes["/voice"] = lambda r: twiml(
        "<Dial><Client><Identity>alice</Identity>"
        '<Parameter name="team" value="blue"/><Parameter name="note" value="hi there"/>'
        "</Client></Dial>"
    )
    number = "+15005550181"
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
    token = sdk_token(server, "alice")
    async with SocketProxy(server.http_port) as proxy, Browser(tmp_path) as browser:
        await browser.page.goto(page_host)
        started = await browser.page.evaluate(
            "([t, o]) => window.start(t, o)", [token, device_options(server, proxy)]
        )
        assert started == "registered", (started, await browser.events(), browser.console)
        assert await browser.page.evaluate("window.device.identity") == "alice"
        caller = asyncio.ensure_future(
            asyncio.to_thread(
                sipp,
                "uac_tone_wait_bye.xml",
                service=number.lstrip("+"),
                keys={"sink_port": rtp_sink.port},
                cwd=tone_dir(tmp_path / "tone", TONE_HZ),
                calls=1,
                timeout=60,
            )
        )
        _, custom, parameters = await browser.wait_event("incoming", 30)
        await browser.page.evaluate("window.call.accept()")
        await browser.wait_event("call:accept")
        await browser.page.evaluate("window.listen()")
        await asyncio.sleep(1.5)
        frequency = await browser.frequency()
        await wait_until(lambda: heard(rtp_sink, PAGE_HZ), 10, "SIPp did not hear the page")
        await browser.page.evaluate("window.call.disconnect()")
        result = await caller
        events = await browser.events()
    assert result.ok(1), sipp_failure(result, server, "the SIPp call did not end cleanly")
    assert custom == {"team": "blue", "note": "hi there"}
    assert parameters["From"], parameters
    assert parameters["To"] == "client:alice" and parameters["CallSid"].startswith("CA")
    assert abs(frequency - TONE_HZ) < 20, (frequency, events)
    assert ["call:disconnect"] in events
    assert_loopback_only(browser, server)


async def test_a_ringing_call_is_picked_up_on_another_device_with_its_connect_token(
    server, sipp, rtp_sink, app, tmp_path, page_host
):
    """``call.connectToken`` from the Device that rings, ``device.connect({connectToken})``
    on another one: that one gets the call (and SIPp's tone), the first gets ``cancel``."""
    require_chromium()
    require(shutil.which("sipp") is not None, "sipp is not installed (Debian package sip-tester)")
    client = rest(server)
    app.routes["/voice"] = lambda r: twiml("<Dial><Client>alice</Client></Dial>")
    number = "+15005550182"
    client.incoming_phone_numbers.create(phone_number=number, voice_url=app.url("/voice"))
    async with SocketProxy(server.http_port) as proxy, Browser(tmp_path) as browser:
        rung, other = browser.page, await browser.context.new_page()
        for page, identity in ((rung, "alice"), (other, "alice-desk")):
            await page.goto(page_host)
            started = await page.evaluate(
                "([t, o]) => window.start(t, o)",
                [sdk_token(server, identity), device_options(server, proxy)],
            )
            assert started == "registered", started
        caller = asyncio.ensure_future(
            asyncio.to_thread(
                sipp,
                "uac_tone_wait_bye.xml",
                service=number.lstrip("+"),
                keys={"sink_port": rtp_sink.port},
                cwd=tone_dir(tmp_path / "tone", TONE_HZ),
                calls=1,
                timeout=60,
            )
        )
        await browser.wait_event("incoming", 30)
        connect_token = await rung.evaluate("window.call.connectToken")
        assert connect_token, "the ringing call has no connectToken"
        await other.evaluate("(t) => window.pickUp(t)", connect_token)
        await browser.wait_event("call:cancel")  # on the Device that rang
        browser.page = other
        await browser.wait_event("call:accept")
        await other.evaluate("window.listen()")
        await asyncio.sleep(1.5)
        frequency = await browser.frequency()
        await wait_until(lambda: heard(rtp_sink, PAGE_HZ), 10, "SIPp did not hear the page")
        await other.evaluate("window.call.disconnect()")
        result = await caller
        browser.page = rung
    assert result.ok(1), sipp_failure(result, server, "the SIPp call did not end cleanly")
    assert abs(frequency - TONE_HZ) < 20, frequency
    assert_loopback_only(browser, server)


async def test_the_sdk_calls_out_with_params_sends_digits_and_survives_a_dropped_socket(
    server, app, tmp_path, page_host
):
    require_chromium()
    uas_port = free_port()
    client = rest(server)
    app.routes["/voice"] = lambda r: twiml(f"<Dial><Sip>sip:desk@127.0.0.1:{uas_port}</Sip></Dial>")
    application = client.applications.create(friendly_name="sdk", voice_url=app.url("/voice"))
    token = sdk_token(server, "alice", application.sid)
    with RtpSink() as sink:
        uas = start_carrier(tmp_path / "uas", uas_port, sink.port, "uas_answer_keys_wait_bye.xml")
        async with SocketProxy(server.http_port) as proxy, Browser(tmp_path) as browser:
            await browser.page.goto(page_host)
            assert (
                await browser.page.evaluate(
                    "([t, o]) => window.start(t, o)", [token, device_options(server, proxy)]
                )
                == "registered"
            )
            await browser.page.evaluate(
                "(p) => window.dial(p)", {"To": "desk", "team": "blue", "odd key": "a&b=c"}
            )
            await browser.wait_event("call:accept")
            await wait_until(lambda: heard(sink, PAGE_HZ), 15, "the callee did not hear the page")
            await browser.page.evaluate("window.call.sendDigits('12#')")
            await wait_until(lambda: digits_at(sink) == "12#", 10, f"digits: {digits_at(sink)!r}")
            proxy.drop()  # the signaling socket fails mid-call
            await browser.wait_event("call:reconnecting")
            await browser.wait_event("call:reconnected", 30)
            assert await browser.page.evaluate("window.call.status()") == "open"
            await browser.page.evaluate("window.call.sendDigits('9')")
            await wait_until(lambda: digits_at(sink) == "12#9", 10, f"digits: {digits_at(sink)!r}")
            # A fresh token on the same socket (a second listen): the call goes on.
            fresh = sdk_token(server, "alice", application.sid)
            await browser.page.evaluate("(t) => window.device.updateToken(t)", fresh)
            await browser.page.evaluate("window.call.sendDigits('0')")
            await wait_until(lambda: digits_at(sink) == "12#90", 10, f"digits: {digits_at(sink)!r}")
            assert await browser.page.evaluate("window.device.state") == "registered"
            await browser.page.evaluate("window.call.disconnect()")
            result = await asyncio.to_thread(uas.wait, 20)
            events = await browser.events()
    assert result.ok(1), f"the callee's call failed\n{result.describe()}\n{server.tail()}"
    [webhook] = app.wait_for("/voice", count=1)
    assert webhook.field("From") == "client:alice" and webhook.field("To") == "desk"
    assert webhook.field("team") == "blue" and webhook.field("odd key") == "a&b=c"
    assert webhook.field("ApplicationSid") == application.sid
    assert ["call:disconnect"] in events and ["call:reconnecting"] in events, events
    # The SDK reports the aborted socket itself (31005, its WebSocket closed with 1006);
    # nothing after the call reconnected (the updated token included) is an error.
    errors = [event for event in events if "error" in event[0]]
    assert errors == [["error", 31005, errors[0][2]]] if errors else True, events
    after = events[events.index(["call:reconnected"]) :]
    assert not [event for event in after if "error" in event[0]], events
    assert_loopback_only(browser, server)


async def test_refused_tokens_are_the_sdks_own_errors(server, tmp_path, page_host):
    """Forged (31204 on the wire: AccessTokenInvalid 20101), expired (31205:
    AccessTokenExpired 20104), revoked by deleting its key (20101); each Device stops
    after the server's close instead of reconnecting."""
    require_chromium()
    client = rest(server)
    token = sdk_token(server, "alice")
    head, claims, signature = token.split(".")
    forged = f"{head}.{claims}.{signature[::-1]}"
    key = client.new_keys.create(friendly_name="short")
    short = AccessToken(client.account_sid, key.sid, key.secret, identity="alice", ttl=1)
    short.add_grant(VoiceGrant(incoming_allow=True))
    expired = short.to_jwt()
    doomed = client.new_keys.create(friendly_name="revoked")
    revoked = AccessToken(client.account_sid, doomed.sid, doomed.secret, identity="alice")
    revoked.add_grant(VoiceGrant(incoming_allow=True))
    revoked_jwt = revoked.to_jwt()
    client.keys(doomed.sid).delete()
    await asyncio.sleep(2.1)  # the short token is past its exp
    outcomes = []
    async with SocketProxy(server.http_port) as proxy, Browser(tmp_path) as browser:
        await browser.page.goto(page_host)
        for jwt in (forged, expired, revoked_jwt):
            await browser.page.evaluate("window.events = []")
            started = await browser.page.evaluate(
                "([t, o]) => window.start(t, o)", [jwt, device_options(server, proxy)]
            )
            error = await browser.wait_event("error")
            await browser.page.evaluate("window.device.destroy()")
            outcomes.append((started.startswith("refused"), error[1]))
        await asyncio.sleep(1.0)  # no reconnect loop after the server's close
        connections = proxy.connections
    assert outcomes == [(True, 20101), (True, 20104), (True, 20101)], outcomes
    assert connections == 3  # one socket per Device: none retried
    assert_loopback_only(browser, server)
