"""Calls placed over a trunk with an ``outbound_proxy`` (docs/routing.md, "Outbound
proxy"): every request of the call goes through the proxy.

Kamailio plays the carrier's outbound proxy: it takes a new INVITE only when it carries
a pre-loaded ``Route`` naming the proxy (403 otherwise), record-routes it and relays it
to its Request-URI, a SIPp UAS on another port playing the carrier; the dialog's
requests come back through it along the route set. Kamailio logs every request it
gets with its source and ``Route``; SIPp's message trace shows the proxy's Via on what
reached it. One server and one Kamailio for the module, a SIPp per test:

* an answered call: our tone reaches the carrier and the carrier's reaches us (the
  call's recording), the carrier's BYE comes through the proxy;
* an answered call we hang up: our ACK and BYE take the recorded route (the proxy
  once, not twice);
* an unanswered call we give up on: its CANCEL and the ACK of the 487 carry the Route;
* OPTIONS pings (``ping=1``, a server of their own): a carrier that answers only what
  comes through the proxy stays up, one behind it that never answers is marked down.
"""

from __future__ import annotations

import io
import re
import socket
import threading
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from .audio import sine, tone_purity_db, ulaw_encode
from .conftest import require
from .harness import LOOPBACK, CallswitchServer, free_port
from .kamailio import Kamailio, find_kamailio
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_outbound_calls import heard
from .test_trunk_dns_failover import rest_client
from .test_voice_webhooks import wav_bytes
from .webhook_app import WebhookApp, twiml

CARRIER_HZ = 1000.0
PLAY_HZ = 440.0

PROXY_CFG = """#!KAMAILIO
# A carrier's outbound proxy for the test: new dialogs only when routed here by a
# pre-loaded Route (RFC 3261 §8.1.2), record-routed and relayed to the Request-URI;
# the dialog's requests follow the route set. Every request is logged.
debug=2
log_stderror=yes
children=2
auto_aliases=no
listen=udp:{host}:{port}

loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "pv.so"
loadmodule "rr.so"
loadmodule "maxfwd.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "xlog.so"

request_route {{
    xlog("L_NOTICE", "proxy: $rm $ru from $si:$sp route=$hdr(Route) call=$ci\\n");
    if (!mf_process_maxfwd_header("10")) {{
        sl_send_reply("483", "Too Many Hops");
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (has_totag()) {{
        if (loose_route()) {{
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
    if (is_method("ACK")) {{
        t_check_trans();
        exit;
    }}
    if (!is_present_hf("Route") || !($hdr(Route) =~ "^<sip:{host}:{port};lr>$")) {{
        xlog("L_NOTICE", "proxy: refused $rm not routed here\\n");
        sl_send_reply("403", "Not Routed Here");
        exit;
    }}
    remove_hf("Route");  # the pre-loaded Route names us: on to the Request-URI
    record_route();
    t_relay();
}}
"""


