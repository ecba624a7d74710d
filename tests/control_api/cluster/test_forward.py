"""REST updates of a call another node holds: forwarded over HTTP to that node's
/cluster endpoint, its answer (and its errors) returned; nothing forwarded to a node
past its lease or for a call that is over; Calls.create refused while draining."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callswitch.http import HttpServer
from control_api.api import create_app
from control_api.api.cluster import cluster_router
from control_api.cluster import ClusterLiveCalls, Node
from control_api.cluster.forward import NodeUnreachable
from control_api.sids import new_sid
from control_api.store import CallRecord, NodeStore, Store
from control_api.voice.port import (
    NewRecording,
    NewStream,
    NewTranscription,
    NewTwiml,
    StreamInfo,
    TranscriptionInfo,
    Unavailable,
)

WHEN = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Engine:
    """A node's own calls: holds the calls in ``held``, records what it was asked."""

    def __init__(self, held=()) -> None:
        self.held = set(held)
        self.asked: list[tuple] = []

    async def hangup(self, account_sid, sid):
        self.asked.append(("hangup", sid))
        return sid in self.held

    async def cancel(self, account_sid, sid):
        self.asked.append(("cancel", sid))
        return sid in self.held

    async def redirect(self, account_sid, sid, to):
        self.asked.append(("redirect", sid, to.url, to.method, to.twiml))
        return sid in self.held

    async def create(self, account_sid, call):
        return "placed"

    async def start_stream(self, account_sid, sid, stream):
        self.asked.append(("start_stream", sid, stream))
        if sid not in self.held:
            return None
        if stream.name == "taken":
            raise ValueError("Name taken is in use")
        return StreamInfo("MZ" + "0" * 32, stream.name, "in-progress", WHEN)

    async def stop_stream(self, account_sid, sid, sid_or_name):
        self.asked.append(("stop_stream", sid, sid_or_name))
        if sid not in self.held:
            return None
        if sid_or_name != "mine":
            raise LookupError(sid_or_name)
        return StreamInfo("MZ" + "1" * 32, "mine", "stopped", WHEN)

    async def start_transcription(self, account_sid, sid, transcription):
        self.asked.append(("start_transcription", sid, transcription))
        if sid not in self.held:
            return None
        if transcription.name == "taken":
            raise ValueError("a transcription named 'taken' is running")
        return TranscriptionInfo("GT" + "0" * 32, transcription.name, "in-progress", WHEN)

    async def stop_transcription(self, account_sid, sid, sid_or_name):
        self.asked.append(("stop_transcription", sid, sid_or_name))
        if sid not in self.held:
            return None
        if sid_or_name != "notes":
            raise LookupError(sid_or_name)
        return TranscriptionInfo("GT" + "0" * 32, "notes", "stopped", WHEN)

    async def start_recording(self, account_sid, call_sid, recording):
        self.asked.append(("start_recording", call_sid, recording))
        if recording.track == "outbound" and call_sid in self.held:
            raise ValueError("A call may have at most 8 recordings in progress")
        return "RE" + "2" * 32 if call_sid in self.held else None

    async def update_recording(self, account_sid, call_sid, sid, status, pause_behavior):
        self.asked.append(("update_recording", call_sid, sid, status, pause_behavior))
        if call_sid not in self.held:
            return None
        if sid not in ("Twilio.CURRENT", "RE" + "2" * 32):
            raise LookupError(sid)
        return "RE" + "2" * 32


@pytest.fixture
async def two_nodes(tmp_path):
    store = await Store.open(f"sqlite:///{tmp_path / 'callswitch.db'}")
    account = await store.accounts.create("a")
    peer_engine = Engine()
    app = create_app(store, peer_engine)
    app.include_router(cluster_router(peer_engine))
    http = HttpServer(app, "127.0.0.1", 0)
    await http.start()
    peer = Node(store, "node-b", f"http://{http.address}", lease_s=30)
    await peer.start()
    here = Node(store, "node-a", "http://127.0.0.1:1", lease_s=30)
    await here.start()
    local = Engine()
    calls = ClusterLiveCalls(local, store, here)
    yield store, account, calls, local, peer_engine
    await peer.stop()
    await here.stop()
    await http.stop()
    await store.close()


async def held_by(store: Store, account_sid: str, node_id: str, status: str = "in-progress"):
    record = CallRecord(sid=new_sid("CA"), account_sid=account_sid, status=status)
    record.node_id = node_id
    return await store.calls.insert(record)


async def test_updates_reach_the_node_holding_the_call(two_nodes):
    store, account, calls, local, peer = two_nodes
    call = await held_by(store, account.sid, "node-b")
    peer.held.add(call.sid)
    assert await calls.hangup(account.sid, call.sid)
    assert await calls.cancel(account.sid, call.sid)
    assert await calls.redirect(
        account.sid, call.sid, NewTwiml(twiml="<Response><Hangup/></Response>")
    )
    assert await calls.redirect(account.sid, call.sid, NewTwiml("https://e.example/t", "GET"))
    stream = NewStream(url="wss://e.example/s", name="fork", parameters=(("a", "1"),))
    started = await calls.start_stream(account.sid, call.sid, stream)
    assert (started.name, started.status, started.date_updated) == ("fork", "in-progress", WHEN)
    stopped = await calls.stop_stream(account.sid, call.sid, "mine")
    assert (stopped.sid, stopped.status) == ("MZ" + "1" * 32, "stopped")
    assert peer.asked == [
        ("hangup", call.sid),
        ("cancel", call.sid),
        ("redirect", call.sid, None, "POST", "<Response><Hangup/></Response>"),
        ("redirect", call.sid, "https://e.example/t", "GET", None),
        ("start_stream", call.sid, stream),
        ("stop_stream", call.sid, "mine"),
    ]
    # Each was tried here first, and answered here as not held.
    assert [a[0] for a in local.asked] == [a[0] for a in peer.asked]


