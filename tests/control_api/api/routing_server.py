"""A REST API server with live conferences and a recordings directory, for the tests of
SIP credentials, recordings and conferences.

The shared ``api`` fixture (conftest.py) starts the app without those; these modules
override it with ``serve_api`` so that the shared fixture stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from control_api.api import create_app
from tests.control_api.api.conftest import Api, FakeLiveCalls, serve


@dataclass
class FakeLiveConferences:
    """A LiveConferences that records what the API asked and answers ``answer``.

    ``on_act`` (if set) runs before answering True, e.g. to update the store as the call
    engine would.
    """

    answer: bool = True
    asked: list[tuple] = field(default_factory=list)
    on_act: object = None
    recordings: dict[str, str] = field(default_factory=dict)  # conference sid -> its RE sid

    async def update_recording(
        self, account_sid: str, conference_sid: str, sid: str, status: str, pause_behavior: str
    ) -> str | None:
        """The conference's running recording (``recordings``), if ``sid`` names it."""
        self.asked.append(("update_recording", account_sid, conference_sid, sid, status))
        running = self.recordings.get(conference_sid)
        if running is None or sid not in (running, "Twilio.CURRENT"):
            raise LookupError(sid)
        return running

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
        **changes,
    ) -> bool:
        asked = ("update_participant", account_sid, conference_sid, call_sid, muted, hold)
        return await self._answer((*asked, changes) if changes else asked)

    async def announce(
        self, account_sid: str, conference_sid: str, url: str, method: str = "POST"
    ) -> bool:
        return await self._answer(("announce", account_sid, conference_sid, url, method))

    async def kick(self, account_sid: str, conference_sid: str, call_sid: str) -> bool:
        return await self._answer(("kick", account_sid, conference_sid, call_sid))

    async def _answer(self, request: tuple) -> bool:
        self.asked.append(request)
        if self.answer and self.on_act is not None:
            await self.on_act(request)
        return self.answer


@contextmanager
def serve_api(
    store_url: str, *, live_conferences: FakeLiveConferences, recordings_dir: Path
) -> Iterator[Api]:
    """Run the app over the store at ``store_url`` (migrated on open) on a free 127.0.0.1
    port until the block ends."""

    def make_app(store):
        return create_app(
            store,
            FakeLiveCalls(),
            live_conferences=live_conferences,
            recordings_dir=recordings_dir,
        )

    with (
        serve(store_url, make_app) as (base_url, store, app),
        httpx.Client(base_url=base_url, timeout=10) as http,
    ):
        yield Api(base_url, store, app.state.live_calls, http)
