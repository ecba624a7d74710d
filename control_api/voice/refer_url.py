"""``<Dial referUrl>``: the application decides what a callee's REFER does.

Without ``referUrl`` a REFER during a ``<Dial>`` bridge is a blind transfer
(transfer.py). With it, a REFER from the callee (once transfer.py's policy let it
through: an authenticated leg, a target routed like ``<Dial>``; 403 otherwise, and
the URL is never asked) requests ``referUrl`` with the caller's parameters and
``ReferTransferTarget`` (the ``Refer-To`` URI, in angle brackets as Twilio sends
it). Its TwiML runs on the caller in place of the ``<Dial>``'s ``action``: the
referrer is told ``NOTIFY 200`` and is released (it hangs up, or we do). When the
URL cannot be fetched, the referrer is told 503 (error 11200 on the call) and the
bridge goes on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from urllib.parse import urljoin

from control_api.webhooks import WebhookError

if TYPE_CHECKING:
    from control_api.twiml.verbs import Dial
    from control_api.voice.runner import Document, TwimlRunner
    from control_api.voice.transfer import TransferRequest

__all__ = ["ask_refer_url", "refer_params"]

log = logging.getLogger("callswitch.twiml")

UNAVAILABLE = 503


def refer_params(request: TransferRequest) -> list[tuple[str, str]]:
    """What a ``referUrl`` request adds to the call's parameters."""
    return [("ReferTransferTarget", f"<{request.target}>")]


async def ask_refer_url(
    runner: TwimlRunner, verb: Dial, request: TransferRequest
) -> Document | None:
    """Request ``verb.refer_url`` for ``request``: the document the caller runs next
    (the referrer told 200), or None when the URL failed (the referrer told 503)."""
    from control_api.voice.runner import Document  # the runner imports <Dial>, which us

    assert verb.refer_url is not None
    url = urljoin(runner.document_url or "", verb.refer_url)
    extra = refer_params(request)
    try:
        text = await runner.services.fetch_twiml(url, verb.refer_method, runner.params() + extra)
    except WebhookError as exc:
        runner.errors.append(f"11200 referUrl {exc}")
        log.warning("dial.refer_url_failed", extra={"call_sid": runner.call.sid, "url": url})
        request.handle.notify(UNAVAILABLE, "Service Unavailable")
        return None
    request.handle.notify(200, "OK")
    runner.call.log("dial.referred", target=request.target, url=url)
    return Document(url, verb.refer_method, twiml=text, extra=extra)
