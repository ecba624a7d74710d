"""Fixtures for the REST API tests: a real uvicorn server and the official twilio library.

One server per test module and backend, on a free 127.0.0.1 port, over a store in a
temporary SQLite file, then in a new PostgreSQL database. Tests stay apart by making an
account each (``account``/``other``).
The official ``twilio.rest.Client`` talks to the server through ``LocalHttpClient``,
which rewrites ``https://api.twilio.com`` to it (reference §11); ``http`` is a plain
httpx client for what the library cannot send.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from control_api.api import create_app
from control_api.sids import new_sid, utcnow
from control_api.store import Account, CallRecord, Store


@dataclass
class FakeLiveCalls:
    """A LiveCalls that records what the API asked; calls in ``live`` are live."""

    live: set[str] = field(default_factory=set)
    asked: list[tuple] = field(default_factory=list)
    fail_with: Exception | None = None
    store: object = None  # set to place calls (create answers 201); None answers 501
    streams: dict[str, list] = field(default_factory=dict)  # call sid -> StreamInfo
    recordings: dict[str, str] = field(default_factory=dict)  # call sid -> its RE sid
    transcriptions: dict[str, list] = field(default_factory=dict)  # call sid -> infos

    async def hangup(self, account_sid: str, call_sid: str) -> bool:
        return self._answer(("hangup", account_sid, call_sid))

    async def cancel(self, account_sid: str, call_sid: str) -> bool:
        return self._answer(("cancel", account_sid, call_sid))

    async def redirect(self, account_sid: str, call_sid: str, to) -> bool:
        return self._answer(("redirect", account_sid, call_sid, to.url, to.method, to.twiml))

    async def create(self, account_sid: str, new_call):
        """Store the call as queued, as the engine does, unless this node places no calls."""
        self.asked.append(("create", account_sid, new_call))
        if self.store is None:
            return None
        from control_api.calls.call import new_call_sid
        from control_api.voice.lifecycle import new_record

        record = new_record(
            sid=new_call_sid(),
            account_sid=account_sid,
            to=new_call.to,
            from_=new_call.from_,
            direction="outbound-api",
            status="queued",
        )
        return await self.store.calls.insert(record)

    async def add_participant(self, account_sid: str, conference: str, participant):
        """Dial a participant in as the engine does: the conference of that sid (live) or
        name (made when none runs), the call stored as queued, its row queued."""
        from control_api.sids import is_sid
        from control_api.store import ParticipantRecord

        self.asked.append(("add_participant", account_sid, conference, participant))
        if self.store is None:
            return None
        rooms = self.store.conferences
        if is_sid(conference, "CF"):
            room = await rooms.get(account_sid, conference)
            if room is None or room.status == "completed":
                raise LookupError(conference)
        else:
            room = await rooms.find_live(account_sid, conference) or await rooms.create(
                account_sid, conference
            )
        call = await self.create(account_sid, participant.call)
        row = ParticipantRecord(
            conference_sid=room.sid,
            call_sid=call.sid,
            account_sid=account_sid,
            label=participant.label,
            muted=participant.muted,
            coaching=participant.coaching,
            call_sid_to_coach=participant.call_sid_to_coach,
            status="queued",
            start_conference_on_enter=participant.start_conference_on_enter,
            end_conference_on_exit=participant.end_conference_on_exit,
        )
        return await self.store.participants.insert(row)

    async def start_stream(self, account_sid: str, call_sid: str, stream):
        """A stream of a live call, in progress; a name taken on the call is refused."""
        from control_api.voice.port import StreamInfo

        self.asked.append(("start_stream", account_sid, call_sid, stream))
        if call_sid not in self.live:
            return None
        taken = self.streams.setdefault(call_sid, [])
        if stream.name and any(s.name == stream.name for s in taken):
            raise ValueError(f"A stream named {stream.name!r} is running on this call already")
        info = StreamInfo(new_sid("MZ"), stream.name, "in-progress", utcnow())
        taken.append(info)
        return info

    async def stop_stream(self, account_sid: str, call_sid: str, sid_or_name: str):
        from control_api.voice.port import StreamInfo

        self.asked.append(("stop_stream", account_sid, call_sid, sid_or_name))
        if call_sid not in self.live:
            return None
        for info in self.streams.get(call_sid, []):
            if sid_or_name in (info.sid, info.name):
                return StreamInfo(info.sid, info.name, "stopped", utcnow())
        raise LookupError(sid_or_name)

    async def start_transcription(self, account_sid: str, call_sid: str, transcription):
        """A live transcription of a live call; a name taken on the call is refused."""
        from control_api.voice.port import TranscriptionInfo

        self.asked.append(("start_transcription", account_sid, call_sid, transcription))
        if call_sid not in self.live:
            return None
        taken = self.transcriptions.setdefault(call_sid, [])
        if transcription.name and any(t.name == transcription.name for t in taken):
            raise ValueError(f"a transcription named {transcription.name!r} is running")
        info = TranscriptionInfo(new_sid("GT"), transcription.name, "in-progress", utcnow())
        taken.append(info)
        return info

    async def stop_transcription(self, account_sid: str, call_sid: str, sid_or_name: str):
        from control_api.voice.port import TranscriptionInfo

        self.asked.append(("stop_transcription", account_sid, call_sid, sid_or_name))
        if call_sid not in self.live:
            return None
        for info in self.transcriptions.get(call_sid, []):
            if sid_or_name in (info.sid, info.name):
                return TranscriptionInfo(info.sid, info.name, "stopped", utcnow())
        raise LookupError(sid_or_name)

    async def start_recording(self, account_sid: str, call_sid: str, recording):
        """The RE sid the test stored for a live call in ``recordings``."""
        self.asked.append(("start_recording", account_sid, call_sid, recording))
        if self.fail_with is not None:
            raise self.fail_with
        return self.recordings.get(call_sid) if call_sid in self.live else None

    async def update_recording(self, account_sid, call_sid, sid, status, pause_behavior):
        self.asked.append(("update_recording", account_sid, call_sid, sid, status, pause_behavior))
        if call_sid not in self.live:
            return None
        running = self.recordings.get(call_sid)
        if running is None or sid not in (running, "Twilio.CURRENT"):
            raise LookupError(sid)
        return running

    def _answer(self, request: tuple) -> bool:
        self.asked.append(request)
        if self.fail_with is not None:
            raise self.fail_with
        return request[2] in self.live


class LocalHttpClient(TwilioHttpClient):
    """The library's own HTTP client, sent to the local server instead of Twilio."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(
        self,
        method,
        url,
        params=None,
        data=None,
        headers=None,
        auth=None,
        timeout=None,
        allow_redirects=False,
    ):
        url = url.replace("https://api.twilio.com", self.base_url, 1)
        return super().request(method, url, params, data, headers, auth, timeout, allow_redirects)