async def test_the_peers_errors_come_back_as_its_own(two_nodes):
    store, account, calls, _local, peer = two_nodes
    call = await held_by(store, account.sid, "node-b")
    peer.held.add(call.sid)
    with pytest.raises(ValueError, match="taken"):
        await calls.start_stream(account.sid, call.sid, NewStream(url="wss://x/s", name="taken"))
    with pytest.raises(LookupError):
        await calls.stop_stream(account.sid, call.sid, "MZ" + "9" * 32)
    peer.held.clear()  # it ended on the peer meanwhile: 21220, as on one node
    assert not await calls.hangup(account.sid, call.sid)
    assert await calls.start_stream(account.sid, call.sid, NewStream(url="wss://x/s")) is None


async def test_nothing_is_forwarded_for_calls_over_or_nodes_lost(two_nodes):
    store, account, calls, _local, peer = two_nodes
    over = await held_by(store, account.sid, "node-b", status="completed")
    mine = await held_by(store, account.sid, "node-a")
    await NodeStore(store.db).register("gone", "http://127.0.0.1:1", WHEN - timedelta(days=1))
    lost = await held_by(store, account.sid, "gone")
    for call in (over, mine, lost):
        assert not await calls.hangup(account.sid, call.sid)
    assert not await calls.hangup(new_sid("AC"), over.sid)  # another account's call
    assert peer.asked == []


async def test_a_holding_node_that_does_not_answer_is_a_503(two_nodes):
    store, account, calls, _local, _peer = two_nodes
    await NodeStore(store.db).register("mute", "http://127.0.0.1:1", datetime.now(UTC))
    call = await held_by(store, account.sid, "mute")
    with pytest.raises(NodeUnreachable) as error:
        await calls.hangup(account.sid, call.sid)
    assert error.value.node_id == "mute"  # the API answers it 503, 20503 (test_calls.py)


async def test_create_is_refused_while_the_node_drains(two_nodes):
    _store, account, calls, _local, _peer = two_nodes
    assert await calls.create(account.sid, object()) == "placed"
    calls.draining = lambda: True
    with pytest.raises(Unavailable) as error:
        await calls.create(account.sid, object())
    assert "draining" in str(error.value)  # the API answers it 503, 20503 (test_calls.py)


async def test_live_recordings_reach_the_node_holding_the_call(two_nodes):
    store, account, calls, local, peer = two_nodes
    call = await held_by(store, account.sid, "node-b")
    peer.held.add(call.sid)
    new = NewRecording(
        channels="dual",
        track="inbound",
        status_callback="https://e.example/r",
        status_callback_events=("in-progress", "completed"),
    )
    assert await calls.start_recording(account.sid, call.sid, new) == "RE" + "2" * 32
    paused = await calls.update_recording(account.sid, call.sid, "Twilio.CURRENT", "paused", "skip")
    assert paused == "RE" + "2" * 32
    with pytest.raises(LookupError):
        await calls.update_recording(account.sid, call.sid, "RE" + "9" * 32, "stopped", "silence")
    assert peer.asked == [
        ("start_recording", call.sid, new),
        ("update_recording", call.sid, "Twilio.CURRENT", "paused", "skip"),
        ("update_recording", call.sid, "RE" + "9" * 32, "stopped", "silence"),
    ]
    assert [a[0] for a in local.asked] == [a[0] for a in peer.asked]
    with pytest.raises(ValueError, match="at most 8"):  # the peer's refusal, as its own
        await calls.start_recording(account.sid, call.sid, NewRecording(track="outbound"))
    assert peer.asked[-1][0] == "start_recording"
    peer.held.clear()  # ended on the peer: 21220, as on one node
    assert await calls.start_recording(account.sid, call.sid, new) is None


async def test_live_transcriptions_reach_the_node_holding_the_call(two_nodes):
    store, account, calls, local, peer = two_nodes
    call = await held_by(store, account.sid, "node-b")
    peer.held.add(call.sid)
    new = NewTranscription(
        name="notes",
        track="both_tracks",
        status_callback_url="https://e.example/t",
        partial_results=True,
        hints="yes, no",
    )
    started = await calls.start_transcription(account.sid, call.sid, new)
    assert (started.name, started.status, started.date_updated) == ("notes", "in-progress", WHEN)
    stopped = await calls.stop_transcription(account.sid, call.sid, "notes")
    assert (stopped.sid, stopped.status) == ("GT" + "0" * 32, "stopped")
    with pytest.raises(LookupError):
        await calls.stop_transcription(account.sid, call.sid, "GT" + "9" * 32)
    with pytest.raises(ValueError, match="taken"):
        await calls.start_transcription(account.sid, call.sid, NewTranscription(name="taken"))
    assert peer.asked[:2] == [
        ("start_transcription", call.sid, new),
        ("stop_transcription", call.sid, "notes"),
    ]
    assert [a[0] for a in local.asked] == [a[0] for a in peer.asked]
    peer.held.clear()  # ended on the peer: 21220, as on one node
    assert await calls.start_transcription(account.sid, call.sid, new) is None