@dataclass
class Rig:
    server: CallswitchServer
    proxy: Kamailio
    app: WebhookApp
    ports: dict[str, int]  # the carrier SIPp's port per trunk
    workdir: Path

    def carrier(self, name: str, scenario: str, sink_port: int) -> SippBackground:
        return SippBackground(
            scenario,
            None,
            workdir=self.workdir / name,
            sipp=find_sipp(),
            local_port=self.ports[name],
            calls=1,
            timeout=40,
            trace_msg=True,
            keys={"sink_port": sink_port},
            files={"tone.ulaw": ulaw_encode(sine(CARRIER_HZ, 1.0, amplitude=0.3))},
        )

    def requests(self, call_id: str) -> list[dict[str, str]]:
        """What the proxy logged of one call: method, R-URI, source, Route."""
        found = []
        pattern = re.compile(r"proxy: (\S+) (\S+) from (\S+) route=(.*) call=(\S+)$")
        for line in self.proxy.lines():
            match = pattern.search(line)
            if match and match.group(5) == call_id:
                method, uri, source, route, _ = match.groups()
                found.append({"method": method, "uri": uri, "source": source, "route": route})
        return found

    def wait_requests(self, call_id: str, count: int, timeout: float = 10) -> list[dict[str, str]]:
        """The proxy's log of the call once it has ``count`` requests (read by a thread,
        a moment behind the wire)."""
        deadline = time.monotonic() + timeout
        while len(found := self.requests(call_id)) < count:
            assert time.monotonic() < deadline, self.proxy.tail()
            time.sleep(0.05)
        return found

    @property
    def our_source(self) -> str:
        return f"{LOOPBACK}:{self.server.sip_port}"

    @property
    def preloaded(self) -> str:
        return f"<sip:{LOOPBACK}:{self.proxy.port};lr>"


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    binary = find_kamailio()
    require(binary is not None, "kamailio is not installed (Debian package kamailio)")
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    assert binary is not None
    workdir = tmp_path_factory.mktemp("outbound-proxy")
    port = free_port()
    config = workdir / "kamailio.cfg"
    (workdir / "kamailio").mkdir()
    config.write_text(PROXY_CFG.format(host=LOOPBACK, port=port))
    proxy = Kamailio.run(binary, workdir / "kamailio", config, port)
    ports: dict[str, int] = {}
    for name in ("talk", "hang", "ring"):
        ports[name] = free_port(avoid={port, *ports.values()})
    trunks: list[str] = []
    for index, name in enumerate(ports, start=1):
        trunks += [
            "--trunk",
            f"{name}=sip:{LOOPBACK}:{ports[name]};prefix=+1555{index}00;"
            f"outbound_proxy=sip:{LOOPBACK}:{port}",
        ]
    server = None
    try:
        server = CallswitchServer.start(workdir / "server", extra_args=tuple(trunks))
        with WebhookApp() as app:
            tone = wav_bytes(sine(PLAY_HZ, 1.5, amplitude=0.4))
            app.routes["/tone.wav"] = lambda r: (200, "audio/wav", tone)
            app.routes["/talk"] = lambda r: twiml(
                f'<Play>{app.url("/tone.wav")}</Play><Pause length="10"/>'
            )
            app.routes["/hang"] = lambda r: twiml(f"<Play>{app.url('/tone.wav')}</Play><Hangup/>")
            app.routes["/status"] = lambda r: (204, "text/plain", b"")
            yield Rig(server, proxy, app, ports, workdir)
    finally:
        problems = server.stop() if server is not None else []
        proxy.stop()
    assert not problems, problems


def received(result, method: str) -> list[str]:
    """The header lines of each ``method`` request SIPp received (its message trace)."""
    found = []
    for block in re.split(r"\n-{20,}[^\n]*\n", result.messages):
        head, _, rest = block.partition("\n\n")
        if "message received" not in head:
            continue
        lines = rest.strip("\n").splitlines()
        if lines and lines[0].startswith(f"{method} "):
            found.append(lines)
    return found


def vias(lines: list[str]) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in lines if re.match(r"(?i)(via|v)\s*:", line)]


def headers(lines: list[str], name: str) -> list[str]:
    return [line.split(":", 1)[1].strip() for line in lines if line.lower().startswith(name + ":")]


