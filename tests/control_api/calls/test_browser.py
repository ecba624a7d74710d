"""Ringing a browser tab (:class:`ClientCall`) with a fake signaling server, no
sockets: its Calls status as it rings, answers, is declined or is canceled. A party
that ended before it was canceled (``<Dial>`` cancels every party that lost) keeps
its own status."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from control_api.calls.browser import ClientCall


class FakeBrowserCall:
    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.accepted: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.ended = asyncio.Event()
        self.end_reason = ""
        self.on_ended: list = []
        self.leg = SimpleNamespace(browser_codec="opus")
        self.statuses: list[str] = []

    def status(self, status: str) -> None:
        self.statuses.append(status)

    def end(self, reason: str) -> None:
        if self.ended.is_set():
            return
        self.end_reason = reason
        if not self.accepted.done():
            self.accepted.set_result(False)
        self.ended.set()
        for callback in self.on_ended:
            callback(self)

    def cancel(self, reason: str = "canceled") -> None:
        self.end(reason)

    def hangup(self, reason: str = "completed") -> None:
        self.end(reason)


class FakeServer:
    def __init__(self) -> None:
        self.rung: list[FakeBrowserCall] = []

    async def ring(self, tab, *, from_, to, prefer_pcmu, sid, params=None) -> FakeBrowserCall:
        browser = FakeBrowserCall(sid)
        browser.params = params
        self.rung.append(browser)
        return browser


def client_call(server: FakeServer, **fields) -> ClientCall:
    tab = SimpleNamespace(identity="alice")
    return ClientCall(server, tab, None, from_="+1999", to="client:alice", **fields)


async def ringing(server: FakeServer, call: ClientCall) -> tuple[asyncio.Task, FakeBrowserCall]:
    connecting = asyncio.ensure_future(call.connect())
    for _ in range(10):
        await asyncio.sleep(0)
    return connecting, server.rung[-1]


async def test_a_tab_that_answers_is_in_progress_then_completed():
    server = FakeServer()
    call = client_call(server, call_sid="CA1")
    assert call.sid == "CA1" and call.status == "queued"
    connecting, browser = await ringing(server, call)
    assert call.status == "ringing" and browser.sid == "CA1"
    browser.accepted.set_result(True)
    assert await connecting and call.status == "in-progress" and await call.answer()
    assert browser.statuses == ["in-progress"]
    call.hangup()
    assert call.status == "completed" and call.ended.is_set()


async def test_client_parameters_ring_the_tab_with_them():
    server = FakeServer()
    call = client_call(server, params={"team": "blue"})
    connecting, browser = await ringing(server, call)
    assert browser.params == {"team": "blue"}  # <Client><Parameter>: the SDK's customParameters
    call.cancel()
    assert not await connecting


async def test_a_declined_call_is_busy_and_canceling_it_after_changes_nothing():
    server = FakeServer()
    call = client_call(server)
    assert call.sid.startswith("CA")  # a fresh SID when none is given
    connecting, browser = await ringing(server, call)
    browser.end_reason = "rejected"
    browser.accepted.set_result(False)
    assert not await connecting
    assert call.status == "busy"
    call.cancel()  # <Dial> cancels every party that lost, this one included
    assert call.status == "busy" and not call.canceled


async def test_canceling_a_ringing_tab_ends_it_canceled():
    server = FakeServer()
    call = client_call(server, timeout=5)
    connecting, browser = await ringing(server, call)
    call.cancel()
    assert not await asyncio.wait_for(connecting, 30)
    assert call.status == "canceled" and call.canceled and browser.end_reason == "canceled"


async def test_a_tab_that_never_answers_is_no_answer():
    server = FakeServer()
    call = client_call(server, timeout=0.02)
    connecting, browser = await ringing(server, call)
    assert not await asyncio.wait_for(connecting, 30)
    assert call.status == "no-answer" and browser.end_reason == "no-answer"
