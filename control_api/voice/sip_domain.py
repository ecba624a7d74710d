"""Calls to SIP domains: ``sip:anyone@<domain_name>`` runs the domain's ``VoiceUrl``.

The composition root asks :meth:`SipDomainCalls.app_for` first for every INVITE. A
Request-URI host that is no domain's name (an IP address, the node's own name) is left
to the usual routing (built-in apps, numbers); a domain's INVITE is admitted or
refused by :class:`~control_api.sip_domain_access.DomainGate` (403, or 407 to ask for
a digest), and an admitted one runs the domain's TwiML through ``run_offered_call``,
the path calls to numbers take, with Twilio's SIP parameters: ``To`` the Request-URI,
``From`` the caller's SIP URI, ``SipDomain``, ``SipDomainSid``, ``SipCallId``,
``SipSourceIp`` and ``SipHeader_X-…``. Its status callbacks go to the domain's
``VoiceStatusCallbackUrl``. A ``secure`` domain takes calls over TLS offering SRTP only.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from control_api.lookup import Lookup
from control_api.sip_domain_access import (
    FRESH_S,
    Admission,
    DomainDirectory,
    DomainGate,
    insecure,
    listed,
)
from control_api.store import SipDomain
from control_api.store.sip_domain_mappings import CALL_KINDS
from control_api.voice.inbound import final_status, sip_params
from control_api.voice.twiml_call import run_offered_call

if TYPE_CHECKING:
    from control_api.calls.call import Call
    from control_api.voice.runtime import VoiceRuntime
    from sip.invite import InviteSession

__all__ = ["SipDomainCalls"]


class SipDomainCalls:
    """The router hook for INVITEs to SIP domains."""

    def __init__(
        self,
        runtime: VoiceRuntime,
        gate: DomainGate,
        *,
        refused: Callable[..., None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.runtime = runtime
        self.gate = gate
        self._refused = refused or (lambda reason, source_ip, **fields: None)
        self._clock = clock
        store = runtime.context.store
        self._store = store
        self.domains = DomainDirectory(store)
        self.networks = Lookup(store.domain_mappings.call_networks, fresh=FRESH_S, expire=FRESH_S)
        self.has_credentials = Lookup(
            functools.partial(_has_call_credentials, store), fresh=FRESH_S, expire=FRESH_S
        )

    async def app_for(self, session: InviteSession):
        """None when the INVITE is not for a domain; else the app that refuses or runs it."""
        domain = await self.domains.find(session.request.request_uri.host)
        if domain is None:
            return None
        admission = await self._admit(domain, session)
        if not admission.admitted:
            if admission.refusal is not None:
                self._refused(
                    admission.refusal,
                    session.flow.remote[0],
                    domain=domain.domain_name,
                    **({"user": admission.username} if admission.username else {}),
                )
            return functools.partial(_refuse, admission)
        billing = self.runtime.context.billing
        if billing is not None and await billing.is_spent(domain.account_sid):
            return functools.partial(_refuse, Admission(403))
        if not domain.voice_url:
            return functools.partial(_refuse, Admission(404))
        return functools.partial(self.run_call, domain)

    async def _admit(self, domain: SipDomain, session: InviteSession) -> Admission:
        if domain.secure:
            refusal = insecure(session.flow.transport, session.offer)
            if refusal is not None:
                return refusal
        source = session.flow.remote[0]
        if listed(source, await self.networks.get(domain.sid)):
            return Admission()
        request, now = session.request, self._clock()
        screened = self.gate.screen(
            request, source, has_credentials=await self.has_credentials.get(domain.sid), now=now
        )
        if isinstance(screened, Admission):
            return screened
        candidates = await self._store.domain_mappings.credentials(
            domain.sid, CALL_KINDS, screened.username
        )
        return self.gate.verify(request, source, screened, candidates, self._clock())

    async def run_call(self, domain: SipDomain, call: Call) -> None:
        token = await self.runtime.context.token_of(domain.account_sid)
        if token is None:
            call.reject(404)
            return
        session = call.session
        uri = session.request.request_uri
        caller = session.request.from_.uri
        await run_offered_call(
            self.runtime,
            call,
            domain,
            token=token,
            caller=f"sip:{caller.user}@{caller.host}" if caller.user else f"sip:{caller.host}",
            to=f"sip:{uri.user}@{domain.domain_name}" if uri.user else f"sip:{domain.domain_name}",
            params=[
                ("SipDomain", domain.domain_name),
                ("SipDomainSid", domain.sid),
                ("SipSourceIp", session.flow.remote[0]),
                *sip_params(session),
            ],
            final_status=final_status,
            sip_call_id=session.call_id,
        )


async def _has_call_credentials(store, domain_sid: str) -> bool:
    has: bool = await store.domain_mappings.has_credential_lists(domain_sid, CALL_KINDS)
    return has


async def _refuse(admission: Admission, call: Call) -> None:
    """Answer the INVITE with the admission's status (403, 404, or 407 and a challenge)."""
    call.reject_status = admission.status
    call.session.reject(admission.status, admission.reason, headers=list(admission.headers))
