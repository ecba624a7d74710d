"""``callswitch sip-credentials add|list|remove`` against a store in a temporary data dir."""

from __future__ import annotations

import asyncio
import re

import pytest

from callswitch.cli import main
from control_api.sip_realm import SIP_REALM
from control_api.store import Store
from sip.auth import ha1

PASSWORD = "IWasAtSignal2018"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no callswitch.toml of the developer's
    return str(tmp_path / "data")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def find(data_dir: str, username: str):
    async def lookup():
        store = await Store.open(f"sqlite:///{data_dir}/callswitch.db")
        try:
            return await store.sip_credentials.find(username)
        finally:
            await store.close()

    return asyncio.run(lookup())


def test_add_list_remove(capsys, data_dir):
    status, out, _ = run(capsys, "accounts", "create", "--data-dir", data_dir)
    assert status == 0
    account = re.search(r"AccountSid: (AC[0-9a-f]{32})", out).group(1)
    common = ("--data-dir", data_dir)

    status, out, _ = run(
        capsys, "sip-credentials", "add", "--account", account, "--username", "alice",
        "--password", PASSWORD, *common,
    )  # fmt: skip
    assert status == 0
    assert re.search(r"CredentialSid: CR[0-9a-f]{32}", out)
    assert "(default)" in out
    stored = find(data_dir, "alice")
    assert stored.account_sid == account
    assert stored.ha1_md5 == ha1("alice", SIP_REALM, PASSWORD, "MD5")

    status, _, _ = run(
        capsys, "sip-credentials", "add", "--account", account, "--username", "bob",
        "--password", PASSWORD, "--list", "office", *common,
    )  # fmt: skip
    assert status == 0
    status, out, _ = run(capsys, "sip-credentials", "list", "--account", account, *common)
    assert status == 0
    rows = [line.split("\t") for line in out.splitlines()]
    assert [(row[0], row[1]) for row in rows] == [("alice", "default"), ("bob", "office")]

    status, _, err = run(
        capsys, "sip-credentials", "add", "--account", account, "--username", "alice",
        "--password", PASSWORD, *common,
    )  # fmt: skip
    assert status == 1 and "alice" in err

    status, _, _ = run(capsys, "sip-credentials", "remove", "--username", "alice", *common)
    assert status == 0
    assert find(data_dir, "alice") is None
    status, _, err = run(capsys, "sip-credentials", "remove", "--username", "alice", *common)
    assert status == 1 and "alice" in err


def test_add_refuses_a_weak_password_and_an_unknown_account(capsys, data_dir):
    status, out, _ = run(capsys, "accounts", "create", "--data-dir", data_dir)
    account = re.search(r"AccountSid: (AC[0-9a-f]{32})", out).group(1)
    status, _, err = run(
        capsys, "sip-credentials", "add", "--account", account, "--username", "carol",
        "--password", "weak", "--data-dir", data_dir,
    )  # fmt: skip
    assert status == 2 and "12 characters" in err
    assert find(data_dir, "carol") is None
    status, _, err = run(
        capsys, "sip-credentials", "add", "--account", "AC" + "0" * 32, "--username", "carol",
        "--password", PASSWORD, "--data-dir", data_dir,
    )  # fmt: skip
    assert status == 1 and "no account" in err
