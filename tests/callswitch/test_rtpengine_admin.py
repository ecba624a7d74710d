"""callswitch/rtpengine_admin.py: the operator drains an rtpengine instance and
enables it again (Kamailio's ``rtpengine.enable``), with the admin token only."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from callswitch.rtpengine_admin import rtpengine_admin
from media.rtpengine.client import RtpEngines
from media.rtpengine.selection import parse_engine

AUTH = {"Authorization": "Bearer s3cret"}


def client(engines: RtpEngines | None, token: str | None = "s3cret", refused=None) -> TestClient:
    app = FastAPI()
    if refused is None:
        app.include_router(rtpengine_admin(lambda: engines, token))
    else:
        app.include_router(rtpengine_admin(lambda: engines, token, refused))
    return TestClient(app)


def engines() -> RtpEngines:
    return RtpEngines([parse_engine("127.0.0.1:2223=2"), parse_engine("127.0.0.2:2223")])


def test_draining_an_instance_sends_new_calls_elsewhere_and_keeps_its_own():
    chosen = engines()
    a, b = chosen.set.instances
    chosen.set.remember("held", a)
    http = client(chosen)
    shown = http.get("/admin/rtpengine", headers=AUTH).json()["instances"]
    assert shown[0] == {
        "instance": "127.0.0.1:2223",
        "weight": 2,
        "up": True,
        "enabled": True,
        "calls": 1,
    }
    drained = http.post(
        "/admin/rtpengine/enable", data={"instance": "127.0.0.1:2223", "enabled": "0"}, headers=AUTH
    )
    assert drained.status_code == 200
    assert [i["enabled"] for i in drained.json()["instances"]] == [False, True]
    assert {chosen.set.pick(f"c{n}") for n in range(40)} == {b}
    assert chosen.set.instance_for("held") is a  # its bridge keeps going there
    again = http.post(
        "/admin/rtpengine/enable", json={"instance": "all", "enabled": True}, headers=AUTH
    )
    assert [i["enabled"] for i in again.json()["instances"]] == [True, True]
    assert {chosen.set.pick(f"c{n}") for n in range(40)} == {a, b}


def test_wrong_or_missing_tokens_and_bad_requests_are_refused():
    chosen = engines()
    refusals: list[tuple[str, str]] = []
    http = client(chosen, refused=lambda *r: refusals.append(r))
    assert http.get("/admin/rtpengine").status_code == 401
    assert http.get("/admin/rtpengine", headers={"Authorization": "Bearer nope"}).status_code == 401
    body = {"instance": "127.0.0.1:2223", "enabled": "0"}
    assert http.post("/admin/rtpengine/enable", data=body).status_code == 401
    assert not any(i.draining for i in chosen.set.instances)
    assert [reason for reason, _ in refusals] == ["admin.unauthorized"] * 3
    for bad in [
        {"instance": "127.0.0.1:2223"},
        {"enabled": "0"},
        {"instance": "x", "enabled": "0"},
    ]:
        assert http.post("/admin/rtpengine/enable", data=bad, headers=AUTH).status_code == 400
    assert (
        http.post(
            "/admin/rtpengine/enable",
            content=b"[1",
            headers={**AUTH, "content-type": "application/json"},
        ).status_code
        == 400
    )
    unknown = {"instance": "10.9.9.9:2223", "enabled": "0"}
    assert http.post("/admin/rtpengine/enable", data=unknown, headers=AUTH).status_code == 404


def test_without_a_token_the_endpoints_do_not_exist():
    assert client(engines(), token=None).get("/admin/rtpengine", headers=AUTH).status_code == 404


def test_a_node_without_rtpengine_lists_none():
    assert client(None).get("/admin/rtpengine", headers=AUTH).json() == {"instances": []}
