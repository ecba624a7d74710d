"""``--ice-server`` settings and what the WebRTC wiring makes of them."""

from __future__ import annotations

import pytest

from callswitch.config import ConfigError, load_settings
from callswitch.webrtc import ice_servers
from signaling.webrtc_leg import IceServer


def test_ice_servers_from_flags_and_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        {"ice_server": ["stun:stun.example.org:3478", "turn:u%40x:p%3Aw@turn.example.org:3478"]}
    )
    assert ice_servers(settings.ice_server) == [
        IceServer("stun:stun.example.org:3478"),
        IceServer("turn:turn.example.org:3478", "u@x", "p:w"),
    ]
    env = load_settings({}, environ={"CALLSWITCH_ICE_SERVER": "turns:a:b@h:5349?transport=tcp"})
    assert ice_servers(env.ice_server) == [IceServer("turns:h:5349?transport=tcp", "a", "b")]
    assert load_settings({}, environ={}).ice_server == []


@pytest.mark.parametrize("bad", ["http://x", "turn:host:3478", "stun:"])
def test_bad_ice_servers_are_refused(tmp_path, monkeypatch, bad):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError):
        load_settings({"ice_server": [bad]})


def test_registered_message_lists_them_as_rtc_ice_servers():
    assert IceServer("turn:h:3478", "u", "p").as_json() == {
        "urls": "turn:h:3478",
        "username": "u",
        "credential": "p",
    }
    assert IceServer("stun:h").as_json() == {"urls": "stun:h"}
