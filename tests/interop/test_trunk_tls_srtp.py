"""A TLS trunk offers SRTP (SDES) on the calls we place, and the wire shows none of the audio.

baresip plays the carrier: it listens for SIP over TLS and answers by itself, once with
``mediaenc=srtp-mand`` (RTP/SAVP only) to a trunk with ``srtp=mandatory``, once with
``mediaenc=srtp`` (best effort: RTP/AVP with a=crypto) to a ``sips:`` trunk left at its
default, optional, and once so to a ``sips:`` address dialled directly (as `<Dial><Sip>`
would). The official ``twilio`` library places the REST call; its TwiML plays a 440 Hz
tone. baresip must hear the tone (decrypted with the keys of our offer), and no UDP payload
captured on ``lo`` toward baresip may decode, as the PCMU both sides agreed on, to that
tone. A carrier of the test's own then re-keys a call in both directions, and SIPp, a
carrier without SRTP, shows what a mandatory trunk does with a plain answer.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import time
import wave
from pathlib import Path
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest

from .audio import dominant_frequency, level_dbfs, sine, tone_purity_db, ulaw_decode, ulaw_encode
from .conftest import require, wait_status
from .harness import CallswitchServer, free_port, free_port_block, make_tls_cert
from .pcap import LoopbackCapture
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .srtp_peer import RekeyingCarrier
from .test_baresip_tls_srtp_opus import echoed_tone
from .test_call_logs import notifications_of
from .test_voice_webhooks import rest_client, wav_bytes
from .webhook_app import WebhookApp, twiml

CARRIER = """\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
sip_certificate\t\t{certificate}
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taufile.so
module\t\t\tsndfile.so
module\t\t\tsrtp.so
module_app\t\taccount.so
module_app\t\tmenu.so
audio_source\t\tausine,600
audio_player\t\taufile,{dump}/played.wav
audio_alert\t\taufile,/dev/null
ausrc_srate\t\t48000
auplay_srate\t\t48000
ausrc_channels\t\t2
auplay_channels\t\t1
snd_path\t\t{dump}
rtp_ports\t\t{rtp_low}-{rtp_high}
"""

NUMBER = "15551230000"  # the carrier's subscriber; the trunk dials it without +
TONE_HZ = 440.0


class TlsCarrier:
    """baresip answering SIP over TLS (its port: ``sip_listen`` + 1) with SRTP required."""

    def __init__(self, workdir: Path, seconds: int, mediaenc: str) -> None:
        baresip = shutil.which("baresip")
        require(baresip is not None, "baresip is not installed (Debian package baresip)")
        assert baresip is not None
        config, self.dump = workdir / "baresip", workdir / "dump"
        config.mkdir(parents=True)
        self.dump.mkdir()
        cert, key = make_tls_cert(workdir / "carrier-tls")
        certificate = workdir / "carrier-tls" / "baresip.pem"
        certificate.write_bytes(key.read_bytes() + cert.read_bytes())
        base = free_port_block(104)
        self.tls_port = base + 1
        self.rtp_ports = (base + 2, base + 102)
        (config / "config").write_text(
            CARRIER.format(
                sip_port=base,
                certificate=certificate,
                dump=self.dump,
                rtp_low=self.rtp_ports[0],
                rtp_high=self.rtp_ports[1],
            )
        )
        (config / "accounts").write_text(
            f"<sip:{NUMBER}@127.0.0.1;transport=tls>;regint=0;answermode=auto;mediaenc={mediaenc}\n"
        )
        (config / "contacts").write_text("")
        self.log = workdir / "baresip.log"
        self._out = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [baresip, "-f", str(config), "-t", str(seconds)],
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_listening(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while "baresip is ready" not in self.output():
            assert self.proc.poll() is None, self.output()[-2000:]
            assert time.monotonic() < deadline, self.output()[-2000:]
            time.sleep(0.05)

    def wait(self, timeout: float) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self._out.close()


def packet_is_tone(payload: bytes) -> bool:
    """Whether one 20 ms PCMU payload holds the tone: most of its energy within 150 Hz of
    it (a plain tone packet scores about +25 dB; ciphertext, white noise, below -4 dB)."""
    return tone_purity_db(ulaw_decode(payload), TONE_HZ, width=150) > 0


@pytest.mark.usefixtures("raw_sockets")
@pytest.mark.parametrize(
    ("mediaenc", "trunk"),
    [
        ("srtp-mand", ";srtp=mandatory"),
        ("srtp", ""),
        ("srtp", None),
        ("srtp-mand", None),
    ],
    ids=["trunk-mandatory", "trunk-optional", "sips-target", "sips-target-secure"],
)
def test_rest_call_through_a_tls_trunk_is_srtp_on_the_wire(tmp_path, mediaenc, trunk):
    """``trunk`` None: no trunk, the call goes to a ``sips:`` URI (as ``<Dial><Sip>`` does);
    to a baresip that requires RTP/SAVP, with Twilio's ``;secure=true``."""
    carrier = TlsCarrier(tmp_path, seconds=20, mediaenc=mediaenc)
    server = None
    capture = None
    try:
        carrier.wait_listening()
        spec = f"carrier=sips:127.0.0.1:{carrier.tls_port};prefix=+1555;strip_plus{trunk}"
        server = CallswitchServer.start(
            tmp_path / "server", extra_args=() if trunk is None else ("--trunk", spec)
        )
        client = rest_client(server)
        to = f"+{NUMBER}" if trunk is not None else f"sips:{NUMBER}@127.0.0.1:{carrier.tls_port}"
        if trunk is None and mediaenc == "srtp-mand":
            to += ";secure=true"
        capture = LoopbackCapture(carrier.rtp_ports)
        with WebhookApp() as app:
            tone = wav_bytes(sine(TONE_HZ, 2.5, amplitude=0.4))
            app.routes["/tone.wav"] = lambda r: (200, "audio/wav", tone)
            app.routes["/answer"] = lambda r: twiml(f"<Play>{app.url('/tone.wav')}</Play>")
            call = client.calls.create(to=to, from_="+15005550006", url=app.url("/answer"))
            status = wait_status(client, call.sid, {"completed", "failed", "busy"}, 30)
        assert status == "completed", carrier.output()[-2000:] + server.tail()
        carrier.wait(5)
    finally:
        if capture is not None:
            capture.close()
        carrier.stop()
        problems = server.stop() if server is not None else []
    assert not problems, problems
    output = carrier.output()
    assert "SRTP is Enabled" in output, output[-2000:]
    [srtp] = server.events("call.srtp")
    assert srtp["suite"].startswith("AES_CM_128_HMAC_SHA1_")
    assert [e for e in server.events("call.dialing") if e.get("transport") == "TLS"]

    # The carrier decrypted our audio and heard the tone.
    heard, rate = echoed_tone(carrier.dump)
    assert abs(dominant_frequency(heard, rate) - TONE_HZ) <= 5, dominant_frequency(heard, rate)
    assert level_dbfs(heard) > -30

    # On the wire: every RTP payload we sent toward the carrier, decoded as the PCMU that
    # was agreed on, holds no tone; nor does the whole stream of them.
    rtp = [p for p in capture.payloads if len(p) > 12 and p[0] & 0xC0 == 0x80]
    assert len(rtp) > 100, len(capture.payloads)
    payloads = [p[12 : 12 + 160] for p in rtp]
    assert tone_purity_db(ulaw_decode(b"".join(payloads)), TONE_HZ) < 0
    tones = [p for p in payloads if packet_is_tone(p)]
    assert not tones, f"{len(tones)} payloads decode as {TONE_HZ} Hz"
    # One packet of the tone in plain PCMU is what the check catches: it is no weak detector.
    assert packet_is_tone(ulaw_encode(sine(TONE_HZ, 0.02, amplitude=0.4)))