def call_status(app: WebhookApp, sid: str, timeout: float = 30) -> str:
    """The status the call's completed callback told."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for request in app.to("/status"):
            if request.field("CallSid") == sid:
                return request.field("CallStatus") or ""
        time.sleep(0.05)
    raise AssertionError(f"no status callback for {sid}")


def place(rig: Rig, to: str, path: str, **more) -> str:
    call = rest_client(rig.server).calls.create(
        to=to,
        from_="+15005550006",
        url=rig.app.url(path),
        status_callback=rig.app.url("/status"),
        status_callback_event=["completed"],
        **more,
    )
    return call.sid


def invite_call_id(lines: list[str]) -> str:
    [value] = headers(lines, "call-id") + headers(lines, "i")
    return value


def test_an_answered_call_and_the_carriers_bye_go_through_the_proxy(rig):
    with RtpSink() as sink:
        carrier = rig.carrier("talk", "uas_proxied_answer_tone_bye.xml", sink.port)
        sid = place(rig, "+15551000001", "/talk", record=True)
        result = carrier.wait(30)
        assert result.ok(1), f"{result.describe()}\n{rig.server.tail()}\n{rig.proxy.tail()}"
        assert call_status(rig.app, sid) == "completed"
        # Ours reached the carrier's RTP address.
        assert heard(sink, PLAY_HZ), f"{sink.count()} RTP packets, no {PLAY_HZ} Hz"
    # The carrier's reached us: the call's recording (both sides) holds it.
    client = rest_client(rig.server)
    deadline = time.monotonic() + 10
    while not (recordings := client.recordings.list(call_sid=sid)):
        assert time.monotonic() < deadline, rig.server.tail()
        time.sleep(0.1)
    [recording] = recordings
    url = f"http://{LOOPBACK}:{rig.server.http_port}{recording.uri[: -len('.json')]}.wav"
    with wave.open(io.BytesIO(httpx.get(url).content)) as recorded:
        mixed = np.frombuffer(recorded.readframes(recorded.getnframes()), dtype="<i2")
    assert len(mixed) >= 2 * 8000
    assert tone_purity_db(mixed, CARRIER_HZ) > -10 and tone_purity_db(mixed, PLAY_HZ) > -10

    # The carrier got the INVITE from the proxy, addressed to itself.
    [invite] = received(result, "INVITE")
    assert invite[0].startswith(f"INVITE sip:+15551000001@{LOOPBACK}:{rig.ports['talk']} ")
    top, ours = vias(invite)[:2]
    assert top.startswith(f"SIP/2.0/UDP {LOOPBACK}:{rig.proxy.port};")
    assert ours.startswith(f"SIP/2.0/UDP {LOOPBACK}:{rig.server.sip_port};")
    assert headers(invite, "route") == []  # the proxy took its own Route off
    # The proxy's view: our INVITE with the pre-loaded Route, our ACK along the
    # recorded route, and the carrier's BYE.
    requests = rig.wait_requests(invite_call_id(invite), 3)
    assert [(r["method"], r["source"]) for r in requests] == [
        ("INVITE", rig.our_source),
        ("ACK", rig.our_source),
        ("BYE", f"{LOOPBACK}:{rig.ports['talk']}"),
    ], rig.proxy.tail()
    invite_seen, ack_seen, _ = requests
    assert invite_seen["route"] == rig.preloaded
    assert invite_seen["uri"] == f"sip:+15551000001@{LOOPBACK}:{rig.ports['talk']}"
    assert f"{LOOPBACK}:{rig.proxy.port};lr;ftag=" in ack_seen["route"]


def test_our_bye_takes_the_recorded_route_through_the_proxy_once(rig):
    with RtpSink() as sink:
        carrier = rig.carrier("hang", "uas_proxied_answer_wait_bye.xml", sink.port)
        sid = place(rig, "+15552000001", "/hang")
        result = carrier.wait(30)
        assert result.ok(1), f"{result.describe()}\n{rig.server.tail()}\n{rig.proxy.tail()}"
        assert call_status(rig.app, sid) == "completed"
        assert heard(sink, PLAY_HZ), f"{sink.count()} RTP packets, no {PLAY_HZ} Hz"
    [invite] = received(result, "INVITE")
    [bye] = received(result, "BYE")
    assert vias(bye)[0].startswith(f"SIP/2.0/UDP {LOOPBACK}:{rig.proxy.port};")
    assert bye[0].startswith("BYE sip:callee@")  # the carrier's Contact
    assert headers(bye, "route") == []  # one Route, the proxy's own, taken off by it
    requests = rig.wait_requests(invite_call_id(invite), 3)
    assert [(r["method"], r["source"]) for r in requests] == [
        ("INVITE", rig.our_source),
        ("ACK", rig.our_source),
        ("BYE", rig.our_source),
    ], rig.proxy.tail()
    route = requests[-1]["route"]
    assert f"{LOOPBACK}:{rig.proxy.port};lr;ftag=" in route and "," not in route


def test_a_cancelled_call_sends_its_cancel_and_ack_through_the_proxy(rig):
    carrier = rig.carrier("ring", "uas_proxied_ring_cancel.xml", 9)
    sid = place(rig, "+15553000001", "/hang", timeout=2)
    result = carrier.wait(30)
    assert result.ok(1), f"{result.describe()}\n{rig.server.tail()}\n{rig.proxy.tail()}"
    assert call_status(rig.app, sid) == "no-answer"
    [invite] = received(result, "INVITE")
    [cancel] = received(result, "CANCEL")
    assert vias(cancel)[0].startswith(f"SIP/2.0/UDP {LOOPBACK}:{rig.proxy.port};")
    requests = rig.wait_requests(invite_call_id(invite), 3)  # the ACK of the 487 last
    assert [(r["method"], r["source"], r["route"]) for r in requests] == [
        ("INVITE", rig.our_source, rig.preloaded),
        ("CANCEL", rig.our_source, rig.preloaded),
        ("ACK", rig.our_source, rig.preloaded),
    ], rig.proxy.tail()


class ProxiedCarrier:
    """A carrier's SIP host answering OPTIONS 200 only when they come from its proxy;
    anything sent to it directly is counted and never answered."""

    def __init__(self, proxy: tuple[str, int]) -> None:
        self.proxy = proxy
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, free_port(avoid={proxy[1]})))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.answered: list[str] = []  # the Request-URIs answered
        self.direct = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            head = data.decode("utf-8", "replace").split("\r\n\r\n", 1)[0].split("\r\n")
            if source != self.proxy:
                self.direct += 1
                continue
            if not head[0].startswith("OPTIONS "):
                continue
            keep = [
                line
                for line in head[1:]
                if re.match(r"(?i)(via|v|from|f|to|t|call-id|i|cseq)\s*:", line)
            ]
            keep = [
                f"{line};tag=carrier" if re.match(r"(?i)(to|t)\s*:", line) else line
                for line in keep
            ]
            reply = "\r\n".join(["SIP/2.0 200 OK", *keep, "Content-Length: 0", "", ""])
            self.sock.sendto(reply.encode(), source)
            self.answered.append(head[0].split(" ")[1])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def host_up(server: CallswitchServer, trunk: str) -> tuple[str, str] | None:
    """The ``callswitch_trunk_host_up`` line of ``trunk``: its labels and value."""
    text = httpx.get(f"http://{LOOPBACK}:{server.http_port}/metrics").text
    for line in text.splitlines():
        if line.startswith("callswitch_trunk_host_up{") and f'trunk="{trunk}"' in line:
            labels, value = line.rsplit(" ", 1)
            return labels, value
    return None


def test_options_pings_go_through_the_proxy(rig, tmp_path):
    """``ping=1`` on trunks with the proxy: the carrier that answers only through the
    proxy is up, the one behind it that never answers (the proxy gets no answer
    either) is marked down; both pings reached the proxy with its pre-loaded Route and
    the entry point as Request-URI, nothing went to an entry point directly."""
    alive = ProxiedCarrier((LOOPBACK, rig.proxy.port))
    dead = free_port(avoid={rig.proxy.port, alive.port, *rig.ports.values()})
    proxy = f"outbound_proxy=sip:{LOOPBACK}:{rig.proxy.port};ping=1"
    server = None
    try:
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                f"alive=sip:{LOOPBACK}:{alive.port};prefix=+1666;{proxy}",
                "--trunk",
                f"dead=sip:{LOOPBACK}:{dead};prefix=+1777;{proxy}",
            ),
        )
        deadline = time.monotonic() + 15
        while (found := host_up(server, "dead")) is None or float(found[1]) != 0:
            assert time.monotonic() < deadline, f"{found}\n{server.tail()}\n{rig.proxy.tail()}"
            time.sleep(0.1)
        dead_labels = found[0]
        while len(alive.answered) < 2:  # two rounds answered: it was pinged as often
            assert time.monotonic() < deadline, (
                f"sent directly: {alive.direct}, answered: {alive.answered}"
            )
            time.sleep(0.05)
        alive_line = host_up(server, "alive")
    finally:
        problems = server.stop() if server is not None else []
        alive.close()
    assert not problems, problems
    via = f'via="{LOOPBACK}:{rig.proxy.port}"'
    assert alive_line is not None and float(alive_line[1]) == 1, alive_line
    assert f'host="{LOOPBACK}:{alive.port}"' in alive_line[0] and via in alive_line[0]
    assert f'host="{LOOPBACK}:{dead}"' in dead_labels and via in dead_labels
    assert set(alive.answered) == {f"sip:{LOOPBACK}:{alive.port}"}
    assert alive.direct == 0
    pinged = [
        (match.group(1), match.group(2), match.group(3))
        for line in rig.proxy.lines()
        if (match := re.search(r"proxy: OPTIONS (\S+) from (\S+) route=(.*) call=", line))
    ]
    ours = f"{LOOPBACK}:{server.sip_port}"
    for entry in (f"sip:{LOOPBACK}:{alive.port}", f"sip:{LOOPBACK}:{dead}"):
        assert (entry, ours, rig.preloaded) in pinged, rig.proxy.tail()
