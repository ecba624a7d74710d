"""A REST server with the message service and billing, for the Messages and Usage tests.

Everything (store, outbox, message service, billing, uvicorn) lives on one event
loop in a thread; tests reach it through the official ``twilio`` library and run
coroutines on that loop with ``SmsServer.call``. ``FakeCarrier`` takes messages for
numbers under ``+1555`` and lets a test answer with receipts.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn
from twilio.rest import Client

from control_api.api import create_app
from control_api.sms.carriers import CarrierRejected, CarrierUnavailable, OutboundSms
from control_api.sms.service import Messaging
from control_api.store import Account, Store
from control_api.usage.billing import Billing
from control_api.webhooks import Outbox, WebhookClient
from tests.control_api.api.conftest import FakeLiveCalls, LocalHttpClient


@dataclass
class FakeCarrier:
    name: str = "fake"
    prefix: str = "+1555"
    submitted: list[OutboundSms] = field(default_factory=list)
    unavailable: bool = False
    reject: set[str] = field(default_factory=set)  # To numbers refused for good
    receipt_first: set[str] = field(default_factory=set)  # To numbers whose receipt
    # arrives before submit returns (a fast SMSC)
    events: object = None
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))

    def serves(self, number: str) -> int:
        return len(self.prefix) if number.startswith(self.prefix) else -1

    async def submit(self, sms: OutboundSms) -> str:
        if self.unavailable:
            raise CarrierUnavailable("link down")
        if sms.to in self.reject:
            raise CarrierRejected("refused", 30007)
        self.submitted.append(sms)
        carrier_id = f"id{next(self._ids)}"
        if sms.to in self.receipt_first:
            await self.events.receipt(self.name, carrier_id, True, None)
        return carrier_id


class SmsServer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.carrier = FakeCarrier()
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._numbers = itertools.count(3_000_000)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main())

    async def _main(self) -> None:
        self.store = await Store.open(f"sqlite:///{self.directory / 'callswitch.db'}")
        webhooks = WebhookClient()
        self.outbox = Outbox(self.store, webhooks, self.store.accounts.auth_token)
        self.billing = Billing(self.store, self.store.billing, self.outbox)
        self.messaging = Messaging(
            self.store, self.outbox, webhooks, billing=self.billing, carriers=[self.carrier]
        )
        self.carrier.events = self.messaging.events
        self.outbox.start()
        self.messaging.start()
        app = create_app(
            self.store, FakeLiveCalls(), messaging=self.messaging, billing=self.billing
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        serving = asyncio.create_task(self.server.serve(sockets=[sock]))
        while not self.server.started:
            await asyncio.sleep(0.01)
        self._ready.set()
        await serving
        await self.messaging.stop()
        await self.outbox.stop()
        await self.store.close()
        sock.close()

    def __enter__(self) -> SmsServer:
        self._thread.start()
        assert self._ready.wait(15), "server did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self._thread.join(15)

    def call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def new_account(self) -> Account:
        return self.call(self.store.accounts.create("sms test"))

    def client(self, account: Account) -> Client:
        return Client(account.sid, account.auth_token, http_client=LocalHttpClient(self.base_url))

    def new_number(self) -> str:
        return f"+1415{next(self._numbers):07d}"

    def wait_status(self, client: Client, sid: str, status: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while True:
            message = client.messages(sid).fetch()
            if message.status == status or time.monotonic() > deadline:
                return message
            time.sleep(0.05)
