"""A REST API server with live conferences and a recordings directory, for the tests of
SIP credentials, recordings and conferences.

The shared ``api`` fixture (conftest.py) starts the app without those; these modules
override it with ``serve_api`` so that the shared fixture stays as it is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn

from control_api.api import create_app
from control_api.store import Store
from tests.control_api.api.conftest import Api, FakeLiveCalls, _free_socket


@dataclass
class FakeLiveConferences:
    """A LiveConferences that records what the API asked and answers ``answer``.

    ``on_act`` (if set) runs before answering True, e.g. to update the store as the call
    engine would.
    """

    answer: bool = True
    asked: list[tuple] = field(default_factory=list)
    on_act: object = None

    async def end(self, account_sid: str, conference_sid: str) -> bool:
        return await self._answer(("end", account_sid, conference_sid))

    async def update_participant(
        self,
        account_sid: str,
        conference_sid: str,
        call_sid: str,
        *,
        muted: bool | None = None,
        hold: bool | None = None,
    ) -> bool:
        return await self._answer(
            ("update_participant", account_sid, conference_sid, call_sid, muted, hold)
        )

    async def kick(self, account_sid: str, conference_sid: str, call_sid: str) -> bool:
        return await self._answer(("kick", account_sid, conference_sid, call_sid))

    async def _answer(self, request: tuple) -> bool:
        self.asked.append(request)
        if self.answer and self.on_act is not None:
            await self.on_act(request)
        return self.answer


@contextmanager
def serve_api(
    db_path: Path, *, live_conferences: FakeLiveConferences, recordings_dir: Path
) -> Iterator[Api]:
    """Run the app over a fresh store on a free 127.0.0.1 port until the block ends."""
    store = asyncio.run(Store.open(f"sqlite:///{db_path}"))
    sock = _free_socket()
    port = sock.getsockname()[1]
    app = create_app(
        store,
        FakeLiveCalls(),
        live_conferences=live_conferences,
        recordings_dir=recordings_dir,
    )
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    base_url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base_url, timeout=10) as http:
            yield Api(base_url, store, app.state.live_calls, http)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        asyncio.run(store.close())
