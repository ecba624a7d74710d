"""Mid-call SIP against SIPp: hold and resume, session timers, REFER both ways."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from twilio.rest import Client

from .audio import dominant_frequency, level_dbfs, sine, ulaw_decode, ulaw_encode
from .conftest import require, sipp_failure
from .harness import CallswitchServer, free_port
from .media_checks import PCMU
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp, run_sipp
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

TONE_HZ = 1000.0


def tone_packets_after(packets, start: float):
    return [p for p in packets if p.arrival >= start and p.payload_type == PCMU]


def hears(packets, hz: float) -> bool:
    audio = ulaw_decode(b"".join(p.payload for p in packets if p.payload_type == PCMU))
    windows = [audio[i : i + 4000] for i in range(0, len(audio) - 4000, 4000)]
    return any(abs(dominant_frequency(w) - hz) < 10 and -25 < level_dbfs(w) < -3 for w in windows)


@pytest.mark.callswitch_shared
def test_hold_stops_our_rtp_and_resume_restarts_it(sipp, server, rtp_sink):
    """re-INVITE a=sendonly → 200 a=recvonly and silence; a=sendrecv → tone again."""
    result = sipp(
        "uac_hold_unhold.xml", service="tone", keys={"sink_port": rtp_sink.port}, timeout=15
    )
    assert result.ok(1), sipp_failure(result, server, "hold/resume call failed")
    packets = sorted(rtp_sink.packets(), key=lambda p: p.arrival)
    assert len(packets) > 100, sipp_failure(result, server, f"{len(packets)} RTP packets")
    gaps = [(b.arrival - a.arrival, b.arrival) for a, b in itertools.pairwise(packets)]
    longest, resumed_at = max(gaps)
    # On hold for 2.5 s: no RTP for at least 2 s; before and after it, the tone.
    assert longest >= 2.0, f"longest RTP gap {longest:.2f} s: hold did not stop our RTP"
    before = [p for p in packets if p.arrival < resumed_at - longest]
    after = tone_packets_after(packets, resumed_at)
    assert len(before) >= 50 and len(after) >= 50, (len(before), len(after))
    assert hears(before, TONE_HZ) and hears(after, TONE_HZ)


@pytest.mark.callswitch_shared
def test_session_timer_is_granted_and_refreshed_by_update_and_reinvite(sipp, server, rtp_sink):
    """Session-Expires 90;refresher=uac comes back in the 200 of the INVITE, the
    UPDATE and the re-INVITE, with Require: timer (the scenario checks headers)."""
    result = sipp(
        "uac_session_timer.xml", service="tone", keys={"sink_port": rtp_sink.port}, timeout=15
    )
    assert result.ok(1), sipp_failure(result, server, "session timer call failed")


DIAL_NUMBER = "+15005550031"
REFER_NUMBER = "+15005550032"
CALLER_HZ = 440.0


def tone_dir(path: Path, hz: float) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "tone.ulaw").write_bytes(ulaw_encode(sine(hz, 1.0, amplitude=0.3)))
    return path


@pytest.fixture
def app():
    with WebhookApp() as application:
        yield application


def background(scenario: str, workdir: Path, port: int, keys: dict, hz: float | None = None):
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    peer = SippBackground(
        scenario,
        None,
        workdir=workdir,
        sipp=find_sipp(),
        local_port=port,
        calls=1,
        timeout=20,
        trace_msg=True,
        keys=keys,
        files={"tone.ulaw": ulaw_encode(sine(hz, 1.0, amplitude=0.3))} if hz is not None else None,
    )
    return peer


def api_client(server: CallswitchServer) -> Client:
    sid, token = credentials(server)
    return Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))


def test_phone_transfers_a_dial_bridge_with_refer(tmp_path, app):
    """The callee of a <Dial> (a leg we placed: it may transfer) sends REFER to a
    third party, a number on a trunk's host (a REFER is routed like <Dial>, never
    to an arbitrary host): the caller ends up talking to it, the referrer gets
    202, NOTIFY 100 and NOTIFY 200."""
    referrer_port, target_port = free_port(), free_port()
    with RtpSink() as caller_sink, RtpSink() as referrer_sink, RtpSink() as target_sink:
        referrer = background(
            "uas_refer_blind.xml",
            tmp_path / "referrer",
            referrer_port,
            {
                "sink_port": referrer_sink.port,
                "target": f"sip:+15550402222@127.0.0.1:{target_port}",
            },
        )
        target = background(
            "uas_answer_tone_bye.xml",
            tmp_path / "target",
            target_port,
            {"sink_port": target_sink.port},
            hz=TONE_HZ,
        )
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                f"b=sip:127.0.0.1:{referrer_port};prefix=+1555030",
                "--trunk",
                f"c=sip:127.0.0.1:{target_port};prefix=+1555040",
            ),
        )
        try:
            client = api_client(server)
            app.routes["/voice"] = lambda r: twiml("<Dial><Number>+15550301111</Number></Dial>")
            client.incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = run_sipp(
                "uac_tone_wait_bye.xml",
                server.sip_target,
                workdir=tmp_path / "caller",
                cwd=tone_dir(tmp_path / "caller-cwd", CALLER_HZ),
                sipp=find_sipp(),
                service=DIAL_NUMBER.lstrip("+"),
                keys={"sink_port": caller_sink.port},
                calls=1,
                timeout=20,
                trace_msg=True,
            )
            referred = referrer.wait(10)
            answered = target.wait(10)
        finally:
            problems = server.stop()
        assert caller.ok(1), f"{caller.describe()}\n{server.tail()}"
        assert referred.ok(1), f"{referred.describe()}\n{server.tail()}"
        assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
        assert not problems, problems
        # The caller now talks to the target: its tone reached the caller and back.
        assert hears(caller_sink.packets(), TONE_HZ), "the caller did not hear the target"
        assert hears(target_sink.packets(), CALLER_HZ), "the target did not hear the caller"


def test_twiml_refer_transfers_the_caller(tmp_path, app):
    """<Refer><Sip>: the caller gets REFER with that Refer-To, answers 202 and
    NOTIFY 200; we hang up and the action gets ReferCallStatus=completed."""
    with RtpSink() as sink:
        server = CallswitchServer.start(tmp_path / "server")
        try:
            client = api_client(server)
            app.routes["/voice"] = lambda r: twiml(
                '<Refer action="/after"><Sip>sip:alice@10.1.2.3:5070</Sip></Refer>'
                "<Say>not reached</Say>"
            )
            app.routes["/after"] = lambda r: twiml("<Hangup/>")
            client.incoming_phone_numbers.create(
                phone_number=REFER_NUMBER, voice_url=app.url("/voice")
            )
            started = time.monotonic()
            caller = run_sipp(
                "uac_refer_accept.xml",
                server.sip_target,
                workdir=tmp_path / "caller",
                sipp=find_sipp(),
                service=REFER_NUMBER.lstrip("+"),
                keys={"sink_port": sink.port, "refer_to": "sip:alice@10.1.2.3:5070"},
                calls=1,
                timeout=15,
                trace_msg=True,
            )
            [after] = app.wait_for("/after")
        finally:
            problems = server.stop()
        assert caller.ok(1), f"{caller.describe()}\n{server.tail()}"
        assert not problems, problems
        assert time.monotonic() - started < 10
        assert after.field("ReferCallStatus") == "completed"
        assert after.field("ReferSipResponseCode") == "202"
        assert after.field("NotifySipResponseCode") == "200"
