"""A caller ID verified by a validation call: the official `twilio` library asks for
it (``validation_requests.create``), callswitch calls the number through a trunk,
SIPp answers as the callee and the test keys the code back as RFC 4733 events from
the callee's media address; the number then shows in ``OutgoingCallerIds`` and the
request's StatusCallback hears ``VerificationStatus=success``, signed.
"""

from __future__ import annotations

import struct
import time

from twilio.request_validator import RequestValidator
from twilio.rest import Client

from .conftest import require
from .harness import CallswitchServer, free_port
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp

EVENT_PT = 101
CALLEE = "+15550001234"


def key_events(sink: RtpSink, to: tuple[str, int], digits: str) -> None:
    """``digits`` as RFC 4733 telephone events sent from the sink's socket: per key,
    three updates (the first marked) and three end packets, 20 ms apart."""
    sequence, timestamp, ssrc = 1000, 80_000, 0x0CA11E12
    for digit in digits:
        event = "0123456789*#".index(digit)
        for n in range(6):
            end = n >= 3
            duration = 160 * min(n + 1, 4)
            payload = struct.pack("!BBH", event, (0x80 if end else 0) | 10, duration)
            header = struct.pack(
                "!BBHII", 0x80, (0x80 if n == 0 else 0) | EVENT_PT, sequence, timestamp, ssrc
            )
            sink.sock.sendto(header + payload, to)
            sequence += 1
            time.sleep(0.02)
        timestamp += 1600
        time.sleep(0.1)


def test_a_validation_call_keyed_back_verifies_the_caller_id(tmp_path):
    sipp = find_sipp()
    require(sipp is not None, "sipp is not installed (Debian package sip-tester)")
    carrier_port = free_port()
    with WebhookApp() as app, RtpSink() as sink:
        app.routes["/verified"] = lambda r: (204, "text/plain", b"")
        callee = SippBackground(
            "uas_answer_keys_wait_bye.xml",
            None,
            workdir=tmp_path / "callee",
            sipp=sipp,
            local_port=carrier_port,
            calls=1,
            timeout=90,
            trace_msg=True,
            keys={"sink_port": sink.port},
        )
        server = CallswitchServer.start(
            tmp_path / "server",
            extra_args=("--trunk", f"carrier=sip:127.0.0.1:{carrier_port};prefix=+1555"),
        )
        try:
            sid, token = credentials(server)
            client = Client(
                sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}")
            )
            request = client.validation_requests.create(
                phone_number=CALLEE,
                friendly_name="the carrier's line",
                status_callback=app.url("/verified"),
            )
            assert len(request.validation_code) == 6
            # The prompt reaches the callee's media address: its source is where keys go.
            assert sink.wait_for(25, 20), server.tail()
            ours = sink.datagrams()[0][2]
            key_events(sink, ours, request.validation_code)
            [verified] = app.wait_for("/verified", 1, timeout=30)
            result = callee.wait(30)
            caller_ids = client.outgoing_caller_ids.list(phone_number=CALLEE)
            call = client.calls(request.call_sid).fetch()
        finally:
            problems = server.stop()
        assert not problems, problems
        assert result.ok(1), result.describe()

    assert RequestValidator(token).validate(
        verified.url, verified.form_dict, verified.headers["X-Twilio-Signature"]
    )
    assert verified.field("VerificationStatus") == "success"
    assert verified.field("CallSid") == request.call_sid
    [caller_id] = caller_ids
    assert verified.field("OutgoingCallerIdSid") == caller_id.sid
    assert caller_id.phone_number == CALLEE
    assert caller_id.friendly_name == "the carrier's line"
    assert call.to == CALLEE and call.status == "completed"
