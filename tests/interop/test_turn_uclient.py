"""coturn's own test tools against our TURN relay (issue 7).

``turnutils_uclient`` (Debian package coturn) allocates, binds channels or
sends indications, and counts every packet echoed by ``turnutils_peer``
through our relay. The server allows loopback peers explicitly; by default it
refuses them, which the last test checks with the same tools.
"""

from __future__ import annotations

import socket
import time

import pytest

from turn.auth import rest_credentials

from .conftest import require
from .turn_peers import PASSWORD, SECRET, TURN_ARGS, USER, find, run_uclient, turnutils_peer

MESSAGES, CLIENTS = 60, 2


@pytest.fixture(scope="module")
def coturn_tools() -> None:
    require(
        find("turnutils_uclient") is not None and find("turnutils_peer") is not None,
        "turnutils_uclient/turnutils_peer are not installed (Debian package coturn)",
    )


def _credentials(kind: str) -> list[str]:
    if kind == "long-term":
        return ["-u", USER, "-w", PASSWORD]
    # uclient derives the password from the secret itself (-W), coturn's scheme.
    return ["-u", "interop", "-W", SECRET]


@pytest.mark.callswitch(extra_args=TURN_ARGS)
# Transport, channels or indications, and the kind of credentials are separate
# paths through the relay: each pair of them meets in one run (all pairs, not all
# eight combinations).
@pytest.mark.parametrize(
    ("mode", "credentials"),
    [
        pytest.param([], "long-term", id="udp-channels-long-term"),
        pytest.param(["-t"], "rest-secret", id="tcp-channels-rest-secret"),
        pytest.param(["-s"], "rest-secret", id="udp-send-indications-rest-secret"),
        pytest.param(["-t", "-s"], "long-term", id="tcp-send-indications-long-term"),
    ],
)
def test_uclient_relays_every_packet(coturn_tools, server, credentials, mode):
    with turnutils_peer() as peer_port:
        result = run_uclient(
            server.turn_port,
            peer_port,
            *mode,
            *_credentials(credentials),
            messages=MESSAGES,
            clients=CLIENTS,
        )
    server.assert_alive()
    assert result.returncode == 0, result.describe() + server.tail()
    # Each of the clients' sessions (RTP and RTCP) sends MESSAGES packets.
    assert result.sent >= MESSAGES * CLIENTS, result.describe()
    assert result.received == result.sent, result.describe()
    assert result.lost == 0, result.describe()


@pytest.mark.callswitch(extra_args=("--only", "turn", *TURN_ARGS))
def test_only_turn_runs_just_the_relay(coturn_tools, server):
    assert "turn_udp" in server.ready and "turn_relay" in server.ready
    assert not any(key.startswith(("sip", "http")) for key in server.ready)
    with turnutils_peer() as peer_port:
        result = run_uclient(server.turn_port, peer_port, *_credentials("long-term"), messages=20)
    assert result.returncode == 0 and result.lost == 0, result.describe()


@pytest.mark.callswitch(extra_args=TURN_ARGS)
def test_wrong_password_and_expired_rest_credentials_are_refused(coturn_tools, server):
    with turnutils_peer() as peer_port:
        wrong = run_uclient(
            server.turn_port, peer_port, "-u", USER, "-w", "nope", messages=5, timeout=30
        )
        username, password = rest_credentials(SECRET, "late", int(time.time()) - 60)
        expired = run_uclient(
            server.turn_port, peer_port, "-u", username, "-w", password, messages=5, timeout=30
        )
    for result in (wrong, expired):
        assert result.returncode != 0 and result.received == 0, result.describe()
    server.assert_alive()


@pytest.mark.callswitch(extra_args=("--turn-user", f"{USER}:{PASSWORD}"))
def test_loopback_peers_are_refused_by_default(coturn_tools, server):
    with turnutils_peer() as peer_port:
        result = run_uclient(
            server.turn_port, peer_port, *_credentials("long-term"), messages=5, timeout=30
        )
    assert result.returncode != 0, result.describe()
    assert "403" in result.output and result.received == 0, result.describe()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.callswitch(
    extra_args=(
        "--only",
        "turn",
        "--bind",
        "::1",
        "--public-address",
        "::1",
        "--turn-user",
        f"{USER}:{PASSWORD}",
        "--turn-allow-peer",
        "::1/128",
    )
)
@pytest.mark.parametrize("mode", [[], ["-t"], ["-s"]], ids=["udp", "tcp", "udp-send"])
def test_uclient_over_ipv6_gets_an_ipv6_relay(coturn_tools, server, mode):
    require(_ipv6_loopback(), "no IPv6 loopback on this machine")
    assert server.ready.get("turn_udp6") == f"[::1]:{server.turn_port}"
    with turnutils_peer(host="::1") as peer_port:
        result = run_uclient(
            server.turn_port,
            peer_port,
            "-x",
            *mode,
            *_credentials("long-term"),
            messages=MESSAGES,
            host="::1",
        )
    assert result.returncode == 0, result.describe() + server.tail()
    assert result.sent >= MESSAGES * CLIENTS and result.received == result.sent, result.describe()
    assert result.lost == 0, result.describe()


@pytest.mark.callswitch(tls=True, extra_args=TURN_ARGS)
def test_uclient_over_tls(coturn_tools, server):
    assert server.ready.get("turn_tls") == f"127.0.0.1:{server.turn_tls_port}"
    with turnutils_peer() as peer_port:
        result = run_uclient(
            server.turn_tls_port,
            peer_port,
            "-t",
            "-S",
            *_credentials("rest-secret"),
            messages=MESSAGES,
        )
    assert result.returncode == 0, result.describe() + server.tail()
    assert result.sent >= MESSAGES * CLIENTS and result.received == result.sent, result.describe()
    assert result.lost == 0, result.describe()
