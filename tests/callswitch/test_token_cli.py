"""``callswitch token`` mints tokens that verify with the key it made."""

from __future__ import annotations

import asyncio
import time

import pytest

from callswitch.cli import main
from control_api.store import Store
from signaling.tokens import issuer_of, verify


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return str(tmp_path / "data")


def in_store(data_dir: str, work):
    async def run():
        store = await Store.open(f"sqlite:///{data_dir}/callswitch.db")
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out.strip(), err


def test_token_for_the_only_account_verifies_and_reuses_its_key(capsys, data_dir):
    account = in_store(data_dir, lambda s: s.accounts.create("one"))
    app = in_store(data_dir, lambda s: s.applications.create(account.sid, voice_url="http://x/"))
    status, token, err = run(
        capsys,
        "token",
        "--identity",
        "alice",
        "--application",
        app.sid,
        "--ttl",
        "120",
        "--data-dir",
        data_dir,
    )
    assert status == 0, err
    key_sid, account_sid = issuer_of(token)
    assert account_sid == account.sid
    key = in_store(data_dir, lambda s: s.api_keys.find(key_sid))
    claims = verify(token, secret=key.secret, account_sid=account.sid, now=time.time())
    assert (claims.identity, claims.application_sid, claims.incoming_allow) == (
        "alice",
        app.sid,
        True,
    )
    assert claims.expires <= time.time() + 121

    status, again, _ = run(capsys, "token", "--identity", "bob", "--data-dir", data_dir)
    assert status == 0 and issuer_of(again)[0] == key_sid
    assert len(in_store(data_dir, lambda s: s.api_keys.page(account.sid))) == 1


def test_refusals(capsys, data_dir):
    one = in_store(data_dir, lambda s: s.accounts.create("one"))
    in_store(data_dir, lambda s: s.accounts.create("two"))
    status, _, err = run(capsys, "token", "--identity", "a", "--data-dir", data_dir)
    assert status == 2 and "--account" in err
    base = ("token", "--account", one.sid, "--data-dir", data_dir)
    assert run(capsys, *base, "--identity", "bad name")[0] == 2
    assert run(capsys, *base, "--identity", "a", "--ttl", "90000")[0] == 2
    assert run(capsys, *base, "--identity", "a", "--application", "AP" + "0" * 32)[0] == 1
    assert run(capsys, *base, "--identity", "a", "--key", "SK" + "0" * 32)[0] == 1
