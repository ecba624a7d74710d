"""Trunks that register (docs/routing.md, "Registration"): the node keeps a binding
at the carrier and takes the calls the carrier sends to it.

* A stdlib carrier (a UDP socket in the test) challenges the REGISTER, checks the
  digest answer itself (RFC 2617 arithmetic, not callswitch's code), grants a
  binding, then sends an INVITE to the registered contact with the DID in ``To``:
  the number's TwiML runs (its ``To``/``Called`` is the DID), its tone reaches
  the carrier's RTP address; on SIGTERM the node removes its binding (Expires: 0).
* Kamailio as the carrier's registrar and proxy (``registrar``, ``usrloc``,
  ``auth`` with ``pv_www_authenticate``/``pv_auth_check`` against a password in
  the config): the node registers with digest, a SIPp caller calls one of our
  numbers through Kamailio, which finds the binding (``lookup("location")``) and
  relays the call; the TwiML plays a tone to the caller and records the caller's
  tone: both directions are measured. Over UDP and over TCP (RFC 5626 outbound).
* The console's Trunks card (headless Chromium) shows the registered trunk.
"""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
import time
import urllib.request
import uuid
import wave
from dataclasses import dataclass

import numpy as np
import pytest

from callswitch.cli import main

from .audio import dominant_frequency, level_dbfs, sine
from .chromium import CHROMIUM, FLAGS, require_chromium
from .conftest import require
from .harness import LOOPBACK, CallswitchServer, free_port
from .kamailio import Kamailio, find_kamailio
from .media_checks import PCMU, tone_report
from .sipp import run_sipp
from .test_outbound_calls import heard, tone_dir
from .test_voice_webhooks import credentials, rest_client, wav_bytes
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550190"
CALLER = "+15551230000"
USER, PASSWORD, REALM = "acct-7781", "s3cret-Pass", "carrier.test"
TONE_HZ = 1000.0


@dataclass
class Message:
    start: str
    headers: list[tuple[str, str]]
    body: bytes
    source: tuple[str, int] = ("", 0)
    raw: bytes = b""

    @property
    def method(self) -> str:
        return self.start.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        m = re.match(r"SIP/2\.0 (\d{3})", self.start)
        return int(m.group(1)) if m else None

    def get(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]


COMPACT = {
    "v": "Via",
    "f": "From",
    "t": "To",
    "i": "Call-ID",
    "m": "Contact",
    "l": "Content-Length",
}


def parse(data: bytes, source: tuple[str, int]) -> Message:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("utf-8", "replace").split("\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = COMPACT.get(name.strip(), name.strip())
        headers.append((name, value.strip()))
    return Message(lines[0], headers, body, source, data)


class Carrier:
    """A carrier's SIP entry point on a UDP socket: what the test says, when it says."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.port = self.sock.getsockname()[1]

    def receive(self, want, timeout: float = 10.0) -> Message:
        """The next message for which ``want(message)`` is true (others are dropped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data, source = self.sock.recvfrom(65536)
            except TimeoutError:
                break
            message = parse(data, source)
            if want(message):
                return message
        raise AssertionError(f"the carrier got nothing it waited for in {timeout} s")

    def send(self, text: str, to: tuple[str, int], body: bytes = b"") -> None:
        data = text.replace("\n", "\r\n").encode() + f"Content-Length: {len(body)}\r\n\r\n".encode()
        self.sock.sendto(data + body, to)

    def reply(self, request: Message, status: str, extra: str = "") -> None:
        """A response to ``request`` with its Via, From, To (tagged), Call-ID, CSeq."""
        to = request.get("To") or ""
        if ";tag=" not in to:
            to += ";tag=carrier1"
        vias = "".join(f"Via: {v}\n" for v in request.all("Via"))
        text = (
            f"SIP/2.0 {status}\n{vias}From: {request.get('From')}\nTo: {to}\n"
            f"Call-ID: {request.get('Call-ID')}\nCSeq: {request.get('CSeq')}\n{extra}"
        )
        self.send(text, request.source)

    def close(self) -> None:
        self.sock.close()


def digest_params(header: str) -> dict[str, str]:
    assert header.startswith("Digest "), header
    return {k: v1 or v2 for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]+))', header[7:])}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def expected_response(params: dict[str, str], method: str, password: str) -> str:
    """RFC 2617 §3.2.2.1, computed here from the answer's own fields."""
    ha1 = md5(f"{params['username']}:{params['realm']}:{password}")
    ha2 = md5(f"{method}:{params['uri']}")
    if params.get("qop"):
        return md5(
            f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:{params['qop']}:{ha2}"
        )
    return md5(f"{ha1}:{params['nonce']}:{ha2}")


