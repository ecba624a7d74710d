"""Status callbacks survive a SIGKILL: queued in the store, delivered after restart."""

from __future__ import annotations

import time

from twilio.rest import Client

from .harness import CallswitchServer
from .sipp import run_sipp
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550100"


def test_sigkill_loses_no_status_callback(sipp_bin, rtp_sink, tmp_path):
    with WebhookApp() as app:
        outage = {"on": True}
        app.routes["/voice"] = lambda r: twiml("<Say>Short call.</Say><Hangup/>")
        app.routes["/status"] = lambda r: (
            (503, "text/plain", b"down") if outage["on"] else (204, "text/plain", b"")
        )
        workdir = tmp_path / "node"
        first = CallswitchServer.start(workdir)
        try:
            sid, token = credentials(first)
            client = Client(
                sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{first.http_port}")
            )
            client.incoming_phone_numbers.create(
                phone_number=NUMBER, voice_url=app.url("/voice"), status_callback=app.url("/status")
            )
            result = run_sipp(
                "uac_wait_bye.xml",
                first.sip_target,
                workdir=tmp_path / "sipp",
                sipp=sipp_bin,
                service=NUMBER.lstrip("+"),
                keys={"sink_port": rtp_sink.port},
                calls=1,
                timeout=20,
            )
            assert result.ok(1), result.describe()
            # All four callbacks were tried once and refused: they wait in the outbox.
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                attempts = app.to("/status")
                if len({r.field("SequenceNumber") for r in attempts}) == 4:
                    break
                time.sleep(0.05)
            assert len({r.field("SequenceNumber") for r in attempts}) == 4
        finally:
            first._kill()  # SIGKILL: no chance to flush anything
        assert first.proc.returncode == -9
        outage["on"] = False
        before = len(app.to("/status"))
        second = CallswitchServer.start(workdir)
        try:
            deadline = time.monotonic() + 20
            delivered: dict[str, list] = {}
            while time.monotonic() < deadline:
                delivered = {}
                for request in app.to("/status")[before:]:
                    delivered.setdefault(request.field("SequenceNumber"), []).append(request)
                if len(delivered) == 4:
                    break
                time.sleep(0.1)
        finally:
            problems = second.stop()
        assert not problems, problems
    assert sorted(delivered) == ["0", "1", "2", "3"], sorted(delivered)
    for sequence, requests in delivered.items():
        original = next(r for r in attempts if r.field("SequenceNumber") == sequence)
        for again in requests:  # the same callback: same parameters, same delivery id
            assert again.form == original.form
            assert (
                again.headers["I-Twilio-Idempotency-Token"]
                == original.headers["I-Twilio-Idempotency-Token"]
            )
    # Each callback was delivered exactly once after the restart.
    assert all(len(requests) == 1 for requests in delivered.values())
