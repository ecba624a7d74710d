"""MMS as SIP MESSAGE with a multipart/mixed body: inbound media stored, named on the
SmsUrl webhook and served; outbound MediaUrl fetched and sent to a SIPp UAS."""

from __future__ import annotations

import socket
import time

import httpx
from twilio.request_validator import RequestValidator

from tests.peers import require

from .harness import CallswitchServer, free_port
from .sipp import SippBackground, find_sipp
from .test_voice_webhooks import credentials, rest_client
from .webhook_app import WebhookApp

# Larger than a text MESSAGE may be (16 KiB): media come over TCP.
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 96
BOUNDARY = "mms-boundary-1"


def _multipart(text: str, media: list[tuple[str, bytes]]) -> bytes:
    parts = [f"--{BOUNDARY}\r\nContent-Type: text/plain;charset=UTF-8\r\n\r\n{text}\r\n".encode()]
    for content_type, content in media:
        head = f"--{BOUNDARY}\r\nContent-Type: {content_type}\r\n"
        parts.append(head.encode() + b"Content-Transfer-Encoding: binary\r\n\r\n" + content)
        parts.append(b"\r\n")
    parts.append(f"--{BOUNDARY}--\r\n".encode())
    return b"".join(parts)


def _message_over_tcp(server: CallswitchServer, to: str, body: bytes) -> str:
    with socket.create_connection(server.sip_addr, timeout=20) as sock:
        local = sock.getsockname()[1]
        head = (
            f"MESSAGE sip:{to}@127.0.0.1:{server.sip_port};transport=tcp SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP 127.0.0.1:{local};branch=z9hG4bK-mms1;rport\r\n"
            "Max-Forwards: 70\r\n"
            "From: <sip:+15550007777@127.0.0.1>;tag=m1\r\n"
            f"To: <sip:{to}@127.0.0.1>\r\n"
            "Call-ID: mms-1@127.0.0.1\r\n"
            "CSeq: 1 MESSAGE\r\n"
            f'Content-Type: multipart/mixed;boundary="{BOUNDARY}"\r\n'
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        sock.sendall(head.encode() + body)
        return sock.recv(4096).decode(errors="replace")


def test_inbound_mms_media_are_stored_and_posted_to_sms_url(tmp_path):
    with WebhookApp() as app:
        app.routes["/mms"] = lambda r: (200, "text/xml", b"<Response/>")
        server = CallswitchServer.start(tmp_path / "node")
        try:
            sid, token = credentials(server)
            client = rest_client(server, sid, token)
            ours = "+14155550167"
            client.incoming_phone_numbers.create(phone_number=ours, sms_url=app.url("/mms"))
            body = _multipart("a picture", [("image/png", PNG), ("application/x-evil", b"MZ")])
            answer = _message_over_tcp(server, ours, body)
            assert answer.startswith("SIP/2.0 200"), answer
            webhook = app.wait_for("/mms", timeout=30)[0]
            fields = webhook.form_dict
            message_sid = fields["MessageSid"]
            media = client.messages(message_sid).media.list()
            served = httpx.get(fields["MediaUrl0"], timeout=10)
            message = client.messages(message_sid).fetch()
        finally:
            problems = server.stop()
        assert not problems, problems

    assert RequestValidator(token).validate(
        webhook.url, webhook.form_dict, webhook.headers["X-Twilio-Signature"]
    )
    assert fields["Body"] == "a picture" and fields["From"] == "+15550007777"
    # Twilio's types only: the executable part is dropped.
    assert fields["NumMedia"] == "1" and fields["MediaContentType0"] == "image/png"
    assert message_sid.startswith("MM") and message.num_media == "1"
    [medium] = media
    assert medium.content_type == "image/png"
    assert fields["MediaUrl0"].endswith(medium.uri.removesuffix(".json"))
    assert served.status_code == 200 and served.content == PNG
    assert served.headers["content-type"] == "image/png"


def test_outbound_media_url_goes_to_the_trunk_as_a_multipart_message(tmp_path):
    sipp = find_sipp()
    require(sipp is not None, "sipp is not installed (Debian package sip-tester)")
    # No NUL byte: SIPp's log of a message stops at the first.
    small = b"\x89PNG\r\n\x1a\n" + bytes(range(32, 127)) * 2
    port = free_port()
    with WebhookApp() as app:
        app.routes["/pic.png"] = lambda r: (200, "image/png", small)
        uas = SippBackground(
            "uas_mms_message.xml",
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
                to="+15550001112",
                from_="+14155550100",
                body="see this",
                media_url=[app.url("/pic.png")],
            )
            deadline = time.monotonic() + 30
            while client.messages(message.sid).fetch().status != "delivered":
                assert time.monotonic() < deadline, client.messages(message.sid).fetch().status
                time.sleep(0.05)
            result = uas.wait(10)
            assert result.ok(1), result.describe()
            log = (uas.rundir / "messages.log").read_bytes()
            [medium] = client.messages(message.sid).media.list()
        finally:
            uas.kill()
            problems = server.stop()
        assert not problems, problems
    assert b"Content-Type: multipart/mixed;boundary=" in log
    assert b"see this" in log and b"Content-Type: image/png" in log
    assert small in log
    assert medium.content_type == "image/png"
