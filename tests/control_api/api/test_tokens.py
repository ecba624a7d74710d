"""The Tokens resource (reference §9) through the official twilio library."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from twilio.base.exceptions import TwilioRestException

from control_api.api import create_app
from control_api.api.tokens import IceServers
from control_api.store import Store
from turn.auth import Credentials

from .conftest import Api, FakeLiveCalls, _free_socket

SECRET = "tokens-test-secret"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The REST API with a TURN relay on 203.0.113.10 (3478, TLS on 5349)."""
    path = tmp_path_factory.mktemp("store") / "callswitch.db"
    store = asyncio.run(Store.open(f"sqlite:///{path}"))
    app = create_app(
        store, FakeLiveCalls(), ice_servers=IceServers(SECRET, "203.0.113.10", 3478, 5349)
    )
    sock = _free_socket()
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline
        time.sleep(0.01)
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    with httpx.Client(base_url=base_url, timeout=10) as http:
        yield Api(base_url, store, FakeLiveCalls(), http)
    server.should_exit = True
    thread.join(10)
    sock.close()
    asyncio.run(store.close())


def test_create_returns_twilios_shape_with_rest_credentials(client, account):
    before = int(time.time())
    token = client.tokens.create()
    assert token.account_sid == account.sid
    assert token.ttl == "86400"
    assert token.date_created is not None and token.date_updated is not None
    expiry, _, user = token.username.partition(":")
    assert user == account.sid and before + 86400 <= int(expiry) <= int(time.time()) + 86400
    digest = hmac.new(SECRET.encode(), token.username.encode(), hashlib.sha1).digest()
    assert token.password == base64.b64encode(digest).decode()
    urls = [server["urls"] for server in token.ice_servers]
    assert urls == [
        "stun:203.0.113.10:3478",
        "turn:203.0.113.10:3478?transport=udp",
        "turn:203.0.113.10:3478?transport=tcp",
        "turns:203.0.113.10:5349?transport=tcp",
    ]
    for server in token.ice_servers:
        assert server["url"] == server["urls"]
        if server["urls"].startswith("turn"):
            assert server["username"] == token.username
            assert server["credential"] == token.password
        else:
            assert "username" not in server
    # The relay accepts what the resource minted.
    relay = Credentials(secret=SECRET)
    assert relay.password(token.username, time.time()) == token.password


def test_ttl_sets_the_expiry(client):
    token = client.tokens.create(ttl=60)
    assert token.ttl == "60"
    assert abs(int(token.username.split(":")[0]) - (time.time() + 60)) < 5


@pytest.mark.parametrize("ttl", ["0", "-5", "86401", "soon"])
def test_a_bad_ttl_is_400(api, auth, account, ttl):
    answer = api.http.post(
        f"/2010-04-01/Accounts/{account.sid}/Tokens.json", data={"Ttl": ttl}, auth=auth
    )
    assert answer.status_code == 400 and answer.json()["code"] == 20001


def test_another_accounts_path_is_401(api, other, account):
    with pytest.raises(TwilioRestException) as caught:
        api.client(other).api.v2010.accounts(account.sid).tokens.create()
    assert caught.value.status == 401
