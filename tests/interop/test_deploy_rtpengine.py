"""deploy/: the media hosts' rtpengine config runs, and callswitch bridges through it.

deploy/rtpengine/rtpengine.conf is started as shipped (both its sections: with the
kernel table, which these test machines cannot load, so rtpengine says so and
carries the media in userspace; and the userspace one), only its addresses and
ports overridden for loopback on the command line. A ``<Dial><Sip>`` to our own
echo service then goes through it: the caller hears its tone back from
rtpengine's ports. Kamailio's config in deploy/kamailio/ passes ``kamailio -c``
as shipped (tests/interop/test_cluster.py runs it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import require
from .harness import CallswitchServer
from .kamailio import CONFIG, find_kamailio
from .rtp import RtpSink
from .rtpengine import RtpEngineProcess
from .test_dial_nouns import DIAL_NUMBER, client_of
from .test_rtpengine import CALLER_TONE_HZ, CallIn, app, heard, rtpengine_bin, windows_from
from .webhook_app import twiml

__all__ = ["app", "rtpengine_bin"]  # the fixtures, shared with test_rtpengine

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RTPENGINE_CONF = DEPLOY / "rtpengine" / "rtpengine.conf"


@pytest.mark.parametrize("section", ["rtpengine", "rtpengine-userspace"])
def test_the_media_host_config_runs_and_a_bridge_goes_through_it(
    tmp_path, app, rtpengine_bin, section
):
    engine = RtpEngineProcess.start(
        rtpengine_bin, tmp_path / "rtpengine", config=(RTPENGINE_CONF, section)
    )
    server = None
    try:
        with RtpSink() as caller_sink:
            server = CallswitchServer.start(
                tmp_path / "server", extra_args=("--rtpengine", engine.spec)
            )
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            echo = f"sip:echo@127.0.0.1:{server.sip_port}"
            app.routes["/voice"] = lambda r: twiml(
                f'<Dial timeLimit="4"><Sip>{echo}</Sip></Dial><Hangup/>'
            )
            caller = CallIn(tmp_path, server, caller_sink)
            during = engine.wait_calls(lambda calls: bool(calls), 15)
            called = caller.wait()
            after = engine.wait_calls(lambda calls: calls == [], 5)
            assert called is not None and called.ok(1), server.tail()
    finally:
        problems = server.stop() if server is not None else []
        engine.stop()
    assert not problems, problems
    assert during and after == [], (during, after)
    assert heard(windows_from(caller_sink, engine.ports), CALLER_TONE_HZ, 4)
    # The kernel section asks for table 0: without the module (/proc/rtpengine), as on
    # these test machines, rtpengine says so and carries the media in userspace.
    disabled = "KERNEL FORWARDING DISABLED" in engine.log_path.read_text()
    kernel = section == "rtpengine" and not Path("/proc/rtpengine").exists()
    assert disabled == kernel


def test_the_kamailio_config_passes_kamailio_s_check():
    kamailio = find_kamailio()
    require(kamailio is not None, "kamailio is not installed (Debian package kamailio)")
    assert kamailio is not None
    result = subprocess.run(
        [kamailio, "-c", "-f", str(CONFIG)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
