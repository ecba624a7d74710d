"""Wires the planes into one process and runs it until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import functools
import gc
import hmac
import ipaddress
import logging
import os
import secrets
import signal
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from callswitch.config import Settings, _interface_addresses
from callswitch.descriptors import ConnectionBudget, connection_budget, raise_open_files_limit
from callswitch.front_door import Entrance, docs_pages, mount_front_door
from callswitch.http import HttpServer
from callswitch.memory_debug import MemoryDebug, frames_from_env
from callswitch.metrics import CONTENT_TYPE, Metrics
from callswitch.refusals import Refusals
from callswitch.rtpengine_admin import rtpengine_admin
from control_api import console, demo
from control_api.api import create_app
from control_api.api.cluster import cluster_router
from control_api.api.tokens import IceServers
from control_api.builtin_apps import BUILTIN_APPS
from control_api.call_log import CallLog
from control_api.calls.browser import BrowserClients
from control_api.calls.call import CallManager, MediaSettings
from control_api.calls.dialer import Dialer
from control_api.calls.inbound_trunk import InboundTrunks
from control_api.calls.trunk_health import TrunkPinger
from control_api.calls.trunk_registrations import TrunkRegistrations, trunk_views
from control_api.cluster import ClusterConferences, ClusterLiveCalls, Node
from control_api.fetch_policy import FetchPolicy
from control_api.registrations import start_registrar
from control_api.sip_domain_access import DomainGate
from control_api.sip_locator import SipLocator
from control_api.sms.media import MediaFetcher
from control_api.sms.service import Messaging
from control_api.sms.sip_carrier import SipMessageCarrier, serve_inbound_messages
from control_api.sms.smpp_carrier import SmppCarrier
from control_api.speech_provider import speech_provider_from
from control_api.store import CallRecord, ParticipantRecord, Store
from control_api.usage.billing import Billing
from control_api.usage.pricing import PriceList
from control_api.voice import speech_uses
from control_api.voice.audio import AudioLoader
from control_api.voice.browser import run_browser_call
from control_api.voice.conference import Conferences
from control_api.voice.conference_audio import AnnouncementSources
from control_api.voice.context import VoiceContext, is_our_number, numbers_of, tokens_of
from control_api.voice.inbound import VoiceApps
from control_api.voice.lifecycle import journals_settled
from control_api.voice.live import LiveCall, LocalLiveCalls
from control_api.voice.port import (
    NewCall,
    NewParticipant,
    NewRecording,
    NewStream,
    NewTranscription,
    NewTwiml,
    StreamInfo,
    TranscriptionInfo,
)
from control_api.voice.runtime import VoiceRuntime
from control_api.voice.sip_domain import SipDomainCalls
from control_api.voice.validation import ValidationCalls
from control_api.webhooks import Outbox, WebhookClient, node_claimant
from media.clock import MediaClock
from media.ports import PortPool
from media.rtpengine.client import RtpEngines
from media.rtpengine.dtmf_listener import NG_TCP, DtmfLogListener, parse_listen_address
from media.rtpengine.selection import parse_engine
from media.speech import EmbeddedSpeech
from media.tts import TextToSpeech
from media.watchdog import SilenceWatchdog
from sip.connections import ConnectionTable
from sip.endpoint import SipEndpoint
from sip.source_limits import SourceGuard, TrustedNetworks
from sip.transport import client_tls_context, server_tls_context
from turn.server import TurnServer, TurnSettings

if TYPE_CHECKING:
    from signaling.server import SignalingServer

__all__ = ["Server", "database_url", "serve"]

log = logging.getLogger("callswitch")

SHUTDOWN_GRACE_S = 2.0
SIP_MESSAGE_TIMEOUT_S = 30.0  # a SIP connection's first message, or any message begun
SIP_IDLE_TIMEOUT_S = 600.0  # a SIP connection that carried messages, then nothing
SIP_PRESSURE_IDLE_TIMEOUT_S = 60.0  # the same, once 3/4 of the SIP share is held
GC_YOUNG_THRESHOLD = 20_000  # net container allocations between young collections (serve())


def database_url(settings: Settings) -> str:
    """``--database-url``, or the SQLite file under ``--data-dir``."""
    if settings.database_url:
        return settings.database_url
    return f"sqlite+aiosqlite:///{Path(settings.data_dir).resolve() / 'callswitch.db'}"


def _reachable(bind: str) -> str:
    """An address our own listener answers on: the bound one, or loopback for a wildcard."""
    return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(bind, bind)


def _base_url(s: Settings) -> str:
    """This node's HTTP listener as a URL: https with --http-tls-cert."""
    scheme = "https" if s.http_tls_cert else "http"
    return f"{scheme}://{_url_host(s.public_address)}:{s.http_port}"


