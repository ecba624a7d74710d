"""The /signal endpoint (PStream) with in-memory sockets: listen, register, ringing an
SDK tab with custom parameters and answering it with an aiortc peer, calls it places,
token refresh and refusals, reconnection of a call on a new socket, ICE restart declined."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.pstream_endpoint import PStreamEndpoint
from signaling.server import SignalingServer
from signaling.tokens import mint
from tests.signaling.peer import Peer

ACCOUNT = "AC" + "a" * 32
KEY = "SK" + "b" * 32
SECRET = "0123456789abcdef0123456789abcdef"
APP = "AP" + "c" * 32


class SdkSocket:
    """What the SDK's WebSocket would see: frames as (type, payload), heartbeats counted."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.sent: asyncio.Queue = asyncio.Queue()
        self.heartbeats = 0
        self.closed = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def receive_text(self):
        item = await self.incoming.get()
        if item is None:
            raise ConnectionError("closed")
        return item

    async def send_text(self, text: str) -> None:
        if text == "\n":
            self.heartbeats += 1
            return
        frame = json.loads(text)
        assert frame["version"] == "1.6"
        await self.sent.put((frame["type"], frame["payload"]))

    async def close(self) -> None:
        self.closed.set()

    async def say(self, kind: str, **payload) -> None:
        await self.incoming.put(json.dumps({"type": kind, "version": "1.6", "payload": payload}))

    async def next(self, timeout: float = 5.0) -> tuple[str, dict]:
        return await asyncio.wait_for(self.sent.get(), timeout)

    def drop(self) -> None:
        self.incoming.put_nowait(None)


async def lookup(sid: str):
    return (ACCOUNT, SECRET) if sid == KEY else None


def token(identity: str = "alice", **options) -> str:
    options.setdefault("now", time.time())
    return mint(account_sid=ACCOUNT, key_sid=KEY, secret=SECRET, identity=identity, **options)


@pytest.fixture
async def hub():
    server = SignalingServer(lookup)
    endpoint = PStreamEndpoint(server, heartbeat_s=0.05, resume_grace_s=1.0)
    tasks = []

    async def connect(identity: str | None = "alice", register: bool = True, **options):
        socket = SdkSocket()
        tasks.append(asyncio.ensure_future(endpoint.handle(socket)))
        if identity is not None:
            await socket.say("listen", token=token(identity, **options), reconnectTimeout=0)
            kind, payload = await socket.next()
            assert kind == "connected" and payload["token"]["identity"] == identity
            if register:
                await socket.say("register", media={"audio": True})
                assert (await socket.next())[0] == "ready"
        return socket

    yield server, endpoint, connect
    await endpoint.close()
    server.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_listen_names_the_identity_and_ttl_and_register_rings(hub):
    server, _, connect = hub
    unregistered = await connect(register=False)
    assert server.tabs(ACCOUNT, "alice") == []  # listen alone is not rung
    socket = await connect("bob", ttl=120)
    assert len(server.tabs(ACCOUNT, "bob")) == 1
    await socket.say("register", media={"audio": False})
    assert (await socket.next())[0] == "offline"
    assert server.tabs(ACCOUNT, "bob") == []
    await asyncio.sleep(0.2)
    assert socket.heartbeats >= 2 and unregistered.heartbeats >= 2
    await socket.say("listen", token=token("bob", ttl=120))  # a token update
    kind, payload = await socket.next()
    assert kind == "connected" and 110 <= payload["token"]["ttl"] <= 120


@pytest.mark.parametrize(
    ("make", "code"),
    [
        (lambda: "not-a-jwt", 31204),
        (lambda: token().rsplit(".", 1)[0] + ".forged", 31204),
        (lambda: token(now=time.time() - 7200, ttl=3600), 31205),
        (
            lambda: mint(
                account_sid=ACCOUNT,
                key_sid="SK" + "9" * 32,
                secret=SECRET,
                identity="a",
                now=time.time(),
            ),
            31204,
        ),
    ],
)
async def test_a_bad_token_gets_error_then_close(hub, make, code):
    _, _, connect = hub
    socket = await connect(None)
    await socket.say("listen", token=make())
    kind, payload = await socket.next()
    assert kind == "error" and payload["error"]["code"] == code
    assert (await socket.next())[0] == "close"
    await asyncio.wait_for(socket.closed.wait(), 2)


