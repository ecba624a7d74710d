"""The server harness itself, with a real server."""

from __future__ import annotations

import socket

from tests import ports

from . import harness
from .harness import LOOPBACK, CallswitchServer


def test_a_port_taken_before_the_server_binds_it_means_a_fresh_start(tmp_path, monkeypatch):
    squatter = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    squatter.bind((LOOPBACK, 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    handed_out = iter([taken])

    def free_port_once_taken(**kwargs):
        return next(handed_out, None) or ports.free_port(**kwargs)

    monkeypatch.setattr(harness, "free_port", free_port_once_taken)
    try:
        server = CallswitchServer.start(tmp_path / "node")
    finally:
        squatter.close()
    try:
        assert server.sip_port != taken
        assert len(server.events("account.created")) == 1
    finally:
        server.stop()
