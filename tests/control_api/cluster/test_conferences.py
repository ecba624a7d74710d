"""A conference change whose room is on another node: a participant's by the node of
its call, the conference's by the node of a connected participant's call."""

from __future__ import annotations

import pytest

from callswitch.http import HttpServer
from control_api.api import create_app
from control_api.api.cluster import cluster_router
from control_api.cluster import ClusterConferences, ClusterLiveCalls, Node
from control_api.sids import new_sid
from control_api.store import ParticipantRecord, Store
from tests.control_api.cluster.test_forward import Engine, held_by


class Rooms:
    """A node's conference rooms: holds the participants (call sids) in ``held``."""

    def __init__(self) -> None:
        self.held: set[str] = set()
        self.rooms: set[str] = set()
        self.asked: list[tuple] = []

    async def update_participant(self, account_sid, conference_sid, call_sid, **changes):
        self.asked.append(("update", conference_sid, call_sid, changes))
        return call_sid in self.held

    async def kick(self, account_sid, conference_sid, call_sid):
        self.asked.append(("kick", conference_sid, call_sid))
        return call_sid in self.held

    async def end(self, account_sid, conference_sid):
        self.asked.append(("end", conference_sid))
        return conference_sid in self.rooms

    async def announce(self, account_sid, conference_sid, url, method="POST"):
        self.asked.append(("announce", conference_sid, url, method))
        return conference_sid in self.rooms


@pytest.fixture
async def two_nodes(tmp_path):
    store = await Store.open(f"sqlite:///{tmp_path / 'callswitch.db'}")
    account = await store.accounts.create("a")
    peer_engine, peer_rooms = Engine(), Rooms()
    app = create_app(store, peer_engine)
    app.include_router(cluster_router(peer_engine, peer_rooms))
    http = HttpServer(app, "127.0.0.1", 0)
    await http.start()
    peer = Node(store, "node-b", f"http://{http.address}", lease_s=30)
    await peer.start()
    here = Node(store, "node-a", "http://127.0.0.1:1", lease_s=30)
    await here.start()
    local_rooms = Rooms()
    rooms = ClusterConferences(local_rooms, ClusterLiveCalls(Engine(), store, here), store)
    yield store, account, rooms, local_rooms, peer_rooms
    await peer.stop()
    await here.stop()
    await http.stop()
    await store.close()


async def test_changes_reach_the_node_of_the_participants_call(two_nodes):
    store, account, rooms, local, peer = two_nodes
    call = await held_by(store, account.sid, "node-b")
    conference = await store.conferences.create(account.sid, "room", status="in-progress")
    await store.participants.insert(
        ParticipantRecord(conference_sid=conference.sid, call_sid=call.sid, account_sid=account.sid)
    )
    peer.held.add(call.sid)
    peer.rooms.add(conference.sid)
    changes = {"hold_url": "https://app.test/music", "hold_method": "GET"}
    assert await rooms.update_participant(
        account.sid, conference.sid, call.sid, hold=True, **changes
    )
    assert await rooms.kick(account.sid, conference.sid, call.sid)
    assert await rooms.announce(account.sid, conference.sid, "https://app.test/hi")
    assert await rooms.end(account.sid, conference.sid)
    assert peer.asked == [
        ("update", conference.sid, call.sid, {"hold": True, **changes}),
        ("kick", conference.sid, call.sid),
        ("announce", conference.sid, "https://app.test/hi", "POST"),
        ("end", conference.sid),
    ]
    assert [a[0] for a in local.asked] == [a[0] for a in peer.asked]  # tried here first


async def test_nothing_is_forwarded_without_a_live_call_in_the_room(two_nodes):
    store, account, rooms, _local, peer = two_nodes
    conference = await store.conferences.create(account.sid, "empty", status="in-progress")
    mine = await held_by(store, account.sid, "node-a")
    assert not await rooms.kick(account.sid, conference.sid, mine.sid)
    assert not await rooms.update_participant(account.sid, conference.sid, new_sid("CA"), muted=1)
    assert not await rooms.end(account.sid, conference.sid)  # nobody connected in it
    assert peer.asked == []