async def test_anything_before_listen_is_refused_and_malformed_frames_get_errors(hub):
    _, _, connect = hub
    socket = await connect(None)
    await socket.say("register", media={"audio": True})
    assert (await socket.next())[1]["error"]["code"] == 31201
    await socket.incoming.put("\n")  # a heartbeat echo is fine
    await socket.incoming.put("{nope")
    assert (await socket.next())[1]["error"]["code"] == 31100
    await socket.say("listen", token=token())
    assert (await socket.next())[0] == "connected"
    await socket.say("dtmf", callsid="CA1", dtmf="1")
    kind, payload = await socket.next()
    assert kind == "error" and payload["error"]["code"] == 31404
    await socket.say("listen", token=token("mallory"))  # another identity: refused, kept
    assert (await socket.next())[1]["error"]["code"] == 31204
    await socket.say("listen", token="junk")
    assert (await socket.next())[1]["error"]["code"] == 31204
    await socket.say("register", media={"audio": True})
    assert (await socket.next())[0] == "ready"


async def test_an_incoming_invite_carries_parameters_and_is_answered(hub):
    server, _, connect = hub
    alice = await connect()
    [tab] = server.tabs(ACCOUNT, "alice")
    call = await server.ring(
        tab, from_="+15550001", to="client:alice", params={"team": "blue", "note": "hi there"}
    )
    kind, invite = await alice.next()
    assert kind == "invite" and invite["callsid"] == call.sid
    assert "a=fingerprint:sha-256" in invite["sdp"] and "a=candidate:" in invite["sdp"]
    assert invite["parameters"] == {
        "CallSid": call.sid,
        "AccountSid": ACCOUNT,
        "From": "+15550001",
        "To": "client:alice",
        "ApiVersion": "2010-04-01",
        "Params": "team=blue&note=hi%20there",
    }
    assert invite["reconnect"]
    peer = Peer()
    try:
        await alice.say("answer", callsid=call.sid, sdp=await peer.answer(invite["sdp"]))
        assert await asyncio.wait_for(asyncio.shield(call.accepted), 5) is True
        digits = []
        call.leg.on_dtmf = digits.append
        await alice.say("dtmf", callsid=call.sid, dtmf="1w#")
        await alice.say("message", callsid=call.sid, content="{}", voiceeventsid="KX" + "0" * 32)
        kind, ack = await alice.next()
        assert kind == "ack" and ack == {
            "acktype": "message",
            "callsid": call.sid,
            "voiceeventsid": "KX" + "0" * 32,
        }
        assert digits == ["1", "#"]
        call.hangup()
        assert await alice.next() == ("hangup", {"callsid": call.sid})
    finally:
        await peer.close()


async def test_reject_cancel_and_a_ringing_call_ends_with_its_socket(hub):
    server, _, connect = hub
    alice = await connect()
    [tab] = server.tabs(ACCOUNT, "alice")
    rejected = await server.ring(tab, from_="x", to="client:alice")
    await alice.next()
    await alice.say("reject", callsid=rejected.sid)
    assert await asyncio.wait_for(asyncio.shield(rejected.accepted), 2) is False
    assert rejected.end_reason == "rejected"
    canceled = await server.ring(tab, from_="x", to="client:alice")
    await alice.next()
    canceled.cancel()
    assert await alice.next() == ("cancel", {"callsid": canceled.sid})
    ringing = await server.ring(tab, from_="x", to="client:alice")
    await alice.next()
    alice.drop()
    await asyncio.wait_for(ringing.ended.wait(), 2)
    assert server.tabs(ACCOUNT, "alice") == []


