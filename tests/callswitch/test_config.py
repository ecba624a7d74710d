"""Settings: flags beat the environment, which beats callswitch.toml."""

from __future__ import annotations

import argparse
import logging
import socket
import subprocess
import sys

import pytest

from callswitch.config import PLANES, ConfigError, add_arguments, load_settings
from callswitch.logs import LogfmtFormatter


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def test_defaults_match_the_design_table(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(parse([]), environ={})
    assert (s.http_port, s.sip_port, s.sip_tls_port, s.sip_ws_port) == (8080, 5060, 5061, 5066)
    assert (s.turn_port, s.turn_tls_port) == (3478, 5349)
    assert s.sip_wss_port == 5067 and s.http_tls_cert is None and s.http_tls_key is None
    assert s.rtp_ports == (20000, 29999) and s.relay_ports == (30000, 39999)
    assert s.bind == "0.0.0.0" and s.data_dir == "./callswitch-data"
    assert s.turn_realm == "callswitch" and s.only == PLANES
    assert s.public_address  # the first non-loopback address, or loopback on a bare box


def test_flag_beats_environment_beats_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "callswitch.toml").write_text(
        'sip_port = 5070\nhttp-port = 9000\nrtp_ports = "40000-40100"\nturn_user = ["a:b"]\n'
    )
    env = {"CALLSWITCH_SIP_PORT": "5080", "CALLSWITCH_TURN_REALM": "example.org"}
    s = load_settings(parse(["--sip-port", "5090"]), environ=env)
    assert s.sip_port == 5090 and s.http_port == 9000 and s.turn_realm == "example.org"
    assert s.rtp_ports == (40000, 40100) and s.turn_user == ["a:b"]
    s = load_settings(parse([]), environ=env)
    assert s.sip_port == 5080


def test_repeatable_flags_and_planes(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(
        parse(
            [
                "--turn-user",
                "a:1",
                "--turn-user",
                "b:2",
                "--only",
                "sip,api",
                "--turn-allow-peer",
                "10.0.0.0/8",
            ]
        ),
        environ={},
    )
    assert s.turn_user == ["a:1", "b:2"] and s.only == {"sip", "api"}
    assert s.turn_allow_peer == ["10.0.0.0/8"]
    assert s.runs("sip") and not s.runs("turn")


def test_sip_tls_files_from_flags_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("cert.pem", "key.pem", "ca.pem", "other.pem"):
        (tmp_path / name).write_text("PEM\n")
    s = load_settings(parse([]), environ={})
    assert (s.sip_tls_cert, s.sip_tls_key, s.sip_tls_ca) == (None, None, None)
    (tmp_path / "callswitch.toml").write_text(
        'sip_tls_cert = "cert.pem"\nsip-tls-key = "key.pem"\nsip_tls_ca = "ca.pem"\n'
    )
    s = load_settings(parse([]), environ={})
    assert (s.sip_tls_cert, s.sip_tls_key, s.sip_tls_ca) == ("cert.pem", "key.pem", "ca.pem")
    env = {"CALLSWITCH_SIP_TLS_CERT": "other.pem", "CALLSWITCH_SIP_TLS_CA": "other.pem"}
    s = load_settings(parse(["--sip-tls-ca", "ca.pem", "--sip-tls-port", "5071"]), environ=env)
    assert (s.sip_tls_cert, s.sip_tls_key, s.sip_tls_ca) == ("other.pem", "key.pem", "ca.pem")
    assert s.sip_tls_port == 5071
    s = load_settings(parse(["--sip-tls-key", "other.pem"]), environ={})
    assert s.sip_tls_key == "other.pem"


def test_specific_bind_address_is_the_public_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(parse(["--bind", "127.0.0.1"]), environ={}).public_address == "127.0.0.1"


def test_account_seed_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"CALLSWITCH_ACCOUNT_SID": "AC" + "0" * 32, "CALLSWITCH_AUTH_TOKEN": "secret"}
    s = load_settings(parse([]), environ=env)
    assert s.account_sid == "AC" + "0" * 32 and s.auth_token == "secret"


@pytest.mark.parametrize(
    "argv",
    [
        ["--sip-port", "70000"],
        ["--rtp-ports", "30000"],
        ["--rtp-ports", "300-200"],
        ["--only", "video"],
        ["--turn-user", "nopassword"],
        ["--turn-allow-peer", "10.0.0.0/99"],
        ["--log-level", "chatty"],
        ["--sip-tls-cert", "no-such-cert.pem"],
        ["--sip-tls-key", "no-such-key.pem"],
        ["--sip-tls-ca", "no-such-ca.pem"],
    ],
)
def test_bad_values_name_the_setting(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=argv[0]):
        load_settings(parse(argv), environ={})


