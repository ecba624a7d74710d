"""A ;register trunk's registration on a real endpoint, against a registrar on loopback
(control_api/calls/trunk_registrations.py)."""

from __future__ import annotations

import asyncio

from control_api.calls.trunk_registrations import TrunkRegistrations
from control_api.calls.trunks import parse_trunk
from sip.endpoint import SipEndpoint
from sip.message import Request, make_response
from sip.parser import parse_message
from sip.registration import RegistrationState


class TcpRegistrar:
    """Answers every REGISTER 200 (its Contact for 60 s); the test may drop connections."""

    def __init__(self) -> None:
        self.registers: asyncio.Queue[tuple[Request, asyncio.StreamWriter]] = asyncio.Queue()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buffer = b""
        while data := await reader.read(65536):
            buffer += data
            while b"\r\n\r\n" in buffer:
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                if not head.strip():
                    continue  # a keep-alive
                request = parse_message(head + b"\r\n\r\n")
                assert isinstance(request, Request)
                await self.registers.put((request, writer))
                contact = request.headers.get("Contact") or ""
                expires = "0" if request.headers.get("Expires") == "0" else "60"
                response = make_response(
                    request,
                    200,
                    to_tag="reg",
                    headers=[("Contact", f"{contact.split(';+sip')[0]};expires={expires}")],
                )
                writer.write(response.serialize())

    async def next(self) -> tuple[Request, asyncio.StreamWriter]:
        return await asyncio.wait_for(self.registers.get(), 5)

    def close(self) -> None:
        self.server.close()


async def until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_a_closed_connection_is_registered_again_and_stop_unregisters():
    registrar = TcpRegistrar()
    port = await registrar.start()
    endpoint = SipEndpoint("127.0.0.1", 0, "127.0.0.1")
    await endpoint.start()
    trunk = parse_trunk(f"carrier=sip:acct:pw@127.0.0.1:{port};transport=tcp;register")
    registrations = TrunkRegistrations(endpoint.ua, [trunk], node_id="test")
    [registration] = registrations
    try:
        registrations.start()
        first, connection = await registrar.next()
        assert first.uri == f"sip:127.0.0.1:{port}"
        assert first.headers.get("Supported") == "outbound, path"
        assert ";reg-id=1" in (first.headers.get("Contact") or "")
        await until(lambda: registration.status().state is RegistrationState.REGISTERED)
        assert registration.flow is not None and registration.flow.reliable
        # The network changed under us: the registrar's connection is gone.
        connection.close()
        second, again = await registrar.next()
        assert again is not connection
        assert second.call_id == first.call_id and second.cseq.seq > first.cseq.seq
        await until(lambda: registration.status().state is RegistrationState.REGISTERED)
        # A clean shutdown removes the binding.
        registrations.stop()
        gone, _ = await registrar.next()
        assert gone.headers.get("Expires") == "0"
        await until(lambda: registration.stopped)
    finally:
        await endpoint.close()
        registrar.close()


async def test_a_registrar_that_cannot_be_reached_is_retried_after_a_back_off():
    endpoint = SipEndpoint("127.0.0.1", 0, "127.0.0.1")
    await endpoint.start()
    closed = TcpRegistrar()
    port = await closed.start()
    closed.close()  # nothing listens there any more: the connection is refused
    await closed.server.wait_closed()
    trunk = parse_trunk(f"carrier=sip:acct:pw@127.0.0.1:{port};transport=tcp;register")
    registrations = TrunkRegistrations(endpoint.ua, [trunk], backoff_base=30.0)
    [registration] = registrations
    try:
        registrations.start()
        await until(lambda: registration.status().state is RegistrationState.BACKING_OFF)
        status = registration.status()
        assert status.failures == 1 and 15.0 <= (status.retry_in or 0) <= 30.0
    finally:
        registrations.stop()
        await endpoint.close()


async def test_registers_through_the_outbound_proxy_for_the_trunks_domain():
    proxy = TcpRegistrar()
    port = await proxy.start()
    endpoint = SipEndpoint("127.0.0.1", 0, "127.0.0.1")
    await endpoint.start()
    trunk = parse_trunk(
        "carrier=sip:acct:pw@carrier.invalid;transport=tcp;register;register_user=line1;"
        f"outbound_proxy=sip:127.0.0.1:{port}"
    )
    registrations = TrunkRegistrations(endpoint.ua, [trunk])
    [registration] = registrations
    try:
        registrations.start()
        request, _ = await proxy.next()
        # Sent to the proxy (over the trunk's transport); the Request-URI and the address
        # of record keep the trunk's domain, which is never resolved.
        assert request.uri == "sip:carrier.invalid"
        assert request.headers.get("To") == "<sip:line1@carrier.invalid>"
        assert request.headers.get("Route") == f"<sip:127.0.0.1:{port};lr>"
        assert (request.headers.get("Contact") or "").startswith("<sip:line1@127.0.0.1:")
        await until(lambda: registration.status().state is RegistrationState.REGISTERED)
    finally:
        registrations.stop()
        await endpoint.close()
        proxy.close()


async def test_a_name_is_resolved_to_an_address_of_our_family():
    registrar = TcpRegistrar()
    port = await registrar.start()
    endpoint = SipEndpoint("127.0.0.1", 0, "127.0.0.1")
    await endpoint.start()

    async def resolve(host: str) -> list[str]:
        assert host == "registrar.test"
        return ["::1", "127.0.0.1"]  # as /etc/hosts may list localhost

    trunk = parse_trunk(f"carrier=sip:acct:pw@registrar.test:{port};transport=tcp;register")
    registrations = TrunkRegistrations(endpoint.ua, [trunk], resolve=resolve)
    try:
        registrations.start()
        request, _ = await registrar.next()
        assert request.uri == f"sip:registrar.test:{port}"
    finally:
        registrations.stop()
        await endpoint.close()
        registrar.close()