async def test_a_ringing_call_is_picked_up_on_another_device_with_its_connect_token(hub):
    server, _, connect = hub
    rung = await connect()
    other = await connect("bob", register=False)  # another Device of the account
    [tab] = server.tabs(ACCOUNT, "alice")
    call = await server.ring(tab, from_="+15550001", to="client:alice")
    _, invite = await rung.next()
    first_leg = call.leg
    peer = Peer()
    try:
        offer = await peer.offer()
        await other.say(
            "invite", callsid=call.sid, reconnect=invite["reconnect"], sdp=offer, twilio={}
        )
        kind, answer = await other.next()
        assert (
            kind == "answer" and answer["callsid"] == call.sid and "a=fingerprint" in answer["sdp"]
        )
        assert await rung.next() == ("cancel", {"callsid": call.sid})
        assert await asyncio.wait_for(asyncio.shield(call.accepted), 2) is True
        assert call.leg is not first_leg and first_leg.closed and not call.ended.is_set()
        await peer.accept(answer["sdp"])
        await other.say("hangup", callsid=call.sid)
        await asyncio.wait_for(call.ended.wait(), 2)
        assert call.end_reason == "hangup"
    finally:
        await peer.close()


async def place(hub_server, socket, peer, params="To=%2B15551234567&team=blue"):
    await socket.say("invite", callsid="TJS-1", sdp=await peer.offer(), twilio={"params": params})
    kind, ringing = await socket.next()
    assert kind == "ringing"
    kind, answer = await socket.next()
    assert kind == "answer" and answer["callsid"] == ringing["callsid"]
    await peer.accept(answer["sdp"])
    return answer


async def test_a_call_placed_runs_the_application_with_its_params(hub):
    server, _, connect = hub
    placed = []
    done = asyncio.Event()

    async def on_dial(request):
        placed.append(request)
        await done.wait()

    server.on_dial = on_dial
    alice = await connect(application_sid=APP, params={"from_token": "1", "team": "red"})
    peer = Peer()
    try:
        answer = await place(server, alice, peer)
        for _ in range(100):
            if placed:
                break
            await asyncio.sleep(0.01)
        [request] = placed
        assert request.to == "+15551234567"
        assert request.params == {"from_token": "1", "team": "blue"}
        assert request.call.sid == answer["callsid"] and answer["reconnect"]
        await alice.say("hangup", callsid="TJS-1")  # the temporary id names it too
        await asyncio.wait_for(request.call.ended.wait(), 2)
    finally:
        done.set()
        await peer.close()


async def test_no_application_is_a_hangup_with_31001(hub):
    server, _, connect = hub
    alice = await connect()
    server.on_dial = None
    await alice.say("invite", callsid="TJS-2", sdp="v=0", twilio={})
    kind, payload = await alice.next()
    assert kind == "hangup" and payload["callsid"] == "TJS-2"
    assert payload["error"]["code"] == 31001


async def test_an_application_that_cannot_run_hangs_up_with_31001(hub):
    server, _, connect = hub

    async def on_dial(request):
        request.call.status("failed")  # as run_browser_call does without an application

    server.on_dial = on_dial
    alice = await connect(application_sid=APP)
    peer = Peer()
    try:
        answer = await place(server, alice, peer)
        kind, payload = await alice.next()
        assert kind == "hangup" and payload["callsid"] == answer["callsid"]
        assert payload["error"]["code"] == 31001
    finally:
        await peer.close()