def _url_host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


class _NoLiveCalls:
    """The REST API's view of live calls on a node that runs no SIP."""

    def live_of(self, account_sid: str) -> list[LiveCall]:
        return []

    async def hangup(self, account_sid: str, call_sid: str) -> bool:
        return False

    cancel = hangup

    async def redirect(self, account_sid: str, call_sid: str, to: NewTwiml) -> bool:
        return False

    async def create(self, account_sid: str, call: NewCall) -> CallRecord | None:
        return None

    async def add_participant(
        self, account_sid: str, conference: str, participant: NewParticipant
    ) -> ParticipantRecord | None:
        return None

    async def start_stream(
        self, account_sid: str, call_sid: str, stream: NewStream
    ) -> StreamInfo | None:
        return None

    async def stop_stream(
        self, account_sid: str, call_sid: str, sid_or_name: str
    ) -> StreamInfo | None:
        return None

    async def start_transcription(
        self, account_sid: str, call_sid: str, transcription: NewTranscription
    ) -> TranscriptionInfo | None:
        return None

    async def stop_transcription(
        self, account_sid: str, call_sid: str, sid_or_name: str
    ) -> TranscriptionInfo | None:
        return None

    async def start_recording(
        self, account_sid: str, call_sid: str, recording: NewRecording
    ) -> str | None:
        return None

    async def update_recording(
        self, account_sid: str, call_sid: str, sid: str, status: str, pause_behavior: str
    ) -> str | None:
        return None


