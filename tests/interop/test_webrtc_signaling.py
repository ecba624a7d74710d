"""The signaling WebSocket of a running server: tokens that must be refused, and
messages that must get an error without disturbing anyone else."""

from __future__ import annotations

import asyncio
import time

import pytest
from twilio.jwt.access_token import AccessToken
from twilio.jwt.access_token.grants import VoiceGrant

from tests.peers import require

from .test_voice_webhooks import rest_client
from .webrtc_client import SignalingClient, access_token

pytestmark = pytest.mark.callswitch_shared


@pytest.fixture(autouse=True)
def _needs_aiortc():
    try:
        import aiortc  # noqa: F401
    except ImportError:
        require(False, "aiortc is not installed (pip install aiortc)")


def _token(account_sid: str, key_sid: str, secret: str, **options) -> str:
    token = AccessToken(account_sid, key_sid, secret, identity="alice", **options)
    token.add_grant(VoiceGrant(incoming_allow=True))
    return token.to_jwt()


async def _refused(server, token: str) -> dict:
    tab = await SignalingClient.open(server)
    try:
        answer = await tab.register(token)
        with pytest.raises(Exception):  # noqa: B017 - the server closes the socket
            await tab.next(timeout=3)
        return answer
    finally:
        await tab.close()


async def test_forged_expired_and_wrong_account_tokens_are_refused(server):
    client = rest_client(server)
    key = client.new_keys.create(friendly_name="tokens")
    account = client.account_sid
    forged = await _refused(server, _token(account, key.sid, "not-the-secret-of-this-key-at-all"))
    assert (forged["type"], forged["code"]) == ("error", 20107)
    expired = await _refused(server, _token(account, key.sid, key.secret, ttl=-5))
    assert (expired["type"], expired["code"]) == ("error", 20104)
    other_account = "AC" + "0" * 32
    wrong = await _refused(server, _token(other_account, key.sid, key.secret))
    assert (wrong["type"], wrong["code"]) == ("error", 20103)
    unknown = await _refused(server, _token(account, "SK" + "0" * 32, key.secret))
    assert (unknown["type"], unknown["code"]) == ("error", 20103)
    garbage = await _refused(server, "eyJ.not.a-token")
    assert garbage["type"] == "error" and 20101 <= garbage["code"] <= 20107
    client.keys(key.sid).delete()  # a deleted key's tokens stop working at once
    revoked = await _refused(server, _token(account, key.sid, key.secret))
    assert revoked["code"] == 20103


async def test_malformed_messages_get_errors_and_disturb_nobody(server):
    client = rest_client(server)
    alice_token = access_token(server, "alice")
    alice, alice2, bob = [await SignalingClient.open(server) for _ in range(3)]
    try:
        before = await alice.register(alice_token)
        assert before["type"] == "registered"
        assert (await alice2.register(alice_token))["type"] == "registered"
        assert (await bob.register(access_token(server, "bob")))["type"] == "registered"

        # Before registering, nothing else is taken.
        await bob.ws.send("{}")
        assert (await bob.next())["code"] == 31100
        for text in (
            "not json",
            "[]",
            '{"type":"accept"}',
            '{"type":"nope","call":"x"}',
            '{"type":"dtmf","call":"CA1","digits":"<script>"}',
            "x" * 70000,
        ):
            await alice.ws.send(text)
            error = await alice.next()
            assert error["type"] == "error" and error["code"] == 31100, (text[:20], error)
        await alice.ws.send(b"\x00\xff binary")
        assert (await alice.next())["type"] == "error"
        await alice.send(type="hangup", call="CA" + "1" * 32)
        assert (await alice.next())["code"] == 31404

        # Both of alice's tabs still ring for a REST call to client:alice.
        call = client.calls.create(
            to="client:alice",
            from_="+15005550006",
            twiml="<Response><Pause length='4'/></Response>",
        )
        first = await alice.next("incoming")
        second = await alice2.next("incoming")
        assert first["call"] == second["call"] == call.sid and first["from"] == "+15005550006"
        # bob cannot touch alice's call.
        await bob.send(type="hangup", call=call.sid)
        assert (await bob.next())["code"] == 31404
        from tests.signaling.peer import Peer

        peer = Peer(440.0)
        await alice.send(type="accept", call=call.sid, sdp=await peer.answer(first["sdp"]))
        assert (await alice.next("status"))["status"] == "in-progress"
        cancel = await alice2.next("cancel")
        assert cancel["call"] == call.sid
        deadline = time.monotonic() + 10
        while client.calls(call.sid).fetch().status != "in-progress":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        ended = await alice.next("hangup", timeout=10)  # the TwiML ends after its pause
        assert ended["call"] == call.sid
        await peer.close()
        deadline = time.monotonic() + 10
        while (fetched := client.calls(call.sid).fetch()).status != "completed":
            assert time.monotonic() < deadline, fetched.status
            await asyncio.sleep(0.1)
        assert int(fetched.duration) >= 3
        assert not [m for m in bob.messages if m["type"] == "incoming"]
    finally:
        for tab in (alice, alice2, bob):
            await tab.close()
