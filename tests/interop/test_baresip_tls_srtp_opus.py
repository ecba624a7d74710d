"""baresip against callswitch over SIP TLS with SRTP (SDES), and with Opus.

baresip calls `echo` and must hear its own 440 Hz back. Over TLS with
`mediaenc=srtp-mand` the RTP captured on the loopback interface must not be
plain G.711: decoded as mu-law it holds no 440 Hz. With only its Opus codec
loaded, the call is answered in Opus and the echo still comes back.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from .audio import dominant_frequency, level_dbfs, tone_purity_db, ulaw_decode
from .conftest import require
from .harness import CallswitchServer, free_port_block
from .pcap import LoopbackCapture

CONFIG = """\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
{cafile}module_path\t\t/usr/lib/baresip/modules
{codecs}module\t\t\tausine.so
module\t\t\taufile.so
module\t\t\tsndfile.so
module\t\t\tsrtp.so
module_app\t\taccount.so
module_app\t\tmenu.so
audio_source\t\tausine,440
audio_player\t\taufile,{dump}/played.wav
audio_alert\t\taufile,/dev/null
ausrc_srate\t\t48000
auplay_srate\t\t48000
ausrc_channels\t\t2
auplay_channels\t\t1
snd_path\t\t{dump}
rtp_ports\t\t{rtp_low}-{rtp_high}
"""


def call_echo(
    server: CallswitchServer, tmp_path: Path, codecs: list[str], account_params: str, target: str
) -> str:
    baresip = shutil.which("baresip")
    require(baresip is not None, "baresip is not installed (Debian package baresip)")
    config_dir, dump = tmp_path / "baresip", tmp_path / "dump"
    config_dir.mkdir()
    dump.mkdir()
    base = free_port_block(104)
    (config_dir / "config").write_text(
        CONFIG.format(
            sip_port=base,
            cafile=f"sip_cafile\t\t{server.tls_cert}\n" if server.tls_cert else "",
            codecs="".join(f"module\t\t\t{c}\n" for c in codecs),
            dump=dump,
            rtp_low=base + 2,
            rtp_high=base + 102,
        )
    )
    uri_params, _, extra = account_params.partition(">")
    (config_dir / "accounts").write_text(f"<sip:baresip@127.0.0.1{uri_params}>;regint=0{extra}\n")
    (config_dir / "contacts").write_text("")
    run = subprocess.run(
        [baresip, "-f", str(config_dir), "-t", "4", "-e", f"/dial {target}"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
        cwd=tmp_path,
    )
    output = run.stdout.decode(errors="replace")
    assert "Call established" in output, output[-2000:] + server.tail()
    return output


def echoed_tone(dump: Path) -> tuple[np.ndarray, int]:
    """What baresip decoded (after the first quarter), and its sample rate."""
    [heard] = glob.glob(str(dump / "*-dec.wav"))
    with wave.open(heard) as wav:
        rate = wav.getframerate()
        audio = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")[:: wav.getnchannels()]
    assert len(audio) > 2 * rate, "baresip heard less than 2 s"
    return audio[len(audio) // 4 :], rate


@pytest.mark.callswitch(tls=True)
@pytest.mark.usefixtures("raw_sockets")
def test_tls_call_with_srtp(server, tmp_path):
    capture = LoopbackCapture(server.rtp_ports)
    try:
        output = call_echo(
            server,
            tmp_path,
            ["g711.so"],
            ";transport=tls>;mediaenc=srtp-mand",
            f"sip:echo@127.0.0.1:{server.sip_tls_port};transport=tls",
        )
    finally:
        capture.close()
    assert "SRTP is Enabled" in output, output[-2000:]
    assert [e for e in server.events("sip.invite") if e.get("transport") == "TLS"]
    steady, rate = echoed_tone(tmp_path / "dump")
    assert abs(dominant_frequency(steady, rate) - 440) <= 5 and level_dbfs(steady) > -30
    # On the wire: baresip's RTP to us, 172-byte packets (12 + 160 + 10 tag), encrypted.
    rtp = [p for p in capture.payloads if len(p) == 182 and p[0] & 0xC0 == 0x80]
    assert len(rtp) > 100, len(capture.payloads)
    wire = ulaw_decode(b"".join(p[12:172] for p in rtp))
    assert tone_purity_db(wire, 440) < 0, "the RTP on the wire is plain G.711"


def test_opus_call(server, tmp_path):
    call_echo(server, tmp_path, ["opus.so"], "", f"sip:echo@{server.sip_target}")
    [answered] = server.events("call.answered")
    assert answered["codec"] == "OPUS"
    steady, rate = echoed_tone(tmp_path / "dump")
    assert abs(dominant_frequency(steady, rate) - 440) <= 5 and level_dbfs(steady) > -30
