"""``callswitch rtpengine`` without a server or a token: a clear word and the exit
status (against a running node: tests/interop/test_rtpengine_dial.py)."""

from __future__ import annotations

import socket

from callswitch.cli import main


def closed_port() -> int:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_without_a_token_it_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CALLSWITCH_ADMIN_TOKEN", raising=False)
    assert main(["rtpengine", "--data-dir", str(tmp_path)]) == 2
    assert "--admin-token" in capsys.readouterr().err


def test_enable_needs_the_instance_and_the_state(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["rtpengine", "enable", "--admin-token", "t", "--data-dir", str(tmp_path)]) == 2
    assert "HOST:PORT or all" in capsys.readouterr().err


def test_without_a_server_it_says_where_it_asked(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CALLSWITCH_ADMIN_TOKEN", "from-env")
    port = closed_port()
    args = ["rtpengine", "enable", "all", "0", "--http-port", str(port)]
    assert main([*args, "--data-dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert f"no callswitch server answers at http://127.0.0.1:{port}/admin/rtpengine" in err
    assert not (tmp_path / "none").exists()