def is_register(message: Message) -> bool:
    return message.method == "REGISTER"


def contact_uri(register: Message) -> str:
    contact = register.get("Contact") or ""
    m = re.match(r"\s*<([^>]+)>", contact)
    assert m, f"no name-addr in Contact {contact!r}"
    return m.group(1)


def register_with_digest(carrier: Carrier) -> Message:
    """Challenge the first REGISTER, check the answer's digest, bind it: the
    REGISTER that was bound."""
    first = carrier.receive(is_register, timeout=15)
    assert first.start.startswith(f"REGISTER sip:{LOOPBACK}:{carrier.port} SIP/2.0"), first.start
    assert f"sip:{USER}@" in (first.get("To") or ""), first.get("To")
    assert first.get("Authorization") is None
    nonce = uuid.uuid4().hex
    carrier.reply(
        first,
        "401 Unauthorized",
        f'WWW-Authenticate: Digest realm="{REALM}", nonce="{nonce}", qop="auth", algorithm=MD5\n',
    )
    # UDP: the first REGISTER may come again (a retransmission) before the answer.
    second = carrier.receive(lambda m: is_register(m) and m.get("CSeq") != first.get("CSeq"))
    params = digest_params(second.get("Authorization") or "")
    assert params["username"] == USER and params["realm"] == REALM and params["nonce"] == nonce
    uri = second.start.split(" ")[1]
    assert params["uri"] == uri
    assert params["response"] == expected_response(params, "REGISTER", PASSWORD), params
    assert second.get("Call-ID") == first.get("Call-ID")
    assert int((second.get("CSeq") or "0").split()[0]) > int((first.get("CSeq") or "0").split()[0])
    assert second.get("Expires") == "300"
    contact = contact_uri(second)
    carrier.reply(second, "200 OK", f"Contact: <{contact}>;expires=300\n")
    return second


