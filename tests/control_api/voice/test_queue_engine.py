"""``<Dial><Queue>`` with ``--rtpengine`` (control_api/voice/queue.py's bridge handed
to control_api/calls/engine_bridge.py), with a scripted rtpengine and scripted phones
over a real store: both parties move onto rtpengine, whoever stays up is moved back
before its TwiML goes on and the rtpengine call is deleted; a refusal, or
``hangupOnStar`` without rtpengine's DTMF log, keeps the bridge in process."""

from __future__ import annotations

import pytest

from control_api.calls import engine_bridge
from control_api.voice.context import TaskSupervisor
from control_api.voice.queue import CallQueues
from control_api.voice.runner import Document, TwimlRunner, VoiceServices
from media.clock import MediaClock
from media.ports import PortPool
from media.rtpengine.dtmf_listener import DtmfLogListener
from media.sdp import SessionDescription
from tests.control_api.calls.test_engine_bridge import Engines, free_range, party
from tests.control_api.voice.test_queue import App, account, store, twiml, until

__all__ = ["account", "store"]  # the fixtures, shared with test_queue


@pytest.fixture
async def phones(monkeypatch):
    """Scripted SIP phones on real RTP sessions (taken for SIP calls by rtpengine's
    check, which wants the real call classes)."""
    monkeypatch.setattr(engine_bridge, "can_use_engine", lambda a, b: True)
    clock = MediaClock()
    pool = PortPool(*free_range())
    made = []

    async def make(sid: str):
        call = await party(pool, clock, sid, 30000 + len(made))
        call.events = []
        call.log = lambda event, **fields: call.events.append((event, fields))
        call.hangup = call.ended.set
        call.answered = True

        async def answer() -> bool:
            return not call.ended.is_set()

        call.answer = answer
        made.append(call)
        return call

    yield make
    for call in made:
        call.leg.close()
    clock.close()


class Context:
    """The voice context's parts a queue uses."""

    def __init__(self, store, engines) -> None:
        self.store = store
        self.queues = CallQueues()
        self.tasks = TaskSupervisor()
        self.dialer = object()
        self.call_log = None
        self.rtpengines = engines


def run(call, app: App, voice, account, url: str) -> TwimlRunner:
    services = VoiceServices(app.fetch, _no_media, _no_media, context=voice)
    runner = TwimlRunner(call, services, lambda: [("CallSid", call.sid)], account_sid=account.sid)
    runner.start(Document(url))
    return runner


async def _no_media(*args) -> object:
    raise AssertionError("no speech or audio files here")


def pages(dial: str = "<Dial action='/dialed'><Queue>support</Queue></Dial>") -> dict[str, str]:
    return {
        "http://app/caller": twiml('<Enqueue action="/after" waitUrl="/wait">support</Enqueue>'),
        "http://app/wait": twiml('<Pause length="10"/>'),
        "http://app/after": twiml("<Hangup/>"),
        "http://app/agent": twiml(dial),
        "http://app/dialed": twiml("<Hangup/>"),
    }


def bridged_mode(agent) -> str:
    return next(fields["mode"] for event, fields in agent.events if event == "queue.bridged")


@pytest.mark.parametrize("leaves", ["agent", "caller"])
async def test_agent_and_caller_talk_through_rtpengine_and_the_one_left_comes_back(
    store, account, phones, leaves
):
    engines = Engines()
    voice = Context(store, engines)
    app = App(pages())
    seen: dict[str, tuple[list[str], int, int]] = {}
    fetch = app.fetch

    async def watching(url, method, fields):  # what was done when a TwiML went on
        kinds = [kind for kind, _ in engines.sent]
        seen[url] = (kinds, len(caller.session.offers), len(agent.session.offers))
        return await fetch(url, method, fields)

    app.fetch = watching
    caller, agent = await phones("CAcaller"), await phones("CAagent")
    run(caller, app, voice, account, "http://app/caller")
    await until(lambda: app.fields("http://app/wait"))
    run(agent, app, voice, account, "http://app/agent")
    await until(lambda: any(event == "queue.bridged" for event, _ in agent.events))
    assert bridged_mode(agent) == "rtpengine"
    assert [kind for kind, _ in engines.sent] == ["offer", "answer"]
    # The agent is rtpengine's offering side, the caller its answering one.
    assert SessionDescription.parse(agent.session.offers[0]).media[0].port == 41000
    assert SessionDescription.parse(caller.session.offers[0]).media[0].port == 41010
    assert engines.held

    gone, left = (agent, caller) if leaves == "agent" else (caller, agent)
    gone.ended.set()
    await until(lambda: app.fields("http://app/after") and app.fields("http://app/dialed"))
    after = app.fields("http://app/after")[0]
    assert after["QueueResult"] == "bridged" and "QueueTime" in after
    dialed = app.fields("http://app/dialed")[0]
    assert (dialed["DialCallStatus"], dialed["DialCallSid"]) == ("completed", "CAcaller")
    # The one still up was moved back to its own RTP port, and the rtpengine call
    # deleted, before its TwiML went on.
    url = "http://app/after" if left is caller else "http://app/dialed"
    kinds, caller_offers, agent_offers = seen[url]
    assert kinds[-1] == "delete"
    assert (caller_offers, agent_offers) == ((2, 1) if left is caller else (1, 2))
    back = SessionDescription.parse(left.session.offers[1])
    assert back.media[0].port == left.leg.port
    assert left.session.on_offer == left.media_updater.answer
    assert len(gone.session.offers) == 1  # nobody re-INVITEs a call that ended
    assert not engines.held
    await until(lambda: voice.queues.lines == {} and left.ended.is_set())


