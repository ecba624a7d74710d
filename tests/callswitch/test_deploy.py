"""deploy/: the systemd unit starts callswitch with settings it takes, and the example
settings load (the Kamailio config is run by tests/interop/test_cluster.py)."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

from callswitch.cli import _parser
from callswitch.config import load_settings
from tests.peers import require

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read_string((DEPLOY / "callswitch.service").read_text())
    return unit


def test_the_unit_runs_serve_with_arguments_the_command_takes():
    command = shlex.split(_unit()["Service"]["ExecStart"])
    assert Path(command[0]).name == "callswitch"
    args = _parser().parse_args(command[1:])
    assert args.command == "serve" and args.config == "/etc/callswitch/callswitch.toml"


def test_the_unit_waits_for_the_drain_it_asks_for():
    settings = load_settings({"config": str(DEPLOY / "callswitch.toml")}, environ={})
    stop = int(_unit()["Service"]["TimeoutStopSec"])
    assert stop > settings.drain_timeout
    assert settings.node_id == "callswitch-1" and settings.node_lease == 30
    assert settings.database_url.startswith("postgresql://")


def test_the_nodes_list_every_media_host_s_rtpengine():
    settings = load_settings({"config": str(DEPLOY / "callswitch.toml")}, environ={})
    assert settings.rtpengine == ["10.0.0.21:2223=1", "10.0.0.22:2223=1"]
    conf = configparser.ConfigParser()
    conf.read_string((DEPLOY / "rtpengine" / "rtpengine.conf").read_text())
    for section in ("rtpengine", "rtpengine-userspace"):
        assert conf[section]["listen-ng"] == "10.0.0.21:2223"  # the first node's first entry
    assert conf["rtpengine"]["table"] == "0" and conf["rtpengine-userspace"]["table"] == "-1"


def test_systemd_finds_nothing_wrong_but_the_missing_install(tmp_path):
    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is not installed (Debian package systemd)")
    result = subprocess.run(
        [analyze, "verify", str(DEPLOY / "callswitch.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    problems = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and "is not executable" not in line
    ]
    assert problems == []


def test_every_node_hears_the_media_hosts_dtmf_log_on_their_ng_port():
    settings = load_settings({"config": str(DEPLOY / "callswitch.toml")}, environ={})
    assert settings.rtpengine_dtmf_log == "ng-tcp"
    conf = configparser.ConfigParser()
    conf.read_string((DEPLOY / "rtpengine" / "rtpengine.conf").read_text())
    for section in ("rtpengine", "rtpengine-userspace"):
        assert conf[section]["listen-tcp-ng"] == conf[section]["listen-ng"]
        assert conf[section].getboolean("dtmf-log-ng-tcp")
