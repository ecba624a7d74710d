"""``--rtpengine``: a REFER from a party of a ``<Dial>`` bridged by a real rtpengine.

A SIPp caller (440 Hz) ``<Dial>``s a SIPp callee through a trunk; both are moved
onto rtpengine. The callee then transfers the caller blind (REFER to a number on
another trunk): the bridge on rtpengine ends (both parties moved back, the
rtpengine call deleted) while the target is called, and the caller and the
target (1000 Hz) are bridged on a new rtpengine call: each hears the other from
rtpengine's ports. When the target
hangs up, the caller is moved back, and rtpengine's ``list`` is empty.
"""

from __future__ import annotations

from .conftest import require
from .harness import CallswitchServer, free_port
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_dial_nouns import DIAL_NUMBER, client_of
from .test_outbound_calls import CARRIER_TONE_HZ, start_carrier
from .test_rtpengine import (  # noqa: F401 - fixtures
    CALLER_TONE_HZ,
    CallIn,
    app,
    heard,
    rtpengine,
    rtpengine_bin,
    windows_from,
)
from .webhook_app import twiml


def test_a_refer_moves_the_caller_to_the_target_on_a_new_rtpengine_call(
    tmp_path,
    app,  # noqa: F811
    rtpengine,  # noqa: F811
):
    referrer_port, target_port = free_port(), free_port()
    app.routes["/voice"] = lambda r: twiml(
        '<Dial timeout="15"><Number>+15550301111</Number></Dial><Hangup/>'
    )
    with RtpSink() as caller_sink, RtpSink() as referrer_sink, RtpSink() as target_sink:
        require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
        referrer = SippBackground(
            "uas_refer_blind_reinvite.xml",
            None,
            workdir=tmp_path / "referrer",
            sipp=find_sipp(),
            local_port=referrer_port,
            calls=1,
            timeout=30,
            trace_msg=True,
            keys={
                "sink_port": referrer_sink.port,
                "target": f"sip:+15550402222@127.0.0.1:{target_port}",
            },
        )
        target = start_carrier(
            tmp_path / "target", target_port, target_sink.port, "uas_answer_tone_reinvite_bye.xml"
        )
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=(
                "--trunk",
                f"b=sip:127.0.0.1:{referrer_port};prefix=+1555030",
                "--trunk",
                f"c=sip:127.0.0.1:{target_port};prefix=+1555040",
                "--rtpengine",
                rtpengine.spec,
            ),
        )
        try:
            client_of(server).incoming_phone_numbers.create(
                phone_number=DIAL_NUMBER, voice_url=app.url("/voice")
            )
            caller = CallIn(tmp_path, server, caller_sink)
            bridged = server.wait_events("rtpengine.bridged", 20, count=2)
            during = rtpengine.calls()
            referred = referrer.wait(20)
            answered = target.wait(20)
            called = caller.wait()
            gone = rtpengine.wait_calls(lambda calls: calls == [], 5)
            [completed] = server.events("transfer.completed")
            deleted = server.events("rtpengine.call")
        finally:
            referrer.kill()
            target.kill()
            problems = server.stop()
        assert not problems, problems
    assert referred.ok(1), f"{referred.describe()}\n{server.tail()}"
    assert answered.ok(1), f"{answered.describe()}\n{server.tail()}"
    assert called is not None and called.ok(1), f"{called and called.describe()}\n{server.tail()}"
    assert len(bridged) == 2, bridged  # the callee's bridge, then the target's
    assert len(deleted) == 2, deleted  # each rtpengine call deleted when it ended
    assert during and len(during) == 1, during
    assert gone == [], f"rtpengine still holds {gone} after the hang-up"
    assert completed["target"].startswith("sip:+15550402222")
    # The caller and the target heard each other through rtpengine's ports.
    assert heard(windows_from(caller_sink, rtpengine.ports), CARRIER_TONE_HZ)
    assert heard(windows_from(target_sink, rtpengine.ports), CALLER_TONE_HZ)
