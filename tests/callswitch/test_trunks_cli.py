"""``callswitch trunks`` when no server runs: the configured trunks, and a clear word."""

from __future__ import annotations

import socket

from callswitch.cli import main


def test_without_a_server_it_lists_the_configured_trunks_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(
        "CALLSWITCH_TRUNK",
        "carrier=sip:acct:S3cret@192.0.2.7:5070;host=192.0.2.8;prefix=+44;register",
    )
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    status = main(["trunks", "--http-port", str(port), "--data-dir", str(tmp_path / "none")])
    out, err = capsys.readouterr()
    assert status == 1
    assert "carrier\tudp\t192.0.2.7:5070, 192.0.2.8" in out
    assert "serves: +44" in out and "registration: unknown" in out
    assert "S3cret" not in out
    assert f"no callswitch server answers at http://127.0.0.1:{port}" in err
    assert not (tmp_path / "none").exists()  # nothing created on the way


def test_a_trunk_without_register_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CALLSWITCH_TRUNK", "plain=sip:192.0.2.9")
    status = main(["trunks", "--url", "http://127.0.0.1:9", "--data-dir", str(tmp_path)])
    out, _ = capsys.readouterr()
    assert status == 1 and "registration: none (no ;register)" in out
