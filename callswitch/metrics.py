"""``/metrics``: the node in Prometheus's text format (prometheus-client).

Nothing on a media path counts for Prometheus. The planes keep plain counters
of their own (the SIP transaction layer's :class:`~sip.stats.SipCounters`, each
RTP session's reception statistics, the port pool's totals of ended sessions,
the Media Streams clients' drop counts) and :class:`NodeCollector` reads them
when Prometheus scrapes. Only webhooks, a few a second at most, are observed
as they happen, into a histogram.

Call quality per codec is an estimate: jitter and loss come from the RTP
sessions' RFC 3550 statistics, MOS from the E-model (:mod:`media.quality`)
with the delay we add (the jitter buffer) plus twice the measured jitter, since
the network's own delay is not known here.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from control_api.voice.lifecycle import FINISHED_CALLS
from control_api.voice.stream import STREAMS
from media.quality import RtpTotals, leg_quality
from media.rtpengine.client import Totals
from sip.registration import RegistrationState

__all__ = ["CONTENT_TYPE", "Metrics", "NodeCollector"]

# The classic text format (0.0.4), which every Prometheus release reads; the names
# here need none of 1.0.0's escaping.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

WEBHOOK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0)


class NodeCollector(Collector):
    """Reads the live objects of one :class:`~callswitch.server.Server` at scrape time."""

    def __init__(self, server) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        yield from self._calls()
        yield from self._sip()
        yield from self._rtp()
        yield from self._streams()
        yield from self._browsers()
        yield from self._turn()
        yield from self._clock()
        yield from self._messages()
        yield from self._refusals()
        yield from self._connections()
        yield from self._trunk_hosts()
        yield from self._trunks()
        yield from self._rtpengine()

    # -- calls

    def _calls(self) -> Iterator[Metric]:
        server = self.server
        active = GaugeMetricFamily(
            "callswitch_calls_active",
            "Calls in progress (ringing or answered) by direction and the kind of leg",
            labels=["direction", "leg"],
        )
        counts: dict[tuple[str, str], int] = defaultdict(int)
        if server.calls is not None:
            for call in server.calls.calls.values():
                counts["inbound", _leg_kind(call.leg)] += 1
        dialer = server.voice.context.dialer if server.voice is not None else None
        if dialer is not None:
            for call in dialer.live_calls():
                counts[call.direction, _leg_kind(call.leg)] += 1
        for (direction, leg), count in sorted(counts.items()):
            active.add_metric([direction, leg], count)
        yield active
        finished = CounterMetricFamily(
            "callswitch_calls",
            "Calls that reached a final status since the process started",
            labels=["direction", "status"],
        )
        for (direction, status), count in sorted(FINISHED_CALLS.items()):
            finished.add_metric([direction, status], count)
        yield finished

    # -- SIP

    def _sip(self) -> Iterator[Metric]:
        sip = self.server.sip
        if sip is None:
            return
        counters = sip.ua.layer.counters
        tables = (
            ("requests_received", "SIP requests received", ["method"], counters.requests_received),
            ("requests_sent", "SIP requests sent (new transactions)", ["method"],
             counters.requests_sent),
            ("responses_received", "SIP responses received", ["method", "code"],
             counters.responses_received),
            ("responses_sent", "SIP responses sent by transactions", ["method", "code"],
             counters.responses_sent),
            ("retransmissions", "SIP messages a transaction sent again", ["method"],
             counters.retransmissions),
        )  # fmt: skip
        for name, help_text, labels, table in tables:
            family = CounterMetricFamily(f"callswitch_sip_{name}", help_text, labels=labels)
            for key, count in sorted(table.items()):
                values = [str(part) for part in key] if isinstance(key, tuple) else [key]
                family.add_metric(values, count)
            yield family
        yield CounterMetricFamily(
            "callswitch_sip_parse_errors",
            "SIP messages that could not be parsed (answered 400 or dropped)",
            value=sip.ua.parse_errors,
        )

    # -- RTP

    def _rtp(self) -> Iterator[Metric]:
        media = self.server.media
        if media is None:
            return
        pool = media.pool
        totals: dict[str, RtpTotals] = defaultdict(RtpTotals)
        for codec, ended in pool.ended.items():
            totals[codec].received += ended.received
            totals[codec].lost += ended.lost
            totals[codec].sent += ended.sent
        sessions: dict[str, int] = defaultdict(int)
        jitter: dict[str, list[float]] = defaultdict(list)
        mos: dict[str, list[float]] = defaultdict(list)
        for session in list(pool.sessions):
            quality = leg_quality(session)
            assert quality is not None, "an RTP session keeps reception statistics"
            codec = quality.codec
            sessions[codec] += 1
            totals[codec].received += quality.received
            totals[codec].lost += quality.lost
            totals[codec].sent += session.packets_sent
            if quality.mos is not None:
                jitter[codec].append(quality.jitter_ms / 1000.0)
                mos[codec].append(quality.mos)
        gauges = (
            GaugeMetricFamily("callswitch_rtp_sessions", "RTP sessions open", labels=["codec"]),
            GaugeMetricFamily(
                "callswitch_rtp_jitter_seconds",
                "Mean interarrival jitter (RFC 3550 A.8) of the open sessions",
                labels=["codec"],
            ),
            GaugeMetricFamily(
                "callswitch_rtp_mos_estimate",
                "Mean E-model MOS estimate (ITU-T G.107) of the open sessions",
                labels=["codec"],
            ),
        )
        for codec in sorted(sessions):
            gauges[0].add_metric([codec], sessions[codec])
            if jitter[codec]:
                gauges[1].add_metric([codec], sum(jitter[codec]) / len(jitter[codec]))
                gauges[2].add_metric([codec], sum(mos[codec]) / len(mos[codec]))
        yield from gauges
        if media.watchdog is not None:
            yield CounterMetricFamily(
                "callswitch_rtp_timeouts",
                "Calls hung up because their peer sent no RTP or RTCP for --rtp-timeout "
                "(--rtp-hold-timeout on hold)",
                value=media.watchdog.timeouts,
            )
        audio = getattr(self.server, "audio", None)
        if audio is not None:
            yield GaugeMetricFamily(
                "callswitch_audio_cache_bytes",
                "Decoded <Play> audio held in the cache (bounded by --audio-cache-mb)",
                value=audio.bytes,
            )
            yield CounterMetricFamily(
                "callswitch_audio_cache_evictions",
                "<Play> audio dropped from the cache to stay within --audio-cache-mb",
                value=audio.evictions,
            )
        for field, help_text in (
            ("received", "RTP packets received from peers"),
            ("lost", "RTP packets peers sent that never arrived (RFC 3550 A.3)"),
            ("sent", "RTP packets sent to peers"),
        ):
            family = CounterMetricFamily(
                f"callswitch_rtp_packets_{field}", help_text, labels=["codec"]
            )
            for codec in sorted(totals):
                family.add_metric([codec], getattr(totals[codec], field))
            yield family

    # -- Media Streams and the media clock

    def _streams(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "callswitch_media_streams_active", "Media Streams open", value=len(STREAMS.live)
        )
        yield CounterMetricFamily(
            "callswitch_media_streams_started", "Media Streams opened", value=STREAMS.started
        )
        yield CounterMetricFamily(
            "callswitch_media_streams_failed",
            "Media Streams that refused, timed out or broke",
            value=STREAMS.failed,
        )
        yield CounterMetricFamily(
            "callswitch_media_streams_dropped_messages",
            "Media messages dropped because the application read too slowly",
            value=STREAMS.dropped_total,
        )
        yield CounterMetricFamily(
            "callswitch_media_streams_inbound_dropped_frames",
            "20 ms frames of applications' audio dropped beyond a stream's playout bound",
            value=STREAMS.inbound_dropped_total,
        )
        yield CounterMetricFamily(
            "callswitch_media_streams_read_pauses",
            "Times a stream stopped reading its application: playout queue full, or "
            "past the message budget",
            value=STREAMS.read_pauses_total,
        )

    # -- WebRTC and TURN

    def _browsers(self) -> Iterator[Metric]:
        signaling = getattr(self.server, "signaling", None)
        if signaling is None:
            return
        tabs, calls = signaling.counts()
        yield GaugeMetricFamily(
            "callswitch_webrtc_clients",
            "Browser tabs registered on the signaling WebSocket",
            value=tabs,
        )
        yield GaugeMetricFamily(
            "callswitch_webrtc_calls_active", "Browser tabs' calls in progress", value=calls
        )

    def _turn(self) -> Iterator[Metric]:
        turn = getattr(self.server, "turn", None)
        if turn is None:
            return
        manager = turn.manager
        yield GaugeMetricFamily(
            "callswitch_turn_allocations",
            "TURN allocations (RFC 8656) open",
            value=len(manager.allocations),
        )
        yield CounterMetricFamily(
            "callswitch_turn_relayed_bytes",
            "Bytes the TURN relays carried, both ways (up to a second behind)",
            value=manager.bytes_relayed,
        )

    def _clock(self) -> Iterator[Metric]:
        clock = self.server.clock
        yield CounterMetricFamily(
            "callswitch_media_clock_skipped_ticks",
            "20 ms media ticks given up after the event loop stalled",
            value=clock.skipped,
        )
        yield GaugeMetricFamily(
            "callswitch_media_clock_max_lag_seconds",
            "The latest a media tick has run since the process started",
            value=clock.max_lag,
        )

    # -- SMS

    def _messages(self) -> Iterator[Metric]:
        messaging = self.server.messaging
        counted = CounterMetricFamily(
            "callswitch_messages",
            "Messages that reached each status on this node since it started, by direction",
            labels=["direction", "status"],
        )
        inflight = GaugeMetricFamily(
            "callswitch_messages_inflight",
            "Messages handed to carriers and not yet answered by them",
        )
        if messaging is not None:
            for (direction, status), count in sorted(messaging.status_counts.items()):
                counted.add_metric([direction, status], count)
            inflight.add_metric([], messaging.inflight)
        yield counted
        yield inflight

    # -- security

    def _refusals(self) -> Iterator[Metric]:
        refused = CounterMetricFamily(
            "callswitch_refusals",
            "Requests, connections and media the node's guards turned away, by reason "
            "(docs/security.md)",
            labels=["reason"],
        )
        for reason, count in sorted(self.server.refusals.counts.items()):
            refused.add_metric([reason], count)
        yield refused

    def _connections(self) -> Iterator[Metric]:
        held = GaugeMetricFamily(
            "callswitch_connections",
            "Inbound stream connections open, by listener (sip: TCP and TLS; http)",
            labels=["listener"],
        )
        limit = GaugeMetricFamily(
            "callswitch_connections_limit",
            "The share of descriptors each listener's connections may hold",
            labels=["listener"],
        )
        for listener, table in sorted(self.server.connection_tables.items()):
            held.add_metric([listener], len(table))
            limit.add_metric([listener], table.max_total)
        yield held
        yield limit

    def _trunk_hosts(self) -> Iterator[Metric]:
        """Each trunk host the OPTIONS pings (``ping=S``) watch: 1 up, 0 down."""
        server = self.server
        dialer = server.voice.context.dialer if server.voice is not None else None
        up = GaugeMetricFamily(
            "callswitch_trunk_host_up",
            "Whether a trunk host answers its OPTIONS pings (1) or is marked down (0); "
            "via: the outbound proxy address a trunk's pings go through",
            labels=["trunk", "host", "transport", "via"],
        )
        if dialer is not None:
            for state in list(dialer.health.hosts.values()):
                host, via = (state.entry, state.host) if state.entry else (state.host, "")
                up.add_metric([state.trunk, host, state.transport, via], int(state.up))
        yield up

    # -- trunks

    def _trunks(self) -> Iterator[Metric]:
        registrations = getattr(self.server, "trunk_registrations", None) or ()
        state = GaugeMetricFamily(
            "callswitch_trunk_registration_state",
            "1 for the state each ;register trunk's registration is in (registered, "
            "registering, backing-off, failed, unregistering, stopped, idle), 0 for the others",
            labels=["trunk", "state"],
        )
        expires = GaugeMetricFamily(
            "callswitch_trunk_registration_expires_seconds",
            "Seconds left on each ;register trunk's binding at its carrier (0: none)",
            labels=["trunk"],
        )
        status = GaugeMetricFamily(
            "callswitch_trunk_registration_last_status",
            "The carrier's last final answer to each ;register trunk's REGISTER (408: none)",
            labels=["trunk"],
        )
        failures = GaugeMetricFamily(
            "callswitch_trunk_registration_failures",
            "Failed attempts since each ;register trunk was last registered",
            labels=["trunk"],
        )
        for registration in registrations:
            name = registration.trunk.name
            view = registration.status()
            for each in RegistrationState:
                state.add_metric([name, each.value], 1.0 if view.state is each else 0.0)
            expires.add_metric([name], view.expires_in or 0.0)
            status.add_metric([name], view.last_status or 0)
            failures.add_metric([name], view.failures)
        yield from (state, expires, status, failures)

    def _rtpengine(self) -> Iterator[Metric]:
        engines = self.server.rtpengines  # None without --rtpengine: no instances, zeros
        up = GaugeMetricFamily(
            "callswitch_rtpengine_up",
            "rtpengine instances taking calls (1) or disabled (0)",
            labels=["instance"],
        )
        calls = GaugeMetricFamily(
            "callswitch_rtpengine_calls",
            "bridges this node holds on each instance",
            labels=["instance"],
        )
        drained = GaugeMetricFamily(
            "callswitch_rtpengine_drained",
            "rtpengine instances drained by the operator (1: no new bridges)",
            labels=["instance"],
        )
        for instance in engines.set.instances if engines is not None else []:
            name = str(instance.address)
            up.add_metric([name], 1 if instance.up else 0)
            calls.add_metric([name], instance.calls)
            drained.add_metric([name], 1 if instance.draining else 0)
        yield up
        yield calls
        yield drained
        digits = engines.dtmf_log.stats if engines is not None and engines.dtmf_log else None
        for name, value, what in (
            ("dtmf_events", digits.events if digits else 0, "digits from rtpengine's DTMF log"),
            (
                "dtmf_dropped",
                digits.malformed + digits.unknown + digits.foreign if digits else 0,
                "DTMF log datagrams that were not rtpengine events, not for this node, "
                "or not from an rtpengine instance",
            ),
        ):
            yield CounterMetricFamily(f"callswitch_rtpengine_{name}", what, value=value)
        totals = engines.totals if engines is not None else Totals()
        for name, value, what in (
            ("offers", totals.offers, "bridges offered to rtpengine"),
            (
                "refused",
                totals.refused,
                "offers or answers rtpengine refused (the bridge stayed in process)",
            ),
            ("unreachable", totals.unreachable, "ng commands no instance answered"),
            ("deletes", totals.deletes, "rtpengine calls deleted at the end of their bridge"),
            ("relayed_packets", totals.packets, "RTP packets rtpengine relayed for deleted calls"),
            ("relayed_bytes", totals.bytes, "RTP bytes rtpengine relayed for deleted calls"),
            ("errors", totals.errors, "RTP errors rtpengine counted for deleted calls"),
        ):
            yield CounterMetricFamily(f"callswitch_rtpengine_{name}", what, value=value)


def _leg_kind(leg) -> str:
    return "none" if leg is None else leg.kind


class Metrics:
    """One node's registry: the collector plus the webhook histogram."""

    def __init__(self, server) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(NodeCollector(server))
        self.webhooks = Histogram(
            "callswitch_webhook_duration_seconds",
            "Webhook and status callback requests by outcome (ok, http_error, unreachable)",
            ["outcome"],
            buckets=WEBHOOK_BUCKETS,
            registry=self.registry,
        )

    def observe_webhook(self, seconds: float, outcome: str) -> None:
        self.webhooks.labels(outcome).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