@pytest.mark.parametrize(
    ("refuse", "dial"),
    [
        ("offer", "<Dial action='/dialed'><Queue>support</Queue></Dial>"),
        ("", "<Dial action='/dialed' hangupOnStar='true'><Queue>support</Queue></Dial>"),
    ],
    ids=["refused", "hangup-on-star-without-dtmf-log"],
)
async def test_the_bridge_stays_in_process_when_rtpengine_cannot_take_it(
    store, account, phones, refuse, dial
):
    engines = Engines(refuse=refuse)
    voice = Context(store, engines)
    app = App(pages(dial))
    caller, agent = await phones("CAcaller"), await phones("CAagent")
    run(caller, app, voice, account, "http://app/caller")
    await until(lambda: app.fields("http://app/wait"))
    run(agent, app, voice, account, "http://app/agent")
    await until(lambda: any(event == "queue.bridged" for event, _ in agent.events))
    assert bridged_mode(agent) != "rtpengine"
    assert not caller.session.offers and not agent.session.offers  # nobody moved
    assert not engines.held
    agent.ended.set()
    await until(lambda: app.fields("http://app/after") and app.fields("http://app/dialed"))
    assert app.fields("http://app/after")[0]["QueueResult"] == "bridged"
    assert not caller.session.offers  # nothing to come back from


async def test_the_agents_star_from_rtpengines_dtmf_log_ends_the_queue_bridge(
    store, account, phones
):
    """``hangupOnStar`` with rtpengine's DTMF log: the agent's ``*`` (its ng tag) ends
    the bridge (the caller's, side 1, does not); both are moved back and their TwiML
    goes on."""
    engines = Engines()
    engines.dtmf_log = DtmfLogListener()
    engines.dtmf_log.accept_from(["127.0.0.1"])  # the instance's address
    voice = Context(store, engines)
    app = App(pages("<Dial action='/dialed' hangupOnStar='true'><Queue>support</Queue></Dial>"))
    caller, agent = await phones("CAcaller"), await phones("CAagent")
    run(caller, app, voice, account, "http://app/caller")
    await until(lambda: app.fields("http://app/wait"))
    run(agent, app, voice, account, "http://app/agent")
    await until(lambda: any(event == "queue.bridged" for event, _ in agent.events))
    assert bridged_mode(agent) == "rtpengine"
    call_id = "CAagent@test/CAcaller"

    def key(tag: str) -> None:
        assert engines.dtmf_log is not None
        engines.dtmf_log.datagram_received(
            f'{{"callid":"{call_id}","source_tag":"{tag}","event":10,"duration":100}}'.encode(),
            ("127.0.0.1", 1),
        )

    key("CAcaller")  # the caller's star is only a digit
    digits = [fields["side"] for event, fields in agent.events if event == "rtpengine.dtmf"]
    assert digits == [1] and engines.sent[-1][0] != "delete"
    key("CAagent")
    await until(lambda: app.fields("http://app/after") and app.fields("http://app/dialed"))
    assert app.fields("http://app/dialed")[0]["DialCallStatus"] == "completed"
    assert app.fields("http://app/after")[0]["QueueResult"] == "bridged"
    assert len(caller.session.offers) == 2 and len(agent.session.offers) == 2  # both back
    assert not engines.held


async def test_a_caller_redirected_off_an_rtpengine_bridge_is_moved_back(store, account, phones):
    """A REST redirect (dequeue) of a caller bridged on rtpengine: its new TwiML runs,
    the bridge ends, both parties are moved back and the rtpengine call deleted."""
    engines = Engines()
    voice = Context(store, engines)
    app = App({**pages(), "http://app/elsewhere": twiml('<Pause length="10"/>')})
    caller, agent = await phones("CAcaller"), await phones("CAagent")
    runner = run(caller, app, voice, account, "http://app/caller")
    await until(lambda: app.fields("http://app/wait"))
    run(agent, app, voice, account, "http://app/agent")
    await until(lambda: any(event == "queue.bridged" for event, _ in agent.events))
    assert bridged_mode(agent) == "rtpengine"
    runner.redirect(Document("http://app/elsewhere"))
    await until(lambda: app.fields("http://app/after") and app.fields("http://app/dialed"))
    assert app.fields("http://app/after")[0]["QueueResult"] == "redirected-from-bridged"
    assert app.fields("http://app/elsewhere")
    await until(lambda: len(caller.session.offers) == 2 and not engines.held)
    assert SessionDescription.parse(caller.session.offers[1]).media[0].port == caller.leg.port
    assert len(agent.session.offers) == 2  # the agent's action runs: back too
    caller.ended.set()
    await until(lambda: voice.queues.lines == {})
