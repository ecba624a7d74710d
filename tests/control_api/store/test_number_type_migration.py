"""Migration 0010: the numbers already stored get their type from the number."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from control_api.store.migrate import alembic_config

BEFORE = "0011_queues"
AFTER = "0012_number_type"


def migrate(db: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{db}")
    with engine.begin() as connection:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    engine.dispose()


def test_stored_toll_free_numbers_become_toll_free_and_the_rest_local(tmp_path: Path):
    db = tmp_path / "store.db"
    migrate(db, BEFORE)
    with sqlite3.connect(db) as raw:
        for sid, number in (("PN1", "+18005550100"), ("PN2", "+14155550100"), ("PN3", "+1800555")):
            raw.execute(
                "INSERT INTO phone_numbers (sid, account_sid, phone_number, friendly_name,"
                " voice_method, voice_fallback_method, status_callback_method, sms_method,"
                " sms_fallback_method, date_created, date_updated) VALUES"
                " (?, 'AC1', ?, 'n', 'POST', 'POST', 'POST', 'POST', 'POST',"
                " '2026-12-05 00:00:00', '2026-12-05 00:00:00')",
                (sid, number),
            )
    migrate(db, AFTER)
    with sqlite3.connect(db) as raw:
        types = dict(raw.execute("SELECT sid, number_type FROM phone_numbers").fetchall())
    assert types == {"PN1": "toll-free", "PN2": "local", "PN3": "local"}