@dataclass
class Api:
    """The running server and the ways to reach it."""

    base_url: str
    store: Store
    live_calls: FakeLiveCalls
    http: httpx.Client
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(2_000_000))

    def new_number(self) -> str:
        """An E.164 number no test of the module has used (numbers are unique store-wide)."""
        return f"+1415{next(self._numbers):07d}"

    def run(self, coroutine):
        """Run a store coroutine from a (synchronous) test."""
        return asyncio.run(coroutine)

    def new_account(self) -> Account:
        return self.run(self.store.accounts.create("test"))

    def client(self, account: Account, token: str | None = None) -> Client:
        return Client(
            account.sid,
            token if token is not None else account.auth_token,
            http_client=LocalHttpClient(self.base_url),
        )

    def insert_call(self, account: Account, **fields) -> CallRecord:
        fields.setdefault("to", "+14155550100")
        fields.setdefault("from_", "+14155550199")
        record = CallRecord(sid=new_sid("CA"), account_sid=account.sid, **fields)
        return self.run(self.store.calls.insert(record))


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def store_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """Each module runs on each backend: a SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('store') / 'callswitch.db'}"
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.create_database("api")
    yield url
    cluster.drop_database(url)


@contextmanager
def serve(store_url: str, make_app: Callable[[Store], Any]) -> Iterator[tuple[str, Store, Any]]:
    """Run ``make_app(store)`` under uvicorn on a free 127.0.0.1 port, in a thread with its
    own event loop, until the block ends; yields (base URL, the test's store, the app).

    The test's store (migrated here) has no pool: tests reach it from ``asyncio.run`` and
    from the server's loop, and an asyncpg connection belongs to the loop that opened it.
    On PostgreSQL the server opens its own pooled store in its loop, as callswitch does;
    SQLite keeps one store (one connection) for both, as a second writer would wait on
    the file lock.
    """
    store = asyncio.run(Store.open(store_url, pooled=False))
    sock = _free_socket()
    ready = threading.Event()
    running: dict[str, Any] = {}

    async def main() -> None:
        own = store if store.db.dialect_name == "sqlite" else await Store.open(store_url)
        try:
            running["app"] = make_app(own)
            running["server"] = server = uvicorn.Server(
                uvicorn.Config(
                    running["app"], log_level="warning", access_log=False, lifespan="off"
                )
            )
            serving = asyncio.ensure_future(server.serve(sockets=[sock]))
            while not server.started and not serving.done():
                await asyncio.sleep(0.01)
            ready.set()
            await serving
        finally:
            ready.set()
            if own is not store:
                await own.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(30) and running["server"].started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", store, running["app"]
    finally:
        running["server"].should_exit = True
        thread.join(10)
        sock.close()
        asyncio.run(store.close())


@pytest.fixture(scope="module")
def api(store_url: str) -> Iterator[Api]:
    live_calls = FakeLiveCalls()
    with (
        serve(store_url, lambda store: create_app(store, live_calls)) as (base_url, store, _),
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        yield Api(base_url, store, live_calls, http)


@pytest.fixture
def account(api: Api) -> Account:
    return api.new_account()


@pytest.fixture
def other(api: Api) -> Account:
    """A second account, whose data the first must never see."""
    return api.new_account()


@pytest.fixture
def client(api: Api, account: Account) -> Client:
    return api.client(account)


@pytest.fixture
def auth(account: Account) -> tuple[str, str]:
    return (account.sid, account.auth_token)


@pytest.fixture
def number_path(api: Api, client: Client, account: Account) -> str:
    """The path of a fresh number of ``account``."""
    number = client.incoming_phone_numbers.create(phone_number=api.new_number())
    return f"/2010-04-01/Accounts/{account.sid}/IncomingPhoneNumbers/{number.sid}.json"


@pytest.fixture
def at() -> Callable[..., datetime]:
    """``at(days=-1, hours=2)``: a time relative to a fixed noon, for call times."""
    noon = utcnow().replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(days=10)

    def make(**delta: float) -> datetime:
        return noon + timedelta(**delta)

    return make