def test_unknown_file_key_is_an_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "callswitch.toml").write_text("sip_prot = 5070\n")
    with pytest.raises(ConfigError, match="sip_prot"):
        load_settings(parse([]), environ={})


def test_log_lines_are_logfmt():
    record = logging.LogRecord("x", logging.INFO, "f", 1, "sip.invite", (), None)
    record.call_id = "abc@host"
    record.peer = ("10.0.0.1", 5060)
    record.reason = 'Bad "CSeq" value'
    line = LogfmtFormatter().format(record)
    assert " level=info event=sip.invite call_id=abc@host peer=10.0.0.1:5060 " in line
    assert line.endswith('reason="Bad \\"CSeq\\" value"')


def test_database_url_from_flag_env_or_file(tmp_path, monkeypatch):
    from callswitch.server import database_url

    monkeypatch.chdir(tmp_path)
    s = load_settings(parse(["--data-dir", "d"]), environ={})
    assert s.database_url is None
    assert database_url(s) == f"sqlite+aiosqlite:///{tmp_path / 'd' / 'callswitch.db'}"
    (tmp_path / "callswitch.toml").write_text('database_url = "postgresql://f@127.0.0.1/f"\n')
    assert load_settings(parse([]), environ={}).database_url == "postgresql://f@127.0.0.1/f"
    env = {"CALLSWITCH_DATABASE_URL": "postgres://u:p%40ss@db:5433/calls"}
    s = load_settings(parse([]), environ=env)
    assert database_url(s) == "postgresql://u:p%40ss@db:5433/calls"
    s = load_settings(parse(["--database-url", "sqlite:///x.db"]), environ=env)
    assert database_url(s) == "sqlite:///x.db"


@pytest.mark.parametrize(
    "url", ["mysql://u@h/db", "postgresql://u@h", "not a url", "postgresql+psycopg2://u@h/d"]
)
def test_database_url_refuses_what_the_store_cannot_open(tmp_path, monkeypatch, url):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="--database-url"):
        load_settings(parse(["--database-url", url]), environ={})


def test_a_refused_database_url_is_not_repeated_with_its_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {"CALLSWITCH_DATABASE_URL": "mysql://callswitch:s3cret@db/calls"}
    with pytest.raises(ConfigError, match="CALLSWITCH_DATABASE_URL") as raised:
        load_settings(parse([]), environ=env)
    assert "s3cret" not in str(raised.value)


