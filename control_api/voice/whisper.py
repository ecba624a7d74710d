"""The whisper of a ``<Dial>`` noun: ``<Number url>``, ``<Sip url>``, ``<Client url>``.

Once the callee answers, and before it is bridged to the caller, the noun's ``url``
document runs on the callee's own leg (requested with the child call's parameters:
its ``CallSid``, ``ParentCallSid``, ``Direction=outbound-dial``, ``CallStatus``...).
The caller does not hear it: it still hears ringback. ``<Say>``, ``<Play>``,
``<Pause>``, ``<Gather>`` (its ``action`` is followed), ``<Redirect>`` run there;
``<Hangup>`` or ``<Reject>`` refuses the call: the callee is hung up and the
``<Dial>`` goes on as if it had not answered. A document that runs out of verbs
accepts the call. ``<Dial>`` and the other verbs are not allowed in a whisper and are
skipped with a warning. A whisper that cannot be fetched or parsed is recorded as
the parent call's error and the call is bridged without it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from control_api.twiml.parser import TwimlError, parse_voice_twiml
from control_api.twiml.verbs import Gather, Hangup, Pause, Play, Redirect, Reject, Say
from control_api.voice.children import child_params
from control_api.webhooks import WebhookError

if TYPE_CHECKING:
    from control_api.calls.leg import PlacedLeg
    from control_api.twiml.verbs import Client, Number, Sip
    from control_api.voice.runner import TwimlRunner

__all__ = ["MAX_WHISPER_DOCUMENTS", "whisper"]

log = logging.getLogger("callswitch.twiml")

MAX_WHISPER_DOCUMENTS = 10  # <Redirect>s and <Gather> actions followed in one whisper


async def whisper(runner: TwimlRunner, call: PlacedLeg, noun: Number | Sip | Client) -> bool:
    """Run ``noun``'s whisper on ``call`` (answered): True when the callee takes the
    call, False when the whisper refused it or the callee hung up meanwhile."""
    try:
        return await _run(runner, call, noun)
    except Exception as exc:  # speech or audio failing: the call goes ahead without it
        runner.errors.append(f"11200 whisper {exc}")
        log.exception("dial.whisper_error", extra={"call_sid": call.sid})
        return not call.ended.is_set()


async def _run(runner: TwimlRunner, call: PlacedLeg, noun: Number | Sip | Client) -> bool:
    from control_api.voice.runner import Document, NextDocument, TwimlRunner

    assert noun.url is not None
    callee = TwimlRunner(
        call,  # type: ignore[arg-type]  # the runner's verbs need a leg and its media only
        runner.services,
        lambda: child_params(call),
        account_sid=runner.account_sid,
    )
    document = Document(urljoin(runner.document_url or "", noun.url), noun.method)
    for _ in range(MAX_WHISPER_DOCUMENTS):
        if call.ended.is_set():
            return False
        assert document.url is not None
        try:
            text = await runner.services.fetch_twiml(
                document.url, document.method, child_params(call) + document.extra
            )
            verbs = parse_voice_twiml(text).verbs
        except (WebhookError, TwimlError) as exc:  # the call goes ahead without it
            code = getattr(exc, "code", None) or 11200
            runner.errors.append(f"{code} whisper {exc}")
            log.warning("dial.whisper_failed", extra={"call_sid": call.sid, "error": str(exc)})
            return not call.ended.is_set()
        try:
            for verb in verbs:
                if call.ended.is_set():
                    return False
                if isinstance(verb, Hangup | Reject):
                    call.log("dial.whisper_refused", verb=type(verb).__name__)
                    return False
                if isinstance(verb, Say | Play | Pause):
                    await callee._prompt(verb)
                elif isinstance(verb, Gather):
                    await callee._gather(verb, document.url)
                elif isinstance(verb, Redirect):
                    target = urljoin(document.url, verb.url) if verb.url else document.url
                    raise NextDocument(Document(target, verb.method))
                else:
                    log.warning(
                        "dial.whisper_verb_skipped",
                        extra={"call_sid": call.sid, "verb": type(verb).__name__},
                    )
        except NextDocument as follow:
            document = follow.document
            continue
        return not call.ended.is_set()
    return not call.ended.is_set()
