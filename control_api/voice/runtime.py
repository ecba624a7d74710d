"""Where calls run: the voice runtime's context, this node's live-call table, and a
TwiML runner for each call.

Every call source (a call to one of our numbers, inbound.py; a call a browser tab
placed, browser.py; a call placed by REST, outbound.py) runs its TwiML on one
:class:`VoiceRuntime` (twiml_call.py), live in its table meanwhile; the REST API
reaches those calls through :class:`~control_api.voice.live.LocalLiveCalls` over the
same table. A runner's ``<Dial>``, ``<Record>`` and streams use the context it gets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from control_api.voice.live import LiveCallTable
from control_api.voice.runner import TwimlRunner, VoiceServices

if TYPE_CHECKING:
    from control_api.voice.context import VoiceContext
    from control_api.voice.lifecycle import CallLifecycle

__all__ = ["VoiceRuntime"]


class VoiceRuntime:
    """The voice runtime of this node: what the call sources share."""

    def __init__(self, context: VoiceContext) -> None:
        self.context = context
        self.live_calls = LiveCallTable()  # this node's calls in progress

    def runner_for(
        self, call, account_sid: str, token: str, lifecycle: CallLifecycle
    ) -> TwimlRunner:
        """A TwiML runner for ``call`` (any call leg), fetching with the account's signature."""
        context = self.context

        async def fetch(url: str, method: str, fields: list[tuple[str, str]]) -> str:
            await lifecycle.recorded()
            return await context.webhooks.fetch_twiml(url, method, fields, token)

        services = VoiceServices(fetch, context.synthesize, context.load_audio, context=context)
        return TwimlRunner(call, services, lifecycle.params, account_sid=account_sid)