async def test_a_call_survives_its_socket_and_resumes_on_a_new_one(hub):
    server, _, connect = hub
    done = asyncio.Event()
    calls = []

    async def on_dial(request):
        calls.append(request.call)
        await done.wait()

    server.on_dial = on_dial
    alice = await connect(application_sid=APP)
    peer = Peer()
    try:
        answer = await place(server, alice, peer)
        sid, reconnect = answer["callsid"], answer["reconnect"]
        alice.drop()
        await asyncio.wait_for(alice.closed.wait(), 2)
        again = await connect(application_sid=APP, register=False)
        mallory = await connect("mallory", register=False)
        await mallory.say("invite", callsid=sid, reconnect=reconnect, sdp="v=0", twilio={})
        kind, payload = await mallory.next()
        assert kind == "hangup" and payload["error"]["code"] == 31404
        await again.say("invite", callsid=sid, reconnect=reconnect, sdp="v=0", twilio={})
        assert await again.next() == ("answer", {"callsid": sid, "reconnect": reconnect})
        await asyncio.sleep(1.2)  # past the grace: resumed, so still up
        [call] = calls
        assert not call.ended.is_set()
        await again.say("reinvite", callsid=sid, sdp="v=0")
        kind, payload = await again.next()
        assert kind == "hangup" and payload["error"]["code"] == 31003
        await asyncio.wait_for(call.ended.wait(), 2)
        assert call.end_reason == "ice-restart"
    finally:
        done.set()
        await peer.close()


async def test_a_dropped_call_not_resumed_ends_after_the_grace(hub):
    server, endpoint, connect = hub
    done = asyncio.Event()
    calls = []

    async def on_dial(request):
        calls.append(request.call)
        await done.wait()

    server.on_dial = on_dial
    alice = await connect(application_sid=APP)
    peer = Peer()
    try:
        await place(server, alice, peer)
        for _ in range(100):
            if calls:
                break
            await asyncio.sleep(0.01)
        alice.drop()
        await asyncio.sleep(0.5)
        assert not calls[0].ended.is_set()  # held for the grace (1 s here)
        await asyncio.wait_for(calls[0].ended.wait(), 3)
        assert calls[0].end_reason == "client-gone"
        assert endpoint.counts() == 0
    finally:
        done.set()
        await peer.close()


async def test_a_socket_that_does_not_read_is_let_go(hub, monkeypatch):
    import signaling.pstream_session as session_module

    monkeypatch.setattr(session_module, "SEND_QUEUE", 4)
    server, _, connect = hub
    socket = await connect()
    stuck = asyncio.Event()

    async def never_sends(text: str) -> None:
        await stuck.wait()

    socket.send_text = never_sends
    for _ in range(10):  # each malformed frame queues an error nobody reads
        await socket.incoming.put("junk")
    await asyncio.wait_for(socket.closed.wait(), 2)
    socket.drop()
    for _ in range(50):
        if not server.tabs(ACCOUNT, "alice"):
            break
        await asyncio.sleep(0.02)
    assert server.tabs(ACCOUNT, "alice") == []


_KINDS = ["listen", "register", "invite", "answer", "reject", "hangup", "dtmf", "reinvite"]
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=12),
    st.sampled_from(["CA1", "TJS-1", "v=0", "1#", "KX1"]),
    st.dictionaries(st.sampled_from(["audio", "params"]), st.booleans() | st.text(max_size=8)),
)
_FRAMES = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.builds(
            lambda kind, payload: json.dumps({"type": kind, "payload": payload}),
            st.sampled_from([*_KINDS, "message", "nosuch"]),
            st.dictionaries(
                st.sampled_from(
                    ["callsid", "sdp", "token", "media", "twilio", "reconnect", "dtmf", "message"]
                ),
                _VALUES,
                max_size=5,
            ),
        ),
    ),
    max_size=12,
)


@settings(max_examples=40)
@given(_FRAMES)
def test_whatever_a_listening_socket_sends_it_is_answered_and_stays_up(frames):
    async def run() -> None:
        server = SignalingServer(lookup)
        endpoint = PStreamEndpoint(server, heartbeat_s=60)
        socket = SdkSocket()
        task = asyncio.ensure_future(endpoint.handle(socket))
        try:
            await socket.say("listen", token=token())
            assert (await socket.next())[0] == "connected"
            for text in frames:
                await socket.incoming.put(text)
            await socket.say("register", media={"audio": True})
            while (await socket.next())[0] != "ready":  # every frame before got its answer
                pass
            assert not task.done()
        finally:
            await endpoint.close()
            server.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    asyncio.run(run())