def test_serve_without_its_database_exits_with_one_line(tmp_path):
    url = "postgresql://callswitch:s3cret@127.0.0.1:1/callswitch"  # nothing listens on 1
    argv = ["serve", "--only", "api", "--data-dir", str(tmp_path), "--http-port", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "callswitch", *argv, "--database-url", url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("callswitch: cannot start: cannot open the store at ")
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr


def test_node_settings_from_flag_env_or_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(parse(["--sip-port", "5070"]), environ={})
    assert s.node_id == f"{socket.gethostname()}:5070"[:64]
    assert s.node_url is None and s.node_lease == 30.0
    (tmp_path / "callswitch.toml").write_text('node_id = "edge-1"\nnode_lease = 12\n')
    s = load_settings(parse([]), environ={"CALLSWITCH_NODE_URL": "http://10.0.0.11:8080"})
    assert (s.node_id, s.node_url, s.node_lease) == ("edge-1", "http://10.0.0.11:8080", 12.0)
    s = load_settings(parse(["--node-id", "edge-2"]), environ={"CALLSWITCH_NODE_ID": "edge-3"})
    assert s.node_id == "edge-2"


@pytest.mark.parametrize(
    "argv", [["--node-id", "two words"], ["--node-lease", "0.5"], ["--node-url", "10.0.0.1"]]
)
def test_bad_node_settings_name_the_setting(tmp_path, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=argv[0]):
        load_settings(parse(argv), environ={})


def test_dns_server_from_flag_env_or_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(parse([]), environ={}).dns_server is None
    s = load_settings(parse(["--dns-server", "127.0.0.1:5353"]), environ={})
    assert s.dns_server == ("127.0.0.1", 5353)
    s = load_settings(parse([]), environ={"CALLSWITCH_DNS_SERVER": "[::1]:53"})
    assert s.dns_server == ("::1", 53)
    (tmp_path / "callswitch.toml").write_text('dns_server = "192.0.2.53"\n')
    assert load_settings(parse([]), environ={}).dns_server == ("192.0.2.53", 53)
    with pytest.raises(ConfigError, match="--dns-server"):
        load_settings(parse(["--dns-server", "dns.example"]), environ={})


def test_trunks_from_the_environment_are_comma_separated():
    settings = load_settings(
        {},
        {"CALLSWITCH_TRUNK": "a=sip:u:p@192.0.2.1;register, b=sips:carrier.example;prefix=+1"},
    )
    assert [(t.name, t.host, t.register) for t in settings.trunk] == [
        ("a", "192.0.2.1", True),
        ("b", "carrier.example", False),
    ]
    assert settings.trunk[1].prefixes == ("+1",)


def test_sip_over_websocket_settings_by_flag_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cert = tmp_path / "cert.pem"
    cert.write_text("not read here")
    (tmp_path / "callswitch.toml").write_text(f'http_tls_cert = "{cert}"\nsip_wss_port = 7443\n')
    env = {"CALLSWITCH_SIP_WS_PORT": "0", "CALLSWITCH_HTTP_TLS_KEY": str(cert)}
    s = load_settings(parse(["--sip-wss-port", "7444"]), environ=env)
    assert (s.sip_ws_port, s.sip_wss_port) == (0, 7444)
    assert s.http_tls_cert == str(cert) and s.http_tls_key == str(cert)


def test_speech_provider_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings(parse([]), environ={})
    assert (s.speech_provider, s.speech_api_key, s.speech_model) == ("embedded", None, None)
    env = {"CALLSWITCH_SPEECH_PROVIDER": "openai:http://h/v1", "CALLSWITCH_SPEECH_API_KEY": "k"}
    s = load_settings(parse(["--speech-model", "large-v3"]), environ=env)
    assert (s.speech_provider, s.speech_api_key, s.speech_model) == (
        "openai:http://h/v1",
        "k",
        "large-v3",
    )
    with pytest.raises(ConfigError, match="embedded or openai"):
        load_settings(parse(["--speech-provider", "whisper"]), environ={})


def test_rtpengine_from_flags_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings(parse([]), environ={}).rtpengine == []
    flags = ["--rtpengine", "127.0.0.1:2223", "--rtpengine", "10.0.0.9:2223=3"]
    assert load_settings(parse(flags), environ={}).rtpengine == [
        "127.0.0.1:2223",
        "10.0.0.9:2223=3",
    ]
    env = {"CALLSWITCH_RTPENGINE": "a.example:2223=2, b.example:2223"}
    assert load_settings(parse([]), environ=env).rtpengine == ["a.example:2223=2", "b.example:2223"]
    (tmp_path / "callswitch.toml").write_text('rtpengine = ["[::1]:2223"]\n')
    assert load_settings(parse([]), environ={}).rtpengine == ["[::1]:2223"]


@pytest.mark.parametrize("spec", ["127.0.0.1", "127.0.0.1:2223=0", "host:port"])
def test_a_bad_rtpengine_is_refused(spec):
    with pytest.raises(ConfigError, match="rtpengine"):
        load_settings(parse(["--rtpengine", spec]), environ={})


def test_rtpengine_dtmf_log_and_admin_token_from_flags_environment_and_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    none = load_settings(parse([]), environ={})
    assert none.rtpengine_dtmf_log is None and none.admin_token is None
    flags = ["--rtpengine-dtmf-log", "127.0.0.1:2224", "--admin-token", "t1"]
    s = load_settings(parse(flags), environ={})
    assert (s.rtpengine_dtmf_log, s.admin_token) == ("127.0.0.1:2224", "t1")
    env = {"CALLSWITCH_RTPENGINE_DTMF_LOG": "NG-TCP", "CALLSWITCH_ADMIN_TOKEN": "t2"}
    s = load_settings(parse([]), environ=env)
    assert (s.rtpengine_dtmf_log, s.admin_token) == ("ng-tcp", "t2")
    (tmp_path / "callswitch.toml").write_text(
        'rtpengine_dtmf_log = "[::1]:2224"\nadmin_token = "t3"\n'
    )
    s = load_settings(parse([]), environ={})
    assert (s.rtpengine_dtmf_log, s.admin_token) == ("[::1]:2224", "t3")


@pytest.mark.parametrize("spec", ["2224", "host:", "udp", "h:70000"])
def test_a_bad_rtpengine_dtmf_log_is_refused(spec):
    with pytest.raises(ConfigError, match=r"rtpengine.dtmf.log"):
        load_settings(parse(["--rtpengine-dtmf-log", spec]), environ={})
