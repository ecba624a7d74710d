"""SMS through an independent SMSC: Debian's Net::SMPP (libnet-smpp-perl) in server mode.

The SMSC is ``peers/smsc.pl``; it logs every submit_sm it receives and answers each
with a delivery receipt. callswitch is a real ``callswitch serve`` process with
``--smpp``; the official twilio library sends the messages.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from twilio.request_validator import RequestValidator
from twilio.rest import Client
from twilio.twiml.messaging_response import MessagingResponse

from tests.peers import require

from .harness import CallswitchServer, free_port
from .test_voice_webhooks import credentials, rest_client
from .webhook_app import WebhookApp

SMSC_SCRIPT = Path(__file__).parent / "peers" / "smsc.pl"


def _has_net_smpp() -> bool:
    if shutil.which("perl") is None:
        return False
    return subprocess.run(["perl", "-MNet::SMPP", "-e", "1"], capture_output=True).returncode == 0


class Smsc:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.log = directory / "smsc.log"
        self.log.touch()
        self.proc = subprocess.Popen(
            ["perl", str(SMSC_SCRIPT), str(self.port), str(self.log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.wait_for("listening")

    def lines(self, kind: str) -> list[list[str]]:
        text = self.log.read_text()
        # The SMSC may be writing a line as we read: only whole lines count.
        complete = text[: text.rfind("\n") + 1]
        return [line.split("\t") for line in complete.splitlines() if line.split("\t")[0] == kind]

    def wait_for(self, kind: str, count: int = 1, timeout: float = 30.0) -> list[list[str]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.lines(kind)
            if len(found) >= count:
                return found
            assert self.proc.poll() is None, "the SMSC exited"
            time.sleep(0.05)
        return self.lines(kind)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def smsc(tmp_path):
    require(_has_net_smpp(), "perl Net::SMPP is not installed (Debian libnet-smpp-perl)")
    peer = Smsc(tmp_path)
    yield peer
    peer.stop()


def _start(tmp_path: Path, smsc: Smsc, *extra: str) -> CallswitchServer:
    return CallswitchServer.start(
        tmp_path / "node",
        extra_args=(
            "--smpp",
            f"perl=smpp://esme:secret@127.0.0.1:{smsc.port};system_type=cs;window=10",
            *extra,
        ),
    )


def _client(server: CallswitchServer) -> tuple[Client, str, str]:
    sid, token = credentials(server)
    client = rest_client(server, sid, token)
    return client, sid, token


def _wait_status(client: Client, sid: str, status: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        message = client.messages(sid).fetch()
        if message.status == status or time.monotonic() > deadline:
            return message
        time.sleep(0.05)


def test_submit_sm_receipt_delivered_and_signed_callbacks(smsc, tmp_path):
    with WebhookApp() as app:
        app.routes["/status"] = lambda r: (204, "text/plain", b"")
        server = _start(tmp_path, smsc)
        try:
            client, _, token = _client(server)
            bound = smsc.wait_for("bound")
            assert bound[0][1:] == ["esme", "secret", "cs"]
            message = client.messages.create(
                to="+15550001111",
                from_="+14155550100",
                body="Hello from callswitch",
                status_callback=app.url("/status"),
            )
            submit = smsc.wait_for("submit")[0]
            assert submit[2:7] == ["14155550100", "15550001111", "0", "0", "1"]
            assert bytes.fromhex(submit[7]) == b"Hello from callswitch"
            done = _wait_status(client, message.sid, "delivered")
            assert done.status == "delivered"
            assert done.price == "-0.00790"
            callbacks = app.wait_for("/status", 3, timeout=30)
            assert [r.field("MessageStatus") for r in callbacks] == ["sending", "sent", "delivered"]
            validator = RequestValidator(token)
            for request in callbacks:
                assert validator.validate(
                    request.url, request.form_dict, request.headers["X-Twilio-Signature"]
                )
            failed = client.messages.create(to="+15550009999", from_="+14155550100", body="x")
            done = _wait_status(client, failed.sid, "undelivered")
            assert (done.status, done.error_code) == ("undelivered", 30003)
        finally:
            problems = server.stop()
        assert not problems, problems


def test_400_characters_arrive_as_3_concatenated_parts(smsc, tmp_path):
    server = _start(tmp_path, smsc)
    try:
        client, _, _ = _client(server)
        smsc.wait_for("bound")
        body = "".join(chr(ord("a") + i % 26) for i in range(400))
        message = client.messages.create(to="+15550001112", from_="+14155550100", body=body)
        assert message.num_segments == "3"
        parts = smsc.wait_for("submit", 3)
        assert len(parts) == 3
        payloads = [bytes.fromhex(p[7]) for p in parts]
        references = set()
        for number, (part, payload) in enumerate(zip(parts, payloads, strict=True), start=1):
            assert int(part[4]) & 0x40  # UDHI
            udh = payload[:6]
            assert udh[:3] == b"\x05\x00\x03" and udh[4:] == bytes((3, number))
            references.add(udh[3])
        assert len(references) == 1
        assert b"".join(p[6:] for p in payloads).decode() == body
        done = _wait_status(client, message.sid, "delivered")
        assert (done.status, done.price) == ("delivered", "-0.02370")
    finally:
        problems = server.stop()
    assert not problems, problems


def test_mobile_originated_deliver_sm_reaches_sms_url_and_reply_goes_back(smsc, tmp_path):
    with WebhookApp() as app:

        def answer(request):
            reply = MessagingResponse()
            reply.message(f"got: {request.field('Body')}")
            return 200, "text/xml", str(reply).encode()

        app.routes["/sms"] = answer
        server = _start(tmp_path, smsc)
        try:
            client, _, token = _client(server)
            smsc.wait_for("bound")
            ours = "+14155550123"
            client.incoming_phone_numbers.create(phone_number=ours, sms_url=app.url("/sms"))
            # The phone answers an "echo:" message with a message of its own to our number.
            client.messages.create(to="+15550002222", from_=ours, body="echo:ping")
            request = app.wait_for("/sms", timeout=30)[0]
            assert RequestValidator(token).validate(
                request.url, request.form_dict, request.headers["X-Twilio-Signature"]
            )
            assert request.field("Body") == "reply to ping"
            assert request.field("From") == "+15550002222" and request.field("To") == ours
            # ... and the TwiML reply leaves through the SMSC.
            submits = smsc.wait_for("submit", 2)
            assert bytes.fromhex(submits[1][7]) == b"got: reply to ping"
            assert submits[1][3] == "15550002222"
            inbound = [m for m in client.messages.list(to=ours) if m.direction == "inbound"]
            assert inbound and inbound[0].status == "received"
        finally:
            problems = server.stop()
        assert not problems, problems


def test_messages_wait_for_the_smsc_and_survive_a_restart(tmp_path):
    require(_has_net_smpp(), "perl Net::SMPP is not installed (Debian libnet-smpp-perl)")
    directory = tmp_path / "smsc"
    directory.mkdir()
    port = free_port()
    server = CallswitchServer.start(
        tmp_path / "node",
        extra_args=("--smpp", f"perl=smpp://esme:secret@127.0.0.1:{port};window=5"),
    )
    try:
        client, account_sid, token = _client(server)
        sids = [
            client.messages.create(to="+15550003333", from_="+14155550100", body=f"m{i}").sid
            for i in range(3)
        ]
        time.sleep(0.5)
        assert {client.messages(s).fetch().status for s in sids} == {"queued"}
    finally:
        problems = server.stop()
    assert not problems, problems
    # The SMSC comes up while callswitch is down; the restarted node sends everything.
    smsc = Smsc.__new__(Smsc)
    smsc.port = port
    smsc.log = directory / "smsc.log"
    smsc.log.touch()
    smsc.proc = subprocess.Popen(
        ["perl", str(SMSC_SCRIPT), str(port), str(smsc.log)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        smsc.wait_for("listening")
        second = CallswitchServer.start(
            tmp_path / "node",
            extra_args=("--smpp", f"perl=smpp://esme:secret@127.0.0.1:{port};window=5"),
        )
        try:
            client = rest_client(second, account_sid, token)
            assert len(smsc.wait_for("submit", 3, timeout=30)) == 3
            for sid in sids:
                assert _wait_status(client, sid, "delivered").status == "delivered"
        finally:
            problems = second.stop()
        assert not problems, problems
    finally:
        smsc.stop()


def test_reconnects_after_the_smsc_drops_and_sends_what_waited(tmp_path):
    require(_has_net_smpp(), "perl Net::SMPP is not installed (Debian libnet-smpp-perl)")
    first_dir = tmp_path / "first"
    first_dir.mkdir()
    smsc = Smsc(first_dir)
    server = _start(tmp_path, smsc)
    try:
        client, _, _ = _client(server)
        smsc.wait_for("bound")
        smsc.stop()  # the link drops
        sid = client.messages.create(to="+15550004444", from_="+14155550100", body="later").sid
        # The sender takes it ('sending'), finds no link and puts it back to wait for
        # one: queued, not failed (on a busy machine the node may notice late).
        assert server.wait_events("sms.retry", timeout=15), server.tail()
        assert client.messages(sid).fetch().status == "queued"
        # The SMSC comes back on the same port: the carrier binds again (backoff) and
        # sends the message that waited.
        second_dir = tmp_path / "second"
        second_dir.mkdir()
        again = Smsc.__new__(Smsc)
        again.port = smsc.port
        again.log = second_dir / "smsc.log"
        again.log.touch()
        again.proc = subprocess.Popen(
            ["perl", str(SMSC_SCRIPT), str(again.port), str(again.log)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            again.wait_for("listening")
            assert again.wait_for("bound", timeout=40)
            assert _wait_status(client, sid, "delivered", timeout=30).status == "delivered"
            assert len(server.events("smpp.bound")) >= 2
        finally:
            again.stop()
    finally:
        problems = server.stop()
    assert not problems, problems
