"""The node as an outsider meets it: attacks over loopback against a real
``callswitch serve`` (the interop suite's fixtures), each expected to be
refused with the node still answering SIP OPTIONS and ``/health`` afterwards."""

from __future__ import annotations

from tests.interop.conftest import (  # noqa: F401 - fixtures shared with the interop suite
    _server_pool,
    pytest_configure,
    raw_sockets,
    rtp_sink,
    server,
    sipp,
    sipp_bin,
)