class Server:
    """Every plane of one node, started and stopped together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store: Store | None = None
        self.sip: SipEndpoint | None = None
        self.calls: CallManager | None = None
        self.voice: VoiceApps | None = None
        self.sip_domains: SipDomainCalls | None = None  # INVITEs to SIP domains
        self.trunk_registrations: TrunkRegistrations | None = None  # ;register trunks
        self.media: MediaSettings | None = None
        self.audio: AudioLoader | None = None  # <Play>'s fetched audio and its cache
        self.http: HttpServer | None = None
        self.outbox: Outbox | None = None
        self.call_log: CallLog | None = None
        self.turn: TurnServer | None = None
        self.node: Node | None = None
        # REST credentials need a secret; without --turn-secret one is made per
        # process (never logged), so tokens minted here work on this node only.
        self.turn_secret = settings.turn_secret or secrets.token_urlsafe(32)
        # Where browsers and the Tokens resource find our relay.
        self.relay = IceServers(
            self.turn_secret,
            settings.public_address,
            settings.turn_port,
            settings.turn_tls_port if settings.sip_tls_cert else None,
        )
        self.billing: Billing | None = None
        self.messaging: Messaging | None = None
        self.signaling: SignalingServer | None = None  # when WebRTC runs
        self.clock = MediaClock()
        # Every guard reports what it turned away here: logged once per source, counted.
        self.refusals = Refusals()
        self.fetch_policy: FetchPolicy | None = None
        self.metrics = Metrics(self)
        self.draining = False
        self.listeners: dict[str, str] = {}
        self._closers: list = []
        self.rtpengines: RtpEngines | None = None  # --rtpengine
        self._trusted = TrustedNetworks(settings.trusted_peer)
        self.budget: ConnectionBudget | None = None  # once started
        self.connection_tables: dict[str, ConnectionTable] = {}  # by listener, for /metrics

    def _connection_table(
        self, listener: str, max_total: int, **timeouts: float
    ) -> ConnectionTable:
        """Per-source caps (--max-connections-per-ip, --trusted-peer exempt) and a
        share of the descriptors for one listener, which /metrics reads."""
        table = ConnectionTable(
            asyncio.get_running_loop().time,
            max_per_source=self.settings.max_connections_per_ip,
            max_total=max_total,
            trusted=self._trusted,
            **timeouts,
        )
        self.connection_tables[listener] = table
        return table

    def _reserve_descriptors(self) -> None:
        """Raise the open-file limit and keep a reserve that connections cannot take."""
        s = self.settings
        ports = 0
        if s.runs("sip"):
            ports += s.rtp_ports[1] - s.rtp_ports[0] + 1
        if s.runs("turn"):
            ports += s.relay_ports[1] - s.relay_ports[0] + 1
        self.budget = budget = connection_budget(raise_open_files_limit(), ports)
        log.info(
            "descriptors",
            extra={
                "limit": budget.limit,
                "reserve": budget.reserve,
                "sip_connections": budget.sip,
                "http_connections": budget.http,
            },
        )

    async def start(self) -> None:
        s = self.settings
        data = Path(s.data_dir)
        data.mkdir(parents=True, exist_ok=True)
        if s.runs("sip") or s.runs("api"):
            self.store = await Store.open(database_url(s))
            await self._seed_account()
            # --fetch-deny: every URL the node fetches for an account is checked first.
            self.fetch_policy = FetchPolicy(s.fetch_deny, self.refusals)
            webhooks = WebhookClient(guard=self.fetch_policy)
            webhooks.on_result = self.metrics.observe_webhook
            self.claimant = node_claimant(s.data_dir)
            self.outbox = Outbox(
                self.store, webhooks, self.store.accounts.auth_token, claimant=self.claimant
            )
            self.outbox.start()
            # Call logs: what calls' webhooks met, written off the calls' path.
            self.call_log = CallLog(self.store)
            webhooks.on_exchange = self.call_log.exchanged
            self.outbox.on_failed = self.call_log.callback_failed
            self._closers += [self.call_log.stop, self.outbox.stop, webhooks.close]
            await self._start_billing(webhooks)
            await self._start_node()
        self._reserve_descriptors()  # before any listener, after the store opened
        if s.runs("turn"):
            await self._start_turn()
        if s.runs("sip"):
            await self._start_sip(data)
        if s.runs("api"):
            assert self.store is not None  # opened above for the API
            assert self.budget is not None  # reserved above, before any listener
            assert self.node is not None  # registered above, with the store
            local = LocalLiveCalls(self.voice.runtime) if self.voice else _NoLiveCalls()
            calls = ClusterLiveCalls(local, self.store, self.node, lambda: self.draining)
            rooms = self.voice.context.conferences if self.voice else None
            app = create_app(
                self.store,
                calls,
                live_conferences=(
                    ClusterConferences(rooms, calls, self.store) if rooms is not None else None
                ),
                recordings_dir=data / "recordings",
                ice_servers=self.relay,
                messaging=self.messaging,
                billing=self.billing,
                caller_id_validations=ValidationCalls(self.voice.runtime) if self.voice else None,
                verified_caller_ids=s.verified_caller_ids,
            )
            app.include_router(demo.router)
            app.include_router(cluster_router(local, rooms))
            app.include_router(console.router)
            app.state.trunk_views = lambda: trunk_views(s.trunk, self.trunk_registrations)
            mount_front_door(
                app,
                Entrance(
                    s.public_address,
                    self.listeners,  # read per request: every listener by then
                    demo_number=demo.DEMO_NUMBER.lstrip("+") if s.demo else None,
                    apps=tuple(BUILTIN_APPS) if s.runs("sip") else (),
                    docs=docs_pages(),
                ),
            )
            app.add_api_route("/metrics", self._metrics_page, methods=["GET"])
            app.include_router(
                rtpengine_admin(lambda: self.rtpengines, s.admin_token, self.refusals)
            )
            app.add_api_route("/health", self._health, methods=["GET"])
            app.add_api_route("/ready", self._ready, methods=["GET"])
            if self.signaling is not None:
                self._start_webrtc(app, self.signaling)
            self.http = HttpServer(
                app,
                s.bind,
                s.http_port,
                table=self._connection_table(
                    "http",
                    self.budget.http,
                    message_timeout=float("inf"),  # callswitch/http.py times requests
                    idle_timeout=float("inf"),
                    pressure_idle_timeout=float("inf"),
                ),
                refused=self.refusals,
                tls_cert=s.http_tls_cert,
                tls_key=s.http_tls_key,
            )
            await self.http.start()
            self.listeners["http"] = self.http.address
        if s.demo and self.http is not None:
            await self._ensure_demo_number()
        log.info("ready", extra={"public_address": s.public_address, **self.listeners})
        if self.calls is not None:
            host = f"{s.public_address}:{s.sip_port}"
            apps = {name: f"sip:{name}@{host}" for name in BUILTIN_APPS}
            if s.demo and self.http is not None:
                apps["demo"] = f"sip:{demo.DEMO_NUMBER.lstrip('+')}@{host}"
            log.info("apps", extra=apps)

    async def _start_billing(self, webhooks: WebhookClient) -> None:
        """Pricing, usage and triggers; the message service and its carriers."""
        assert self.store is not None and self.outbox is not None  # start() opened them
        s = self.settings
        self.billing = Billing(
            self.store,
            self.store.billing,
            self.outbox,
            PriceList(tuple(s.price)),
            billing_webhook=s.billing_webhook,
        )
        repriced = await self.billing.reconcile()
        if repriced:
            log.info("billing.reconciled", extra={"priced": repriced})
        fetcher = MediaFetcher(guard=self.fetch_policy)  # MMS media's MediaUrl
        self._closers.append(fetcher.close)
        self.messaging = Messaging(
            self.store,
            self.outbox,
            webhooks,
            billing=self.billing,
            claimant=self.claimant,
            media_fetcher=fetcher,
            base_url=_base_url(s),
        )
        for smsc in s.smpp:
            carrier = SmppCarrier(smsc, self.messaging.events)
            self.messaging.add_carrier(carrier)
            carrier.start()
            self._closers.append(carrier.stop)
        self.messaging.start()
        self._closers.append(self.messaging.stop)

    async def _start_node(self) -> None:
        """Register this node (--node-id) and fail the calls its last run lost, before
        any call is taken; then heartbeat and reap peers lost for --node-lease."""
        s = self.settings
        url = s.node_url or _base_url(s)
        self.node = Node(self.store, s.node_id, url, lease_s=s.node_lease, billing=self.billing)
        lost = await self.node.start()
        self._closers.append(self.node.stop)
        log.info("node", extra={"node_id": s.node_id, "node_url": url, "calls_lost": lost})

    async def _start_sip(self, data: Path) -> None:
        # start() opened the store and outbox (SIP needs them) and reserved descriptors.
        assert self.store is not None and self.outbox is not None and self.budget is not None
        s = self.settings
        tts = TextToSpeech(data / "cache" / "tts")
        audio = self.audio = AudioLoader(
            guard=self.fetch_policy,
            max_bytes=s.audio_cache_mb * 1024 * 1024,
            refused=self.refusals,
        )
        self._closers.append(audio.close)
        tls_client = client_tls_context(s.sip_tls_ca, s.sip_tls_cert, s.sip_tls_key)
        self.sip = SipEndpoint(
            s.bind,
            s.sip_port,
            s.public_address,
            tls_client=tls_client,
            connections=self._connection_table(
                "sip",
                self.budget.sip,
                message_timeout=SIP_MESSAGE_TIMEOUT_S,
                idle_timeout=SIP_IDLE_TIMEOUT_S,
                pressure_idle_timeout=SIP_PRESSURE_IDLE_TIMEOUT_S,
            ),
            refused=self.refusals,
        )
        self.sip.ua.guard = SourceGuard(
            rate=s.sip_rate_limit,
            max_calls=s.max_calls_per_ip,
            trusted=self._trusted,
            refused=self.refusals,
        )
        await self.sip.start()
        await self._start_sip_tls()
        await self._start_sip_ws()
        watchdog = SilenceWatchdog(s.rtp_timeout, s.rtp_hold_timeout)
        from callswitch.webrtc import webrtc_legs

        media = self.media = MediaSettings(
            s.bind,
            s.public_address,
            PortPool(*s.rtp_ports),
            self.clock,
            watchdog,
            webrtc=webrtc_legs(s, self.clock),  # browser phones' dialogs (SIP over WebSocket)
        )
        numbers = numbers_of(self.store)
        registrar = start_registrar(
            self.sip.ua,
            self.store,
            data,
            max_failures=s.auth_max_failures,
            lockout=s.auth_lockout,
            refused=self.refusals,
        )
        dialer = Dialer(
            self.sip.ua,
            media,
            s.trunk,
            local_addresses=frozenset({s.public_address, s.bind, "127.0.0.1", "localhost"}),
            self_address=(_reachable(s.bind), self.sip.ua.port),
            is_our_number=functools.partial(is_our_number, numbers),
            registrar=registrar,
            deny=s.dial_deny,
            refused=self.refusals,
            locator=SipLocator(s.dns_server),
            call_log=self.call_log,
        )
        # ping=S trunks: OPTIONS to every host, those that stop answering are skipped.
        pinger = TrunkPinger(self.sip.ua, s.trunk, dialer.health, dialer.locate_trunk)
        pinger.start()
        self._closers.append(pinger.stop)
        browsers = None
        if s.runs("webrtc") and s.runs("api"):
            from callswitch.webrtc import signaling_server

            self.signaling = signaling = signaling_server(self.store, media, s, self.relay)
            browsers = BrowserClients(signaling, media)
        tokens = tokens_of(self.store)
        sources = AnnouncementSources(
            self.outbox.client.fetch_twiml, tts.synthesize, audio.load, tokens.get
        )
        speech = speech_provider_from(
            s.speech_provider,
            api_key=s.speech_api_key,
            model=s.speech_model,
            guard=self.fetch_policy,
            workers=max(1, (os.cpu_count() or 1) - 1),  # a core left for the media clock
        )
        self._closers.append(functools.partial(_close_speech, speech))
        self.rtpengines = await _rtpengines(s.rtpengine, s.rtpengine_dtmf_log)
        if self.rtpengines is not None:
            self._closers.append(self._close_rtpengines)
            if s.rtpengine_dtmf_log:  # the address bound (a port 0 made real), or ng-tcp
                bound = self.rtpengines.dtmf_log and self.rtpengines.dtmf_log.address
                heard = "%s:%d" % bound if bound else s.rtpengine_dtmf_log
                self.listeners["rtpengine_dtmf_log"] = heard
        runtime = VoiceRuntime(
            VoiceContext(
                store=self.store,
                outbox=self.outbox,
                webhooks=self.outbox.client,
                synthesize=tts.synthesize,
                load_audio=audio.load,
                numbers=numbers,
                tokens=tokens,
                dialer=dialer,
                billing=self.billing,
                browsers=browsers,
                conferences=Conferences(self.store, self.clock, self.outbox, sources),
                refused=self.refusals,
                fetch_guard=self.fetch_policy,
                recordings_dir=data / "recordings",
                base_url=_base_url(s),
                call_log=self.call_log,
                speech=speech,
                transcriber=speech_uses.transcriber(speech),
                speech_listener=speech_uses.listeners(speech),
                rtpengines=self.rtpengines,
            )
        )
        if browsers is not None:  # a browser tab's own calls run on the runtime
            browsers.server.on_dial = functools.partial(run_browser_call, runtime)
        # ;register trunks keep a binding at their carrier; calls from a trunk route
        # by the number its did= names (docs/routing.md, "Registration").
        self.trunk_registrations = TrunkRegistrations(self.sip.ua, s.trunk, node_id=s.node_id)
        inbound = InboundTrunks(s.trunk, self.trunk_registrations)
        inbound.start()
        self._closers.append(inbound.stop)
        self.voice = VoiceApps(runtime, inbound)
        self.sip_domains = SipDomainCalls(
            runtime,
            DomainGate(
                registrar.authenticator, max_failures=s.auth_max_failures, lockout=s.auth_lockout
            ),
            refused=self.refusals,
        )
        self.calls = CallManager(self.sip.ua, media, self._route)
        self.trunk_registrations.start()
        if self.messaging is not None:
            for trunk in s.trunk:
                self.messaging.add_carrier(
                    SipMessageCarrier(trunk, self.sip.ua, self.messaging.events)
                )
            serve_inbound_messages(self.sip.ua, self.messaging.events)
        self.listeners.update(self.sip.transports.listeners())
        self.listeners["rtp"] = "%d-%d" % s.rtp_ports

    async def _start_turn(self) -> None:
        """The TURN relay; over TLS too when the node has a certificate (--sip-tls-cert)."""
        s = self.settings
        tls = server_tls_context(s.sip_tls_cert, s.sip_tls_key) if s.sip_tls_cert else None
        self.turn = TurnServer(
            TurnSettings(
                bind=s.bind,
                port=s.turn_port,
                tls_port=s.turn_tls_port if tls else None,
                tls_context=tls,
                relay_ports=s.relay_ports,
                public_address=s.public_address,
                realm=s.turn_realm,
                users=list(s.turn_user),
                secret=self.turn_secret,
                allow_peers=list(s.turn_allow_peer),
                own_addresses={*_interface_addresses(), s.public_address, s.bind},
            ),
            refused=self.refusals,
        )
        await self.turn.start()
        self._closers.append(self.turn.close)
        self.listeners.update(self.turn.listeners)

    def _start_webrtc(self, app: FastAPI, signaling: SignalingServer) -> None:
        """Browser clients: the signaling WebSocket, /phone and the SDK on the HTTP port."""
        from callswitch.webrtc import mount_webrtc

        self._closers.append(mount_webrtc(app, signaling).close)
        self.listeners["webrtc"] = "/signaling"
        self.listeners["twilio_sdk"] = "/signal"

    async def _start_sip_tls(self) -> None:
        """The SIP TLS listener, when there is a certificate to present."""
        assert self.sip is not None  # _start_sip made it
        s = self.settings
        if not s.sip_tls_cert:
            log.info(
                "sip.tls_disabled",
                extra={"reason": "no certificate: set --sip-tls-cert and --sip-tls-key"},
            )
            return
        await self.sip.start_tls(s.sip_tls_port, server_tls_context(s.sip_tls_cert, s.sip_tls_key))

    async def _start_sip_ws(self) -> None:
        """SIP over WebSocket (RFC 7118) on --sip-ws-port, and over WSS on
        --sip-wss-port when the node has an HTTPS certificate (--http-tls-cert)."""
        assert self.sip is not None  # _start_sip made it
        s = self.settings
        if s.sip_ws_port:
            await self.sip.start_ws(s.sip_ws_port)
        if s.sip_wss_port and s.http_tls_cert:
            context = server_tls_context(s.http_tls_cert, s.http_tls_key)
            await self.sip.start_ws(s.sip_wss_port, context)

    async def _metrics_page(self, request: Request) -> Response:
        """The Prometheus page; with --metrics-token, only for ``Bearer <token>``."""
        token = self.settings.metrics_token
        if token:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode(), token.encode()
            ):
                client = request.client.host if request.client else ""
                self.refusals("metrics.unauthorized", client)
                return Response(
                    "401 Unauthorized\n",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(self.metrics.render(), media_type=CONTENT_TYPE)

    async def _health(self) -> JSONResponse:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok"})

    async def _ready(self) -> JSONResponse:
        """Readiness: 200 while the node takes new calls, 503 once it drains."""
        if self.draining:
            return JSONResponse({"status": "draining", "live_calls": self.live_calls()}, 503)
        return JSONResponse({"status": "ready", "live_calls": self.live_calls()})

    # -- draining

    def live_calls(self) -> int:
        """Calls in progress on this node, inbound and placed."""
        count = len(self.calls.calls) if self.calls is not None else 0
        dialer = self.voice.context.dialer if self.voice is not None else None
        return count + (len(dialer.live_calls()) if dialer is not None else 0)

    def drain(self) -> None:
        """Take no new calls (INVITEs get 503, /ready says 503); current ones go on."""
        self.draining = True
        if self.calls is not None:
            self.calls.accepting = False
        log.info("draining", extra={"live_calls": self.live_calls()})

    async def drained(self, timeout: float) -> None:
        """Wait until no call is left, or ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.live_calls() and loop.time() < deadline:
            await asyncio.sleep(0.1)

    async def _route(self, session):
        # A SIP domain's INVITE (its Request-URI host) is the domain's, whatever its user.
        if self.sip_domains is not None:
            app = await self.sip_domains.app_for(session)
            if app is not None:
                return app
        app = BUILTIN_APPS.get(session.user)
        if app is None and self.voice is not None:
            app = await self.voice.app_for_invite(session)
        return app

    async def _seed_account(self) -> None:
        """CALLSWITCH_ACCOUNT_SID/AUTH_TOKEN seed the first account; an empty store
        without them gets a fresh one, whose credentials are logged once."""
        assert self.store is not None  # start() just opened it
        s = self.settings
        if s.account_sid and s.auth_token:
            await self.store.accounts.ensure(s.account_sid, s.auth_token)
        elif not await self.store.accounts.all():
            account = await self.store.accounts.create("callswitch")
            log.info(
                "account.created",
                extra={"account_sid": account.sid, "auth_token": account.auth_token},
            )

    async def _ensure_demo_number(self) -> None:
        assert self.store is not None and self.http is not None  # the API runs
        if await self.store.numbers.find(demo.DEMO_NUMBER) is not None:
            return
        accounts = await self.store.accounts.all()
        owner = next((a for a in accounts if a.sid == self.settings.account_sid), accounts[0])
        host = self.http.address.rsplit(":", 1)[0]
        if ipaddress.ip_address(host).is_unspecified:
            host = "127.0.0.1"
        await self.store.numbers.create(
            owner.sid,
            demo.DEMO_NUMBER,
            friendly_name="callswitch demo",
            voice_url=f"http://{host}:{self.http.address.rsplit(':', 1)[1]}{demo.DEMO_PATH}",
        )
        log.info(
            "demo.number_created",
            extra={"account_sid": owner.sid, "phone_number": demo.DEMO_NUMBER},
        )

    async def stop(self) -> None:
        """End calls cleanly (BYE), let their transactions finish, then close."""
        if self.sip is not None:
            if self.trunk_registrations is not None:
                self.trunk_registrations.stop()  # Expires: 0; the wait below covers it
            ended = self.sip.ua.hangup_all()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SHUTDOWN_GRACE_S
            layer = self.sip.ua.layer
            calls = self.calls  # None when start() failed after the SIP endpoint was made
            while (
                layer.awaiting_responses() or (calls is not None and calls.calls)
            ) and loop.time() < deadline:
                await asyncio.sleep(0.05)
            log.info("stopping", extra={"calls_ended": ended})
            await self.sip.close()
        # The calls just hung up record how they ended (store rows, status callbacks)
        # before the webhook client and the store close.
        if not await journals_settled(SHUTDOWN_GRACE_S):
            log.warning("stopping.journals_unsettled")
        if self.signaling is not None:
            self.signaling.close()
        if self.media is not None and self.media.watchdog is not None:
            self.media.watchdog.close()
        if self.http is not None:
            await self.http.stop()
        for close in reversed(self._closers):
            await close()
        if self.store is not None:
            await self.store.close()
        log.info(
            "media_clock",
            extra={
                "skipped_ticks": self.clock.skipped,
                "max_lag_ms": round(self.clock.max_lag * 1000, 1),
            },
        )
        self.clock.close()

    async def _close_rtpengines(self) -> None:
        if self.rtpengines is not None:
            self.rtpengines.close()


