"""A local DNS server for tests (dnslib): serves a zone given as text on 127.0.0.1.

    with LocalDns('''
        carrier.test. 60 IN NAPTR 10 10 "S" "SIP+D2U" "" _sip._udp.carrier.test.
        _sip._udp.carrier.test. 60 IN SRV 10 0 5070 a.carrier.test.
        a.carrier.test. 60 IN A 127.0.0.1
    ''') as dns:
        ... --dns-server 127.0.0.1:{dns.port}

Names it does not hold get NXDOMAIN; ``dns.queries`` lists every (name, type) asked.
"""

from __future__ import annotations

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer

__all__ = ["LocalDns"]


class _Zone(BaseResolver):
    def __init__(self, text: str) -> None:
        self.records = RR.fromZone(text)
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request, handler):
        reply = request.reply()
        question = request.q
        name, qtype = question.qname, QTYPE[question.qtype]
        self.queries.append((str(name).rstrip("."), qtype))
        known = False
        for record in self.records:
            if record.rname == name:
                known = True
                if QTYPE[record.rtype] == qtype:
                    reply.add_answer(record)
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


class LocalDns:
    def __init__(self, zone: str) -> None:
        self.zone = _Zone(zone)
        quiet = DNSLogger(logf=lambda text: None)
        self.server = DNSServer(self.zone, address="127.0.0.1", port=0, logger=quiet)

    @property
    def port(self) -> int:
        return int(self.server.server.server_address[1])

    @property
    def queries(self) -> list[tuple[str, str]]:
        return self.zone.queries

    def __enter__(self) -> LocalDns:
        self.server.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
