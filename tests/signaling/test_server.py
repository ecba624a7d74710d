"""SignalingServer with in-memory sockets: registration, refusals, a tab's own calls."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

import signaling.server as server_module
from signaling.server import SignalingServer
from signaling.tokens import mint
from tests.signaling.peer import Peer

ACCOUNT = "AC" + "a" * 32
KEY = "SK" + "b" * 32
SECRET = "0123456789abcdef0123456789abcdef"


class FakeSocket:
    def __init__(self) -> None:
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.sent: asyncio.Queue = asyncio.Queue()
        self.closed = asyncio.Event()

    async def accept(self) -> None:
        pass

    async def receive_text(self):
        item = await self.incoming.get()
        if item is None:
            raise ConnectionError("closed")
        return item

    async def send_text(self, text: str) -> None:
        await self.sent.put(json.loads(text))

    async def close(self) -> None:
        self.closed.set()

    async def say(self, **message) -> None:
        await self.incoming.put(json.dumps(message))

    async def next(self, timeout: float = 5.0) -> dict:
        return await asyncio.wait_for(self.sent.get(), timeout)


async def lookup(sid: str):
    return (ACCOUNT, SECRET) if sid == KEY else None


def token(identity: str, **options) -> str:
    return mint(
        account_sid=ACCOUNT,
        key_sid=KEY,
        secret=SECRET,
        identity=identity,
        now=time.time(),
        **options,
    )


@pytest.fixture
async def hub():
    server = SignalingServer(lookup)
    tasks = []

    async def connect(identity: str | None = None) -> FakeSocket:
        socket = FakeSocket()
        tasks.append(asyncio.ensure_future(server.handle(socket)))
        if identity is not None:
            await socket.say(type="register", token=token(identity))
            assert (await socket.next())["type"] == "registered"
        return socket

    yield server, connect
    server.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_tab_that_never_registers_is_let_go(hub, monkeypatch):
    monkeypatch.setattr(server_module, "REGISTER_TIMEOUT_S", 0.3)
    _, connect = hub
    socket = await connect()
    for _ in range(3):  # malformed messages do not buy more time
        await socket.incoming.put("junk")
        assert (await socket.next())["code"] == 31100
    assert (await socket.next())["code"] == 31201
    await asyncio.wait_for(socket.closed.wait(), 2)


async def test_tabs_are_found_by_account_and_identity_and_only_while_connected(hub):
    server, connect = hub
    alice = await connect("alice")
    await connect("alice")
    assert len(server.tabs(ACCOUNT, "alice")) == 2
    assert server.tabs("AC" + "c" * 32, "alice") == []
    assert server.tabs(ACCOUNT, "bob") == []
    await alice.incoming.put(None)  # the socket closes
    for _ in range(50):
        if len(server.tabs(ACCOUNT, "alice")) == 1:
            break
        await asyncio.sleep(0.02)
    assert len(server.tabs(ACCOUNT, "alice")) == 1


async def test_a_token_without_incoming_is_not_rung(hub):
    server, connect = hub
    socket = await connect()
    await socket.say(type="register", token=token("carol", incoming_allow=False))
    assert (await socket.next())["incoming"] is False
    assert server.tabs(ACCOUNT, "carol") == []


async def test_ring_accept_and_only_the_owner_acts_on_the_call(hub):
    server, connect = hub
    alice = await connect("alice")
    bob = await connect("bob")
    [tab] = server.tabs(ACCOUNT, "alice")
    call = await server.ring(tab, from_="+15550001", to="client:alice")
    incoming = await alice.next()
    assert incoming["type"] == "incoming" and incoming["call"] == call.sid
    await bob.say(type="accept", call=call.sid, sdp="v=0")
    assert (await bob.next())["code"] == 31404
    await bob.say(type="hangup", call=call.sid)
    assert (await bob.next())["code"] == 31404
    assert not call.ended.is_set()
    peer = Peer()
    try:
        await alice.say(type="accept", call=call.sid, sdp=await peer.answer(incoming["sdp"]))
        assert await asyncio.wait_for(asyncio.shield(call.accepted), 5) is True
        await alice.say(type="accept", call=call.sid, sdp="v=0")  # twice: not ringing
        assert (await alice.next())["code"] == 31100
        await alice.say(type="hangup", call=call.sid)
        await asyncio.wait_for(call.ended.wait(), 2)
        assert call.end_reason == "hangup"
    finally:
        await peer.close()


async def test_reject_and_bad_answers(hub):
    server, connect = hub
    alice = await connect("alice")
    [tab] = server.tabs(ACCOUNT, "alice")
    rejected = await server.ring(tab, from_="x", to="client:alice")
    await alice.next()
    await alice.say(type="reject", call=rejected.sid)
    assert await asyncio.wait_for(asyncio.shield(rejected.accepted), 2) is False
    assert rejected.end_reason == "rejected"
    broken = await server.ring(tab, from_="x", to="client:alice")
    await alice.next()
    await alice.say(type="accept", call=broken.sid, sdp="not sdp")
    ended, error = await alice.next(), await alice.next()
    assert ended == {"type": "hangup", "call": broken.sid, "reason": "failed"}
    assert error["code"] == 31005 and error["call"] == broken.sid
    assert broken.ended.is_set()


async def test_calling_out_without_an_application_is_refused(hub):
    _, connect = hub
    alice = await connect("alice")
    await alice.say(type="call", ref="r", sdp="v=0", to="+1555")
    assert (await alice.next())["code"] == 20106


async def test_a_fresh_token_for_the_same_identity_replaces_the_old(hub):
    server, connect = hub
    alice = await connect("alice")
    await alice.say(type="register", token=token("alice", ttl=7200))
    refreshed = await alice.next()
    assert refreshed["type"] == "registered" and refreshed["expires"] > time.time() + 7000
    await alice.say(type="register", token=token("mallory"))
    assert (await alice.next())["code"] == 31100
    await alice.say(type="register", token=token("alice", ttl=-5))
    assert (await alice.next())["code"] == 20104
    [tab] = server.tabs(ACCOUNT, "alice")
    assert tab.token.expires > time.time() + 7000


async def test_a_tab_that_does_not_read_is_disconnected(hub, monkeypatch):
    monkeypatch.setattr(server_module, "SEND_QUEUE", 4)
    server, connect = hub
    socket = await connect("alice")
    stuck = asyncio.Event()

    async def never_sends(text: str) -> None:
        await stuck.wait()

    socket.send_text = never_sends
    for _ in range(10):  # each malformed message queues an error nobody reads
        await socket.incoming.put("junk")
    await asyncio.wait_for(socket.closed.wait(), 2)
    await socket.incoming.put(None)
    for _ in range(50):
        if not server.tabs(ACCOUNT, "alice"):
            break
        await asyncio.sleep(0.02)
    assert server.tabs(ACCOUNT, "alice") == []


async def test_a_registered_tab_is_told_of_the_legs_servers_and_its_accounts_relay():
    from signaling.webrtc_leg import IceServer

    asked = []

    def relay(account_sid: str) -> list[IceServer]:
        asked.append(account_sid)
        return [IceServer("turn:relay.example:3478?transport=udp", f"9:{account_sid}", "pw")]

    server = SignalingServer(
        lookup, ice_servers=[IceServer("stun:stun.example:3478")], browser_ice_servers=relay
    )
    socket = FakeSocket()
    task = asyncio.ensure_future(server.handle(socket))
    try:
        await socket.say(type="register", token=token("alice"))
        registered = await socket.next()
    finally:
        server.close()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert registered["type"] == "registered"
    assert registered["ice_servers"] == [
        {"urls": "stun:stun.example:3478"},
        {
            "urls": "turn:relay.example:3478?transport=udp",
            "username": f"9:{ACCOUNT}",
            "credential": "pw",
        },
    ]
    assert asked == [ACCOUNT]
    assert server.ice_servers == [IceServer("stun:stun.example:3478")]  # legs: no relay