async def _rtpengines(specs: list[str], dtmf_log: str | None) -> RtpEngines | None:
    """--rtpengine: the instances bridged calls are handed to, and where their DTMF
    log arrives (--rtpengine-dtmf-log), bound for as long as the node runs
    (docs/rtpengine.md)."""
    if not specs:
        if dtmf_log:
            log.warning("rtpengine.dtmf_log_unused", extra={"reason": "no --rtpengine"})
        return None
    addresses = [parse_engine(spec) for spec in specs]
    listener = None
    if dtmf_log == NG_TCP:
        listener = DtmfLogListener()
        listener.connect(addresses)
    elif dtmf_log:
        listener = DtmfLogListener()
        await listener.bind(*parse_listen_address(dtmf_log))
    return RtpEngines(addresses, dtmf_log=listener)


async def _close_speech(speech: object) -> None:
    if isinstance(speech, EmbeddedSpeech):
        speech.close()  # its worker processes


async def serve(settings: Settings) -> None:
    signals: asyncio.Queue[signal.Signals] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):  # before start: a SIGTERM then still counts
        loop.add_signal_handler(signum, signals.put_nowait, signum)
    memory = _memory_debug(loop, settings)  # CALLSWITCH_TRACEMALLOC: off unless set
    server = Server(settings)
    await server.start()
    # Everything start-up built lives as long as the process: take it out of the
    # collector's view, so that full collections (which pause the loop, media
    # included) only walk what calls create.
    gc.collect()
    gc.freeze()
    # Media allocates a few short-lived tuples per packet; the default thresholds
    # then run a young collection every few milliseconds and, with thousands of
    # call objects alive, full ones often enough to stall the relay for tens of
    # milliseconds. Collect young objects less often; full collections rarely. That
    # holds memory steady only while calls leave no reference cycles behind (an
    # ended call's objects must go by reference counting): tests check the
    # SIP session and the TwiML runner, and loadtest/soak.py the whole process.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 50, 100)
    await signals.get()
    if settings.drain_timeout > 0 and server.live_calls():
        server.drain()
        second = asyncio.ensure_future(signals.get())  # a second signal: stop at once
        drained = asyncio.ensure_future(server.drained(settings.drain_timeout))
        await asyncio.wait([second, drained], return_when=asyncio.FIRST_COMPLETED)
        second.cancel()
        drained.cancel()
    await server.stop()
    if memory is not None:
        memory.uninstall(loop)
    log.info("stopped")


def _memory_debug(loop: asyncio.AbstractEventLoop, settings: Settings) -> MemoryDebug | None:
    frames = frames_from_env()
    if frames is None:
        return None
    memory = MemoryDebug(frames, Path(settings.data_dir) / "tracemalloc")
    memory.install(loop)
    log.warning("tracemalloc ready (%d frames): SIGUSR2 starts, then dumps", frames)
    return memory