CARRIER_HZ = 1000.0


def test_new_keys_mid_call_keep_the_audio_going_both_ways(tmp_path):
    """No real peer we can drive re-keys a call (baresip keeps its key), so a carrier of the
    test's own (srtp_peer.py: ssl, sockets, pylibsrtp) does: it answers with SRTP, streams
    1 kHz, and after 1.5 s re-INVITEs with a new key and sends under it. The tone we play
    must reach it decrypted after the re-key, and its tone must still reach us: the
    recording (both directions) holds 1 kHz after the re-key."""
    cert, key = make_tls_cert(tmp_path / "carrier-tls")
    carrier = RekeyingCarrier(cert, key, CARRIER_HZ, rekey_after=1.5)
    server = None
    try:
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                f"carrier=sips:127.0.0.1:{carrier.port};prefix=+1555;strip_plus;srtp=mandatory",
            ),
        )
        client = rest_client(server)
        with WebhookApp() as app:
            tone = wav_bytes(sine(TONE_HZ, 4.0, amplitude=0.4))
            app.routes["/tone.wav"] = lambda r: (200, "audio/wav", tone)
            app.routes["/answer"] = lambda r: twiml(f"<Play>{app.url('/tone.wav')}</Play>")
            call = client.calls.create(
                to=f"+{NUMBER}", from_="+15005550006", url=app.url("/answer"), record=True
            )
            try:
                status = wait_status(client, call.sid, {"completed", "failed", "busy"}, 30)
            except AssertionError as exc:
                raise AssertionError(f"{exc} {carrier.errors}\n{server.tail()}") from None
            assert status == "completed", f"{carrier.errors}\n{server.tail()}"
            assert carrier.ended.wait(5), server.tail()
            deadline = time.monotonic() + 10
            while not (recordings := client.recordings.list(call_sid=call.sid)):
                assert time.monotonic() < deadline
                time.sleep(0.1)
            wav = httpx.get(
                f"http://127.0.0.1:{server.http_port}{recordings[0].uri[: -len('.json')]}.wav"
            ).content
    finally:
        carrier.close()
        problems = server.stop() if server is not None else []
    assert not problems, problems
    assert not carrier.errors, carrier.errors
    assert "RTP/SAVP" in carrier.invite_sdp
    assert carrier.rekeyed_at is not None and "a=crypto:" in carrier.rekey_answer

    # Our tone reached the carrier, decrypted, for seconds after its re-key.
    after = carrier.decoded_after(carrier.rekeyed_at + 0.2)
    assert len(after) > 8000, len(after)
    assert abs(dominant_frequency(after) - TONE_HZ) <= 5 and level_dbfs(after) > -30
    assert carrier.rejected == 0

    # The carrier's tone, under its new key, reached us: the recording's last part has it.
    with wave.open(io.BytesIO(wav)) as recording:
        rate = recording.getframerate()
        samples = np.frombuffer(recording.readframes(recording.getnframes()), dtype="<i2")
        samples = samples[:: recording.getnchannels()]
    late = samples[int(2.2 * rate) : int(3.8 * rate)]
    assert len(late) > rate, len(samples) / rate
    assert tone_purity_db(late, CARRIER_HZ, rate) > -10, tone_purity_db(late, CARRIER_HZ, rate)
    assert server.events("call.srtp_rekeyed"), server.tail()


