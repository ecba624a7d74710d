"""The store's SIP credentials, recordings and conferences, and migration 0002."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from control_api.sids import is_sid, new_sid
from control_api.sip_realm import SIP_REALM
from control_api.store import (
    ConferenceRecord,
    CredentialListNameTaken,
    NoSuchCredentialList,
    ParticipantRecord,
    RecordingRecord,
    Store,
    TextTooLong,
    UsernameTaken,
    check_sip_password,
    check_sip_username,
)
from control_api.store.migrate import alembic_config
from control_api.store.schema import accounts, metadata
from sip.auth import ha1
from tests.control_api.store.conftest import HEAD, alembic_version, run_on, table_names

T0 = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)
PASSWORD = "IWasAtSignal2018"
NEW_TABLES = {
    "sip_credential_lists",
    "sip_credentials",
    "recordings",
    "conferences",
    "conference_participants",
}


# Migration 0002


async def _alembic(url: str, action, revision: str) -> None:
    def work(connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        action(config, revision)

    await run_on(url, work)


async def test_fresh_database_is_at_0002_with_every_table(store_url: str):
    store = await Store.open(store_url)
    await store.close()
    assert await run_on(store_url, alembic_version) == [HEAD]
    assert await run_on(store_url, table_names) >= NEW_TABLES


async def test_a_0001_database_upgrades_keeping_its_data(store_url: str, db_path: Path):
    db_path.parent.mkdir(parents=True)
    await _alembic(store_url, command.upgrade, "0001")
    assert await run_on(store_url, alembic_version) == ["0001"]
    assert not NEW_TABLES & await run_on(store_url, table_names)
    old = datetime(2026, 11, 1, tzinfo=UTC)
    row = {
        "sid": "AC" + "0" * 31 + "1",
        "friendly_name": "old",
        "auth_token": "token",
        "status": "active",
        "date_created": old,
        "date_updated": old,
    }
    # accounts is as 0001 made it; its Core table writes the row as each backend keeps it.
    await run_on(store_url, lambda c: c.execute(insert(accounts).values(**row)))

    store = await Store.open(store_url)
    try:
        account = await store.accounts.get(row["sid"])
        assert account is not None and account.friendly_name == "old"
        assert account.date_created == old
        credential_list = await store.credential_lists.create(account.sid, "default")
        await store.sip_credentials.create(account.sid, credential_list.sid, "alice", PASSWORD)
        assert (await store.sip_credentials.find("alice")).account_sid == account.sid
    finally:
        await store.close()
    assert await run_on(store_url, alembic_version) == [HEAD]


async def test_0002_downgrades_to_0001(store_url: str):
    store = await Store.open(store_url)
    await store.close()
    await _alembic(store_url, command.downgrade, "0001")
    assert await run_on(store_url, alembic_version) == ["0001"]
    tables = await run_on(store_url, table_names)
    assert not NEW_TABLES & tables
    assert {"accounts", "calls"} <= tables


# SIP credentials


def test_username_and_password_rules():
    for good in ("alice", "a", "A.b_c-9", "x" * 32):
        assert check_sip_username(good) == good
    for bad in ("", "x" * 33, "al ice", "a@b", "ünï", "a:b"):
        with pytest.raises(ValueError):
            check_sip_username(bad)
    assert check_sip_password(PASSWORD) == PASSWORD
    for weak in ("", "Short1a", "alllowercase123", "ALLUPPERCASE123", "NoDigitsAtAllHere"):
        with pytest.raises(ValueError):
            check_sip_password(weak)


async def test_credential_keeps_only_the_ha1s(store: Store, account):
    credential_list = await store.credential_lists.create(account.sid, "office")
    assert is_sid(credential_list.sid, "CL")
    credential = await store.sip_credentials.create(
        account.sid, credential_list.sid, "alice", PASSWORD
    )
    assert is_sid(credential.sid, "CR")
    assert credential.ha1_md5 == ha1("alice", SIP_REALM, PASSWORD, "MD5")
    assert credential.ha1_sha256 == ha1("alice", SIP_REALM, PASSWORD, "SHA-256")
    # RFC 2617 §3.2.2.2: MD5(username ":" realm ":" password), as any registrar computes it.
    assert credential.ha1_md5 == hashlib.md5(f"alice:callswitch:{PASSWORD}".encode()).hexdigest()
    assert await store.sip_credentials.find("alice") == credential
    assert await store.sip_credentials.find("bob") is None
    assert (
        await store.sip_credentials.get(account.sid, credential_list.sid, credential.sid)
        == credential
    )
    assert await store.sip_credentials.page(account.sid, credential_list.sid) == [credential]
    rows = await store.db.run(
        lambda c: [str(tuple(row)) for t in metadata.sorted_tables for row in c.execute(select(t))]
    )
    assert rows and not any(PASSWORD in row for row in rows)


async def test_usernames_are_unique_per_account(store: Store, account, other):
    mine = await store.credential_lists.create(account.sid, "mine")
    second = await store.credential_lists.create(account.sid, "second")
    theirs = await store.credential_lists.create(other.sid, "theirs")
    first = await store.sip_credentials.create(account.sid, mine.sid, "alice", PASSWORD)
    with pytest.raises(UsernameTaken):
        await store.sip_credentials.create(account.sid, mine.sid, "alice", PASSWORD)
    with pytest.raises(UsernameTaken):  # another list of the same account
        await store.sip_credentials.create(account.sid, second.sid, "alice", PASSWORD)
    # Another account's "alice" is neither revealed nor blocked.
    their = await store.sip_credentials.create(other.sid, theirs.sid, "alice", PASSWORD + "x")
    assert await store.sip_credentials.find_all("alice") == [first, their]
    assert await store.sip_credentials.find("alice", other.sid) == their
    assert await store.sip_credentials.delete_username("alice", other.sid) == 1
    assert await store.sip_credentials.find_all("alice") == [first]


async def test_credentials_only_in_lists_of_their_account(store: Store, account, other):
    mine = await store.credential_lists.create(account.sid, "mine")
    with pytest.raises(NoSuchCredentialList):
        await store.sip_credentials.create(other.sid, mine.sid, "bob", PASSWORD)
    with pytest.raises(NoSuchCredentialList):
        await store.sip_credentials.create(account.sid, new_sid("CL"), "bob", PASSWORD)
    credential = await store.sip_credentials.create(account.sid, mine.sid, "bob", PASSWORD)
    assert await store.credential_lists.get(other.sid, mine.sid) is None
    assert await store.credential_lists.page(other.sid) == []
    assert await store.sip_credentials.get(other.sid, mine.sid, credential.sid) is None
    assert await store.sip_credentials.page(other.sid, mine.sid) == []
    assert await store.sip_credentials.update(other.sid, mine.sid, credential.sid, PASSWORD) is None
    assert await store.sip_credentials.delete(other.sid, mine.sid, credential.sid) is False
    assert await store.credential_lists.update(other.sid, mine.sid, "stolen") is None
    assert await store.credential_lists.delete(other.sid, mine.sid) is False
    assert await store.sip_credentials.find("bob") == credential


async def test_update_password_and_list_name(store: Store, account):
    credential_list = await store.credential_lists.create(account.sid, "old name")
    credential = await store.sip_credentials.create(
        account.sid, credential_list.sid, "carol", PASSWORD
    )
    updated = await store.sip_credentials.update(
        account.sid, credential_list.sid, credential.sid, "NewPassword42"
    )
    assert updated.ha1_md5 == ha1("carol", SIP_REALM, "NewPassword42", "MD5")
    assert updated.ha1_sha256 == ha1("carol", SIP_REALM, "NewPassword42", "SHA-256")
    with pytest.raises(ValueError):
        await store.sip_credentials.update(account.sid, credential_list.sid, credential.sid, "weak")
    renamed = await store.credential_lists.update(account.sid, credential_list.sid, "new name")
    assert renamed.friendly_name == "new name"
    await store.credential_lists.create(account.sid, "taken")
    with pytest.raises(CredentialListNameTaken):
        await store.credential_lists.create(account.sid, "taken")
    with pytest.raises(CredentialListNameTaken):
        await store.credential_lists.update(account.sid, credential_list.sid, "taken")
    assert [cl.friendly_name for cl in await store.credential_lists.page(account.sid)] == [
        "new name",
        "taken",
    ]
    assert [cl.sid for cl in await store.credential_lists.page(account.sid, friendly_name="taken")]


async def test_deleting_a_list_deletes_its_credentials(store: Store, account):
    credential_list = await store.credential_lists.create(account.sid, "doomed")
    await store.sip_credentials.create(account.sid, credential_list.sid, "dave", PASSWORD)
    assert await store.credential_lists.delete(account.sid, credential_list.sid) is True
    assert await store.sip_credentials.find("dave") is None
    assert await store.credential_lists.delete(account.sid, credential_list.sid) is False


async def test_delete_by_username(store: Store, account):
    credential_list = await store.credential_lists.create(account.sid, "default")
    await store.sip_credentials.create(account.sid, credential_list.sid, "erin", PASSWORD)
    assert await store.sip_credentials.delete_username("erin") == 1
    assert await store.sip_credentials.delete_username("erin") == 0
    assert await store.sip_credentials.find("erin") is None


# Recordings


def recording(account, **fields) -> RecordingRecord:
    return RecordingRecord(sid=new_sid("RE"), account_sid=account.sid, **fields)


async def test_insert_update_get_delete_recording(store: Store, account, other):
    record = await store.recordings.insert(
        recording(account, call_sid=new_sid("CA"), start_time=T0, file_path="a/b.wav")
    )
    assert record.date_created is not None and record.status == "in-progress"
    assert await store.recordings.get(account.sid, record.sid) == record
    assert await store.recordings.get(other.sid, record.sid) is None
    done = await store.recordings.update(
        record.sid, status="completed", duration=12, price="-0.0025"
    )
    assert (done.status, done.duration, done.price) == ("completed", 12, "-0.0025")
    assert done.date_updated >= record.date_updated
    assert done.file_path == "a/b.wav" and done.start_time == T0
    assert await store.recordings.update(new_sid("RE"), status="failed") is None
    with pytest.raises(TypeError):
        await store.recordings.update(record.sid, account_sid=other.sid)
    assert await store.recordings.delete(other.sid, record.sid) is False
    assert await store.recordings.delete(account.sid, record.sid) is True
    assert await store.recordings.get(account.sid, record.sid) is None


async def test_list_recordings_filters_newest_first(store: Store, account, other):
    call_sid, conference_sid = new_sid("CA"), new_sid("CF")
    a = await store.recordings.insert(recording(account, call_sid=call_sid, date_created=T0))
    b = await store.recordings.insert(
        recording(account, conference_sid=conference_sid, date_created=T0 + timedelta(hours=1))
    )
    c = await store.recordings.insert(
        recording(account, call_sid=call_sid, date_created=T0 + timedelta(days=1))
    )
    await store.recordings.insert(recording(other, call_sid=call_sid, date_created=T0))

    async def sids(**filters):
        return [r.sid for r in await store.recordings.page(account.sid, **filters)]

    assert await sids() == [c.sid, b.sid, a.sid]
    assert await sids(call_sid=call_sid) == [c.sid, a.sid]
    assert await sids(conference_sid=conference_sid) == [b.sid]
    assert await sids(date_created_after=T0 + timedelta(hours=1)) == [c.sid, b.sid]
    assert await sids(date_created_before=T0 + timedelta(hours=1)) == [a.sid]  # exclusive
    assert await sids(offset=1, limit=1) == [b.sid]


# Conferences and participants


async def test_conference_lifecycle_and_find_live(store: Store, account, other):
    room = await store.conferences.create(account.sid, "room")
    assert is_sid(room.sid, "CF") and room.status == "init" and room.region == "us1"
    assert await store.conferences.find_live(account.sid, "room") == room
    assert await store.conferences.find_live(other.sid, "room") is None
    assert await store.conferences.get(other.sid, room.sid) is None
    running = await store.conferences.update(room.sid, status="in-progress")
    assert await store.conferences.find_live(account.sid, "room") == running
    ended = await store.conferences.update(
        room.sid,
        status="completed",
        reason_conference_ended="last-participant-left",
        call_sid_ending_conference=new_sid("CA"),
    )
    assert ended.reason_conference_ended == "last-participant-left"
    assert await store.conferences.find_live(account.sid, "room") is None
    again = await store.conferences.create(account.sid, "room")
    assert await store.conferences.find_live(account.sid, "room") == again
    assert await store.conferences.update(new_sid("CF"), status="completed") is None
    with pytest.raises(TypeError):
        await store.conferences.update(room.sid, sid=new_sid("CF"))


async def test_list_conferences_filters(store: Store, account, other):
    old = await store.conferences.insert(
        ConferenceRecord(
            sid=new_sid("CF"),
            account_sid=account.sid,
            friendly_name="a",
            status="completed",
            date_created=T0,
            date_updated=T0 + timedelta(hours=2),
        )
    )
    new = await store.conferences.insert(
        ConferenceRecord(
            sid=new_sid("CF"),
            account_sid=account.sid,
            friendly_name="b",
            status="in-progress",
            date_created=T0 + timedelta(days=1),
        )
    )
    await store.conferences.create(other.sid, "a")

    async def sids(**filters):
        return [c.sid for c in await store.conferences.page(account.sid, **filters)]

    assert await sids() == [new.sid, old.sid]
    assert await sids(friendly_name="a") == [old.sid]
    assert await sids(status="in-progress") == [new.sid]
    assert await sids(date_created_after=T0 + timedelta(hours=1)) == [new.sid]
    assert await sids(date_created_before=T0 + timedelta(hours=1)) == [old.sid]
    assert await sids(date_updated_after=T0 + timedelta(hours=2)) == [new.sid, old.sid]
    assert await sids(date_updated_before=T0 + timedelta(hours=2)) == []
    assert await sids(offset=1, limit=5) == [old.sid]


async def test_participants(store: Store, account, other):
    room = await store.conferences.create(account.sid, "room", status="in-progress")
    first, second = new_sid("CA"), new_sid("CA")
    joined = await store.participants.insert(
        ParticipantRecord(
            conference_sid=room.sid, call_sid=first, account_sid=account.sid, date_created=T0
        )
    )
    await store.participants.insert(
        ParticipantRecord(
            conference_sid=room.sid,
            call_sid=second,
            account_sid=account.sid,
            muted=True,
            end_conference_on_exit=True,
            date_created=T0 + timedelta(seconds=1),
        )
    )
    assert await store.participants.get(account.sid, room.sid, first) == joined
    assert await store.participants.get(other.sid, room.sid, first) is None
    with pytest.raises(IntegrityError):  # one row per call in a conference
        await store.participants.insert(
            ParticipantRecord(conference_sid=room.sid, call_sid=first, account_sid=account.sid)
        )

    async def calls(**filters):
        return [p.call_sid for p in await store.participants.page(account.sid, room.sid, **filters)]

    assert await calls() == [first, second]
    assert await calls(muted=True) == [second]
    assert await calls(muted=False) == [first]
    assert await calls(hold=True) == []
    assert await calls(coaching=False) == [first, second]
    assert await store.participants.page(other.sid, room.sid) == []
    held = await store.participants.update(room.sid, first, hold=True, status="connected")
    assert held.hold is True and held.muted is False
    assert await calls(hold=True) == [first]
    assert await store.participants.update(room.sid, new_sid("CA"), hold=True) is None
    with pytest.raises(TypeError):
        await store.participants.update(room.sid, first, call_sid=second)
    assert await store.participants.delete(room.sid, first) is True
    assert await store.participants.delete(room.sid, first) is False
    assert await calls() == [second]


@given(st.text(max_size=40))
def test_username_rule_is_exactly_the_documented_alphabet(text):
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    expected = 1 <= len(text) <= 32 and set(text) <= allowed
    try:
        check_sip_username(text)
    except ValueError:
        assert not expected
    else:
        assert expected


@given(st.text(max_size=30))
def test_password_rule_is_length_digit_upper_lower(text):
    expected = (
        len(text) >= 12
        and any(c.isdigit() for c in text)
        and any(c.isupper() for c in text)
        and any(c.islower() for c in text)
    )
    try:
        check_sip_password(text)
    except ValueError:
        assert not expected
    else:
        assert expected


async def test_adding_credentials_while_the_list_is_deleted(store: Store, account):
    """On PostgreSQL these run on separate connections at once: each add either lands
    before the delete (and is deleted with the list) or finds no list."""
    for round in range(8):
        credential_list = await store.credential_lists.create(account.sid, f"race{round}")

        async def add(n: int, sid: str = credential_list.sid, round: int = round):
            try:
                return await store.sip_credentials.create(
                    account.sid, sid, f"r{round}u{n}", PASSWORD
                )
            except NoSuchCredentialList:
                return None

        results = await asyncio.gather(
            *(add(n) for n in range(4)),
            store.credential_lists.delete(account.sid, credential_list.sid),
            *(add(n) for n in range(4, 8)),
        )
        assert results[4] is True
        assert await store.credential_lists.get(account.sid, credential_list.sid) is None
        for n in range(8):  # nothing is left behind in a list that no longer exists
            assert await store.sip_credentials.find(f"r{round}u{n}") is None


async def test_text_longer_than_its_column_is_refused_alike_on_both_backends(store: Store, account):
    # A <Conference> name or participantLabel comes from an application's TwiML.
    with pytest.raises(TextTooLong, match=r"conferences\.friendly_name"):
        await store.conferences.create(account.sid, "x" * 129)
    room = await store.conferences.create(account.sid, "x" * 128)
    assert (await store.conferences.get(account.sid, room.sid)).friendly_name == "x" * 128
    record = ParticipantRecord(
        conference_sid=room.sid, call_sid=new_sid("CA"), account_sid=account.sid, label="l" * 129
    )
    with pytest.raises(TextTooLong, match="label"):
        await store.participants.insert(record)
    with pytest.raises(TextTooLong, match="reason_conference_ended"):
        await store.conferences.update(room.sid, reason_conference_ended="r" * 65)
    with pytest.raises(TextTooLong, match="auth_token"):
        await store.accounts.ensure(account.sid, "t" * 65)
    assert (await store.accounts.get(account.sid)).auth_token == account.auth_token
