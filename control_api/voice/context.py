"""What the voice runtime is given: one immutable context, built once by the
composition root (callswitch/server.py) and passed to what needs it.

Every service a call may use is here from the start (the store, the outbox, the
webhook client, the dialer, billing, browser tabs, conferences, account tokens,
speech and audio, the refusals reporter, the fetch guard), so nothing is filled
in after construction and nothing is probed with ``getattr``. Its
:class:`TaskSupervisor` keeps the runtime's background tasks (a child call's last
record, a referrer's release) alive until they end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from control_api.address_policy import not_told
from control_api.lookup import Lookup
from control_api.voice.queue import CallQueues

if TYPE_CHECKING:
    from control_api.call_log import CallLog
    from control_api.calls.browser import BrowserClients
    from control_api.calls.dialer import Dialer
    from control_api.usage.billing import Billing
    from control_api.voice.conference import Conferences
    from control_api.voice.listening import ListenerFactory
    from control_api.voice.transcription import Transcriber
    from control_api.webhooks import Outbox, WebhookClient
    from media.rtpengine.client import RtpEngines
    from media.speech import SpeechProvider

__all__ = ["TaskSupervisor", "VoiceContext", "is_our_number", "numbers_of", "tokens_of"]

# A REST change to a number or a token reaches calls within a second.
LOOKUP_FRESH_S = 1.0


class TaskSupervisor:
    """Holds the runtime's background tasks until they finish (the event loop keeps
    only weak references to tasks)."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task] = set()

    def spawn(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __len__(self) -> int:
        return len(self._tasks)


def numbers_of(store) -> Lookup:
    """Our phone numbers by E.164, as calls look them up."""
    return Lookup(store.find_number, fresh=LOOKUP_FRESH_S)


def tokens_of(store) -> Lookup:
    """Accounts' auth tokens (which sign their webhooks), by account SID."""
    return Lookup(store.auth_token, fresh=LOOKUP_FRESH_S)


async def is_our_number(numbers: Lookup, phone: str) -> bool:
    """A number of ours with a voice application (the dialer calls it directly)."""
    number = await numbers.get(phone)
    return number is not None and bool(number.voice_url)


@dataclass(frozen=True, slots=True)
class VoiceContext:
    """The services of the voice runtime (docs/architecture.md)."""

    store: Any  # control_api.store.Store
    outbox: Outbox
    webhooks: WebhookClient
    synthesize: Callable[[str, str, str], Awaitable[object]]  # text, voice, language
    load_audio: Callable[[str], Awaitable[object]]  # URL -> samples
    numbers: Lookup
    tokens: Lookup
    dialer: Dialer | None = None
    billing: Billing | None = None
    browsers: BrowserClients | None = None  # browser tabs, when WebRTC runs
    conferences: Conferences | None = None
    # refused(reason, source_ip, **fields) logs and counts what a guard turned away.
    refused: Callable[..., None] = not_told
    # --fetch-deny for Media Streams: (host, port) -> the address to connect to.
    fetch_guard: Callable[[str, int], Awaitable[str]] | None = None
    recordings_dir: Path = Path("recordings")
    base_url: str = ""  # where our REST API is reached: RecordingUrl
    tasks: TaskSupervisor = field(default_factory=TaskSupervisor)
    queues: CallQueues = field(default_factory=CallQueues)  # this node's queue lines
    call_log: CallLog | None = None  # the errors and warnings calls meet (Notifications)
    transcriber: Transcriber | None = None  # <Record transcribe>: samples, rate -> words
    speech_listener: ListenerFactory | None = None  # <ConversationRelay>: the caller's words
    speech: SpeechProvider | None = None  # <Gather input="speech"> (--speech-provider)
    rtpengines: RtpEngines | None = None  # --rtpengine: where <Dial> bridges go (rtpengine.md)

    async def token_of(self, account_sid: str) -> str | None:
        return await self.tokens.get(account_sid)
