"""baresip, a real softphone, calls callswitch: its 440 Hz comes back from `echo`.

baresip runs headless: `ausine` is its microphone (a 440 Hz sine), `sndfile`
dumps what it encodes and what it decodes to WAV files, and `-t` ends it.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from .audio import dominant_frequency, level_dbfs
from .conftest import require
from .harness import free_port_block

CONFIG = """\
poll_method\t\tepoll
sip_listen\t\t127.0.0.1:{sip_port}
module_path\t\t/usr/lib/baresip/modules
module\t\t\tg711.so
module\t\t\tausine.so
module\t\t\taufile.so
module\t\t\tsndfile.so
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


@pytest.fixture
def baresip_bin() -> str:
    path = shutil.which("baresip")
    require(path is not None, "baresip is not installed (Debian package baresip)")
    return path


def read_wav(path: str) -> np.ndarray:
    with wave.open(path) as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        assert wav.getframerate() == 8000, path
        return data[:: wav.getnchannels()]


def test_baresip_hears_its_own_tone_from_echo(server, baresip_bin, tmp_path: Path):
    config_dir, dump = tmp_path / "baresip", tmp_path / "dump"
    config_dir.mkdir()
    dump.mkdir()
    base = free_port_block(104)
    (config_dir / "config").write_text(
        CONFIG.format(sip_port=base, dump=dump, rtp_low=base + 2, rtp_high=base + 102)
    )
    (config_dir / "accounts").write_text("<sip:baresip@127.0.0.1>;regint=0\n")
    (config_dir / "contacts").write_text("")
    run = subprocess.run(
        [
            baresip_bin,
            "-f",
            str(config_dir),
            "-t",
            "4",
            "-e",
            f"/dial sip:echo@{server.sip_target}",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
        cwd=tmp_path,
    )
    output = run.stdout.decode(errors="replace")
    assert "Call established" in output, output[-2000:] + server.tail()
    assert "terminated" in output, output[-2000:]
    [sent] = glob.glob(str(dump / "*-enc.wav"))
    [heard] = glob.glob(str(dump / "*-dec.wav"))
    sent_audio, heard_audio = read_wav(sent), read_wav(heard)
    assert len(heard_audio) > 2 * 8000, "baresip heard less than 2 s"
    steady = heard_audio[len(heard_audio) // 4 :]
    assert abs(dominant_frequency(steady) - 440) <= 5
    assert abs(level_dbfs(steady) - level_dbfs(sent_audio[len(sent_audio) // 4 :])) < 1.0