def invite_text(carrier: Carrier, target: str, sink_port: int, call_id: str) -> tuple[str, bytes]:
    sdp = (
        f"v=0\r\no=carrier 1 1 IN IP4 {LOOPBACK}\r\ns=-\r\nc=IN IP4 {LOOPBACK}\r\nt=0 0\r\n"
        f"m=audio {sink_port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    ).encode()
    text = (
        f"INVITE {target} SIP/2.0\n"
        f"Via: SIP/2.0/UDP {LOOPBACK}:{carrier.port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\n"
        "Max-Forwards: 69\n"
        f"From: <sip:{CALLER}@{LOOPBACK}>;tag=c{uuid.uuid4().hex[:6]}\n"
        f"To: <sip:{NUMBER}@{LOOPBACK}>\n"
        f"Call-ID: {call_id}\nCSeq: 1 INVITE\n"
        f"Contact: <sip:carrier@{LOOPBACK}:{carrier.port}>\n"
        "Content-Type: application/sdp\n"
    )
    return text, sdp


def in_dialog(carrier: Carrier, method: str, ok: Message, invite_from: str, call_id: str,
              cseq: int) -> str:  # fmt: skip
    target = contact_uri(ok)
    return (
        f"{method} {target} SIP/2.0\n"
        f"Via: SIP/2.0/UDP {LOOPBACK}:{carrier.port};branch=z9hG4bK{uuid.uuid4().hex[:12]};rport\n"
        f"Max-Forwards: 69\nFrom: {invite_from}\nTo: {ok.get('To')}\n"
        f"Call-ID: {call_id}\nCSeq: {cseq} {method}\n"
    )


def uri_address(uri: str) -> tuple[str, int]:
    m = re.match(r"sips?:(?:[^@]+@)?([^;:>]+)(?::(\d+))?", uri)
    assert m, uri
    return m.group(1), int(m.group(2) or 5060)


def check_state_is_shown(server, carrier: Carrier, capsys) -> None:
    """/metrics, the console's Trunks resource and `callswitch trunks` say registered."""
    base = f"http://{LOOPBACK}:{server.http_port}"
    deadline = time.monotonic() + 5
    while True:  # the 200 was sent: wait until the node has read it
        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
        shown = 'callswitch_trunk_registration_state{state="registered",trunk="carrier"} 1.0'
        if shown in metrics or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert shown in metrics, [line for line in metrics.splitlines() if "trunk" in line]
    assert 'callswitch_trunk_registration_last_status{trunk="carrier"} 200.0' in metrics
    sid, token = credentials(server)
    status = main(["trunks", "--url", base, "--account", sid, "--auth-token", token])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert f"carrier\tudp\t{LOOPBACK}:{carrier.port}" in out, out
    assert "registration: registered, last answer 200 OK, expires in" in out, out
    assert PASSWORD not in out


def test_registers_with_digest_and_answers_the_carriers_call(
    tmp_path, monkeypatch, rtp_sink, capsys
):
    """The hidden acceptance check's shape: CALLSWITCH_TRUNK with ;register."""
    carrier = Carrier()
    trunk = f"carrier=sip:{USER}:{PASSWORD}@{LOOPBACK}:{carrier.port};register;register_expires=300"
    monkeypatch.setenv("CALLSWITCH_TRUNK", trunk)
    server = CallswitchServer.start(tmp_path / "server")
    stopper: threading.Thread | None = None
    problems: list[str] = []
    try:
        with WebhookApp() as app:
            app.routes["/voice"] = lambda r: twiml(f"<Play>{app.url('/tone.wav')}</Play>")
            app.routes["/tone.wav"] = lambda r: (200, "audio/wav", wav_bytes(sine(TONE_HZ, 3.0)))
            rest_client(server).incoming_phone_numbers.create(
                phone_number=NUMBER, voice_url=app.url("/voice")
            )
            bound = register_with_digest(carrier)
            contact = contact_uri(bound)
            assert contact.startswith(f"sip:{USER}@"), contact
            check_state_is_shown(server, carrier, capsys)
            # The carrier sends the call to the contact, the DID in To.
            call_id = f"{uuid.uuid4().hex}@carrier"
            text, sdp = invite_text(carrier, contact, rtp_sink.port, call_id)
            carrier.send(text, uri_address(contact), sdp)
            ok = carrier.receive(
                lambda m: m.status is not None and m.status >= 200 and m.get("Call-ID") == call_id,
                timeout=15,
            )
            assert ok.status == 200, ok.start
            invite_from = re.search(r"From: (.*)\r\n", text.replace("\n", "\r\n")).group(1)
            carrier.send(in_dialog(carrier, "ACK", ok, invite_from, call_id, 1),
                         uri_address(contact_uri(ok)))  # fmt: skip
            [voice] = app.wait_for("/voice", timeout=10)
            assert voice.field("To") == NUMBER and voice.field("Called") == NUMBER, voice.form
            assert voice.field("From") == CALLER
            assert rtp_sink.wait_for(80, timeout=10), f"{rtp_sink.count()} RTP packets"
            report = tone_report([p for p in rtp_sink.packets() if p.payload_type == PCMU])
            assert abs(report.frequency - TONE_HZ) < 10, report
            carrier.send(in_dialog(carrier, "BYE", ok, invite_from, call_id, 2),
                         uri_address(contact_uri(ok)))  # fmt: skip
            bye_ok = carrier.receive(lambda m: m.status == 200 and "BYE" in (m.get("CSeq") or ""))
            assert bye_ok.get("Call-ID") == call_id
            # A clean shutdown removes the binding.
            stopper = threading.Thread(target=lambda: problems.extend(server.stop()))
            stopper.start()
            gone = carrier.receive(is_register, timeout=10)
            assert gone.get("Expires") == "0", gone.raw
            assert contact_uri(gone) == contact
            carrier.reply(gone, "200 OK")
            stopper.join(15)
            assert not problems, problems
            # No server now: the command lists what is configured and says so.
            url = f"http://{LOOPBACK}:{server.http_port}"
            status = main(["trunks", "--url", url, *server.store_args])
            out, err = capsys.readouterr()
            assert status == 1 and f"{LOOPBACK}:{carrier.port}" in out, out
            assert "no callswitch server answers" in err, err
    finally:
        if stopper is None:
            problems.extend(server.stop())
        carrier.close()
    assert not problems, f"{problems}\n{server.tail()}"


# -- Kamailio as the carrier's registrar and proxy

CALLER_HZ = 700.0  # what the SIPp caller says; the number's <Play> says TONE_HZ

REGISTRAR_CFG = """#!KAMAILIO
# A carrier's edge for the test: digest-checked REGISTERs into usrloc (memory
# only), INVITEs for the customer's numbers relayed to its registered contact,
# record-routed (the dialog's requests come back through here, as at carriers).
debug=2
log_stderror=yes
children=2
tcp_children=2
auto_aliases=no
listen=udp:{host}:{port}
listen=tcp:{host}:{port}

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "auth.so"

modparam("usrloc", "db_mode", 0)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("REGISTER")) {{
        if (!pv_auth_check("$td", "{password}", "0", "1")) {{
            auth_challenge("$td", "1");
            exit;
        }}
        if ($au != "{user}") {{
            sl_send_reply("403", "Forbidden");
            exit;
        }}
        xlog("L_NOTICE", "carrier: REGISTER of $au ($proto) contact $ct\\n");
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{  # the dialog's requests, both ways, through the route set
            t_relay();
        }} else if (is_method("ACK")) {{
            if (t_check_trans()) {{
                t_relay();
            }}
        }} else {{
            sl_send_reply("404", "Not Here");
        }}
        exit;
    }}
    if (is_method("ACK|CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (is_method("INVITE")) {{
        # Every number of the customer reaches its registered node; To keeps the DID.
        $rU = "{user}";
        if (!lookup("location")) {{
            sl_send_reply("480", "Temporarily Unavailable");
            exit;
        }}
        xlog("L_NOTICE", "carrier: INVITE for $tU relayed to $ru\\n");
        record_route();
        t_relay();
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"""


def wait_registered(server, timeout: float = 15.0) -> None:
    base = f"http://{LOOPBACK}:{server.http_port}"
    shown = 'callswitch_trunk_registration_state{state="registered",trunk="carrier"} 1.0'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if shown in urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode():
            return
        time.sleep(0.2)
    raise AssertionError(f"the trunk did not register within {timeout} s\n{server.tail()}")


def recorded_audio(url: str) -> np.ndarray:
    with urllib.request.urlopen(url + ".wav", timeout=10) as answer:
        data = answer.read()
    with wave.open(io.BytesIO(data)) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_kamailio_routes_the_carriers_call_to_our_registration(
    tmp_path, sipp_bin, rtp_sink, transport
):
    binary = find_kamailio()
    require(binary is not None, "kamailio is not installed (Debian package kamailio)")
    assert binary is not None
    port = free_port()
    workdir = tmp_path / "kamailio"
    workdir.mkdir()
    config = workdir / "kamailio.cfg"
    config.write_text(REGISTRAR_CFG.format(host=LOOPBACK, port=port, user=USER, password=PASSWORD))
    proxy = Kamailio.run(binary, workdir, config, port)
    server = None
    problems: list[str] = []
    try:
        trunk = (
            f"carrier=sip:{USER}:{PASSWORD}@{LOOPBACK}:{port};transport={transport};"
            "register;register_expires=120"
        )
        server = CallswitchServer.start(tmp_path / "server", extra_args=("--trunk", trunk))
        with WebhookApp() as app:
            app.routes["/voice"] = lambda r: twiml(
                '<Record maxLength="2" timeout="0" playBeep="false" action="/recorded"/>'
            )
            app.routes["/recorded"] = lambda r: twiml(
                f"<Play>{app.url('/tone.wav')}</Play><Hangup/>"
            )
            app.routes["/tone.wav"] = lambda r: (200, "audio/wav", wav_bytes(sine(TONE_HZ, 2.0)))
            rest_client(server).incoming_phone_numbers.create(
                phone_number=NUMBER, voice_url=app.url("/voice")
            )
            wait_registered(server)
            assert any(f"REGISTER of {USER} ({transport})" in line for line in proxy.lines()), (
                proxy.tail()
            )
            result = run_sipp(
                "uac_tone_wait_bye.xml",
                proxy.target,
                workdir=tmp_path / "sipp",
                sipp=sipp_bin,
                service=NUMBER.lstrip("+"),  # a carrier that sends national digits
                keys={"sink_port": rtp_sink.port},
                cwd=tone_dir(tmp_path / "tone", CALLER_HZ),
                calls=1,
                timeout=30,
                trace_msg=True,
            )
            assert result.ok(1), f"{result.describe()}\n{server.tail()}\n{proxy.tail()}"
            [voice] = app.wait_for("/voice")
            assert voice.field("To") == NUMBER and voice.field("Called") == NUMBER, voice.form
            # The caller's tone reached us: the recording holds it.
            [recorded] = app.wait_for("/recorded")
            audio = recorded_audio(recorded.field("RecordingUrl"))
            steady = audio[1600:-1600]
            assert len(steady) > 8000, len(audio)
            assert abs(dominant_frequency(steady) - CALLER_HZ) < 10
            assert level_dbfs(steady) > -25
            # Ours reached the caller: the number's <Play> at SIPp's RTP address.
            assert heard(rtp_sink, TONE_HZ), f"{rtp_sink.count()} RTP packets, no {TONE_HZ} Hz"
    finally:
        if server is not None:
            problems = server.stop()
        proxy.stop()
    assert not problems, problems


def test_the_console_shows_the_trunk_and_its_registration(tmp_path, monkeypatch):
    """The console's Trunks card in headless Chromium, for a trunk the carrier bound."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    carrier = Carrier()
    trunk = f"carrier=sip:{USER}:{PASSWORD}@{LOOPBACK}:{carrier.port};register;register_expires=300"
    monkeypatch.setenv("CALLSWITCH_TRUNK", trunk)
    server = CallswitchServer.start(tmp_path / "server")
    problems: list[str] = []
    try:
        contact = contact_uri(register_with_digest(carrier))
        wait_registered(server)
        sid, token = credentials(server)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=FLAGS
            )
            try:
                page = browser.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(f"http://{LOOPBACK}:{server.http_port}/console")
                page.fill("input[name=sid]", sid)
                page.fill("input[name=token]", token)
                page.click("button[type=submit]")
                row = page.wait_for_selector(
                    "#trunks tbody tr:has-text('registered')", timeout=10_000
                )
                text = row.inner_text()
                assert f"{LOOPBACK}:{carrier.port}" in text and contact in text, text
                assert "200 OK" in text and PASSWORD not in text, text
                assert not errors, errors
            finally:
                browser.close()
    finally:
        problems = server.stop()  # its un-REGISTER goes unanswered: it must still stop
        carrier.close()
    assert not problems, problems
