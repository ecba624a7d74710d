"""SMS as SIP MESSAGE (RFC 3428) through a trunk, to a SIPp UAS, and inbound MESSAGE."""

from __future__ import annotations

import socket
import time

from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.peers import require

from .harness import CallswitchServer, free_port
from .sipp import SippBackground, find_sipp
from .test_voice_webhooks import credentials, rest_client
from .webhook_app import WebhookApp


def _wait_status(client: Client, sid: str, status: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        message = client.messages(sid).fetch()
        if message.status == status or time.monotonic() > deadline:
            return message
        time.sleep(0.05)


def test_outbound_sms_reaches_a_sipp_uas_as_sip_message(tmp_path):
    sipp = find_sipp()
    require(sipp is not None, "sipp is not installed (Debian package sip-tester)")
    port = free_port()
    uas = SippBackground(
        "uas_message.xml",
        None,
        workdir=tmp_path / "uas",
        sipp=sipp,
        local_port=port,
        calls=1,
        timeout=30,
        trace_msg=True,
    )
    server = CallswitchServer.start(
        tmp_path / "node", extra_args=("--trunk", f"gw=sip:127.0.0.1:{port};prefix=+1555")
    )
    try:
        sid, token = credentials(server)
        client = rest_client(server, sid, token)
        message = client.messages.create(
            to="+15550001111", from_="+14155550100", body="Hello over SIP €"
        )
        done = _wait_status(client, message.sid, "delivered")
        assert done.status == "delivered"
        result = uas.wait(10)
        assert result.ok(1), result.describe()
        log = (uas.rundir / "messages.log").read_text(errors="replace")
        assert "MESSAGE sip:+15550001111@127.0.0.1:" in log
        assert "From: <sip:+14155550100@" in log
        assert "Hello over SIP €" in log
    finally:
        uas.kill()
        problems = server.stop()
    assert not problems, problems


def test_inbound_sip_message_reaches_sms_url(tmp_path):
    with WebhookApp() as app:
        app.routes["/sms"] = lambda r: (200, "text/xml", b"<Response/>")
        server = CallswitchServer.start(tmp_path / "node")
        try:
            sid, token = credentials(server)
            client = rest_client(server, sid, token)
            ours = "+14155550166"
            client.incoming_phone_numbers.create(phone_number=ours, sms_url=app.url("/sms"))
            body = b"hi from a phone"
            request = (
                f"MESSAGE sip:{ours}@127.0.0.1:{server.sip_port} SIP/2.0\r\n"
                "Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK-sms1;rport\r\n"
                "Max-Forwards: 70\r\n"
                "From: <sip:+15550007777@127.0.0.1>;tag=x1\r\n"
                f"To: <sip:{ours}@127.0.0.1>\r\n"
                "Call-ID: sms-1@127.0.0.1\r\n"
                "CSeq: 1 MESSAGE\r\n"
                "Content-Type: text/plain;charset=UTF-8\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                sock.bind(("127.0.0.1", 0))
                sock.settimeout(20)
                local = sock.getsockname()[1]
                sock.sendto(request.replace("{port}", str(local)).encode() + body, server.sip_addr)
                answer = sock.recv(4096).decode()
                assert answer.startswith("SIP/2.0 200"), answer
                sock.sendto(
                    request.replace("{port}", str(local))
                    .replace(ours, "+19999999999")
                    .replace("sms1", "sms2")
                    .encode()
                    + body,
                    server.sip_addr,
                )
                assert sock.recv(4096).decode().startswith("SIP/2.0 404")
            webhook = app.wait_for("/sms", timeout=30)[0]
            assert webhook.field("Body") == "hi from a phone"
            assert webhook.field("From") == "+15550007777" and webhook.field("To") == ours
            assert RequestValidator(token).validate(
                webhook.url, webhook.form_dict, webhook.headers["X-Twilio-Signature"]
            )
        finally:
            problems = server.stop()
        assert not problems, problems
