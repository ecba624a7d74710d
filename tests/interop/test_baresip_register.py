"""baresip registers with a password and is rung by `<Dial><Sip>`.

A SIPp caller dials a number whose TwiML dials the registered user; baresip
answers by itself and plays a 600 Hz WAV file as its microphone, SIPp streams
1 kHz. Each side must hear the other's tone through the bridge.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import wave
from pathlib import Path

from twilio.rest import Client

from .audio import dominant_frequency, level_dbfs, sine
from .conftest import require
from .harness import CallswitchServer, free_port_block
from .rtp import RtpSink
from .sipp import find_sipp, run_sipp
from .test_baresip import read_wav
from .test_outbound_calls import heard, tone_dir
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

CONFIG = """\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\taufile.so
module\t\t\tsndfile.so
module_app\t\taccount.so
module_app\t\tmenu.so
audio_source\t\taufile,{tone}
audio_player\t\taufile,{dump}/played.wav
audio_alert\t\taufile,/dev/null
ausrc_srate\t\t8000
auplay_srate\t\t8000
ausrc_channels\t\t1
auplay_channels\t\t1
snd_path\t\t{dump}
rtp_ports\t\t{rtp_low}-{rtp_high}
"""

NUMBER = "+15005550020"
PASSWORD = "Baresip-Pass-2026"
BARESIP_HZ = 600.0
CALLER_HZ = 1000.0


def write_tone(path: Path, hz: float, seconds: float) -> Path:
    samples = sine(hz, seconds, amplitude=0.3)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(samples.astype("<i2").tobytes())
    return path


def test_registered_baresip_is_rung_by_dial_sip(tmp_path):
    baresip = shutil.which("baresip")
    require(baresip is not None, "baresip is not installed (Debian package baresip)")
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    server = CallswitchServer.start(tmp_path / "server")
    proc = None
    try:
        sid, token = credentials(server)
        client = Client(
            sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}")
        )
        phones = client.sip.credential_lists.create(friendly_name="phones")
        client.sip.credential_lists(phones.sid).credentials.create(
            username="alice", password=PASSWORD
        )
        with WebhookApp() as app, RtpSink() as caller_sink:
            app.routes["/voice"] = lambda r: twiml(
                f'<Dial timeout="10"><Sip>sip:alice@{server.sip_target}</Sip></Dial>'
            )
            client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/voice"))

            config_dir, dump = tmp_path / "baresip", tmp_path / "dump"
            config_dir.mkdir()
            dump.mkdir()
            base = free_port_block(104)
            tone = write_tone(tmp_path / "tone.wav", BARESIP_HZ, 30.0)
            (config_dir / "config").write_text(
                CONFIG.format(
                    sip_port=base, dump=dump, tone=tone, rtp_low=base + 2, rtp_high=base + 102
                )
            )
            (config_dir / "accounts").write_text(
                f"<sip:alice@{server.sip_target};transport=udp>;auth_pass={PASSWORD};"
                "regint=60;answermode=auto\n"
            )
            (config_dir / "contacts").write_text("")
            out = open(tmp_path / "baresip.log", "wb")  # noqa: SIM115
            proc = subprocess.Popen(
                [baresip, "-f", str(config_dir), "-t", "12"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=tmp_path,
            )
            assert server.wait_events("sip.registered", 8), (tmp_path / "baresip.log").read_text(
                errors="replace"
            )[-2000:] + server.tail()
            caller = run_sipp(
                "uac_tone_wait_bye.xml",
                server.sip_target,
                workdir=tmp_path / "caller",
                cwd=tone_dir(tmp_path / "caller-cwd", CALLER_HZ),
                sipp=find_sipp(),
                service=NUMBER.lstrip("+"),
                keys={"sink_port": caller_sink.port},
                calls=1,
                timeout=30,
                trace_msg=True,
            )
            proc.wait(20)
            log = (tmp_path / "baresip.log").read_text(errors="replace")
            assert caller.ok(1), f"{caller.describe()}\n{log[-2000:]}\n{server.tail()}"
            assert "Call established" in log or "call established" in log.lower(), log[-2000:]
            assert heard(caller_sink, BARESIP_HZ), "the caller did not hear baresip's tone"
            [decoded] = glob.glob(str(dump / "*-dec.wav"))
            audio = read_wav(decoded)
            assert len(audio) > 8000, "baresip heard less than a second"
            steady = audio[len(audio) // 4 :]
            assert abs(dominant_frequency(steady) - CALLER_HZ) <= 10
            assert -25 < level_dbfs(steady) < -3
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        problems = server.stop()
    assert not problems, problems