def test_a_mandatory_trunk_answered_without_srtp_fails_with_a_notification(tmp_path):
    """SIPp, a carrier that knows no SRTP, answers our RTP/SAVP offer with plain RTP/AVP:
    the call is ACKed and ended at once (BYE), no audio goes out, the REST call ends
    ``failed`` and carries notification 32208."""
    sipp = find_sipp()
    require(sipp is not None, "sipp is not installed (Debian package sip-tester)")
    port = free_port()
    with RtpSink() as sink:
        carrier = SippBackground(
            "uas_answer_wait_bye.xml",
            None,
            workdir=tmp_path / "carrier",
            sipp=sipp,
            local_port=port,
            calls=1,
            timeout=30,
            trace_msg=True,
            keys={"sink_port": sink.port},
            files={"tone.ulaw": ulaw_encode(sine(1000.0, 1.0, amplitude=0.3))},
        )
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=("--trunk", f"carrier=sip:127.0.0.1:{port};prefix=+1555;srtp=mandatory"),
        )
        try:
            client = rest_client(server)
            with WebhookApp() as app:
                app.routes["/answer"] = lambda r: twiml("<Pause length='5'/>")
                call = client.calls.create(
                    to=f"+{NUMBER}", from_="+15005550006", url=app.url("/answer")
                )
                status = wait_status(client, call.sid, {"completed", "failed", "busy"}, 30)
                result = carrier.wait(20)
                assert app.to("/answer") == []  # no TwiML ran: the call never connected
            notes = notifications_of(client, call.sid)
        finally:
            problems = server.stop()
        assert not problems, problems
        assert status == "failed", server.tail()
        assert result.ok(1), f"{result.describe()}\n{server.tail()}"
        start = result.messages.index("INVITE sip:")
        invite = result.messages[start:].split("----------", 1)[0]  # the trace's separator
        assert "m=audio" in invite and "RTP/SAVP" in invite, invite
        assert invite.count("a=crypto:") == 2, invite
        assert sink.count() == 0, "audio went out although SRTP was refused"
    [note] = notes
    assert note.error_code == "32208", note.error_code
    assert "Secure media required" in parse_qs(note.message_text)["Msg"][0]
