"""API keys and applications in the store: what browser clients' access tokens name.

Kept beside ``store.py`` rather than in it: these queries take the :class:`Store`
(its ``db``) as their first argument, one transaction each, and see only the rows
of the account they are given.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection

from control_api.sids import new_sid, utcnow
from control_api.store.schema import api_keys, applications

__all__ = [
    "APPLICATION_FIELDS",
    "ApiKey",
    "Application",
    "create_api_key",
    "create_application",
    "delete_api_key",
    "delete_application",
    "find_api_key",
    "get_api_key",
    "get_application",
    "list_api_keys",
    "list_applications",
    "update_api_key",
    "update_application",
]


@dataclass(slots=True)
class ApiKey:
    """An API key (SK…): signs access tokens, and authenticates REST requests (reference §1)."""

    sid: str
    account_sid: str
    friendly_name: str
    secret: str
    date_created: datetime
    date_updated: datetime


@dataclass(slots=True)
class Application:
    """A TwiML application (AP…): where a browser client's outgoing call gets its TwiML."""

    sid: str
    account_sid: str
    friendly_name: str
    voice_url: str | None
    voice_method: str
    voice_fallback_url: str | None
    voice_fallback_method: str
    status_callback: str | None
    status_callback_method: str
    date_created: datetime
    date_updated: datetime


APPLICATION_FIELDS = frozenset(
    {
        "friendly_name",
        "voice_url",
        "voice_method",
        "voice_fallback_url",
        "voice_fallback_method",
        "status_callback",
        "status_callback_method",
    }
)


# API keys


async def create_api_key(store, account_sid: str, friendly_name: str = "") -> ApiKey:
    now = utcnow()
    key = ApiKey(
        sid=new_sid("SK"),
        account_sid=account_sid,
        friendly_name=friendly_name,
        # 32 characters like Twilio's; token_urlsafe keeps it printable for the CLI.
        secret=secrets.token_hex(16),
        date_created=now,
        date_updated=now,
    )
    await store.db.run(lambda c: c.execute(insert(api_keys).values(**asdict(key))))
    return key


async def get_api_key(store, account_sid: str, sid: str) -> ApiKey | None:
    query = select(api_keys).where(api_keys.c.account_sid == account_sid, api_keys.c.sid == sid)
    row = await store.db.run(lambda c: c.execute(query).first())
    return ApiKey(**row._mapping) if row else None


async def find_api_key(store, sid: str) -> ApiKey | None:
    """A key by SID alone, in whichever account: what a token's ``iss`` names."""
    query = select(api_keys).where(api_keys.c.sid == sid)
    row = await store.db.run(lambda c: c.execute(query).first())
    return ApiKey(**row._mapping) if row else None


async def list_api_keys(store, account_sid: str, *, offset: int = 0, limit: int = 50) -> list:
    t = api_keys.c
    query = (
        select(api_keys)
        .where(t.account_sid == account_sid)
        .order_by(t.date_created, t.sid)
        .offset(offset)
        .limit(limit)
    )
    rows = await store.db.run(lambda c: c.execute(query).all())
    return [ApiKey(**row._mapping) for row in rows]


async def update_api_key(store, account_sid: str, sid: str, friendly_name: str) -> ApiKey | None:
    where = (api_keys.c.account_sid == account_sid, api_keys.c.sid == sid)
    values = {"friendly_name": friendly_name, "date_updated": utcnow()}

    def work(c: Connection) -> Any:
        c.execute(update(api_keys).where(*where).values(**values))
        return c.execute(select(api_keys).where(*where)).first()

    row = await store.db.run(work)
    return ApiKey(**row._mapping) if row else None


async def delete_api_key(store, account_sid: str, sid: str) -> bool:
    where = (api_keys.c.account_sid == account_sid, api_keys.c.sid == sid)
    return await store.db.run(lambda c: c.execute(api_keys.delete().where(*where)).rowcount > 0)


# Applications


async def create_application(store, account_sid: str, **fields: Any) -> Application:
    now = utcnow()
    values = {
        "friendly_name": "",
        "voice_url": None,
        "voice_method": "POST",
        "voice_fallback_url": None,
        "voice_fallback_method": "POST",
        "status_callback": None,
        "status_callback_method": "POST",
    }
    values.update({k: v for k, v in fields.items() if k in APPLICATION_FIELDS})
    application = Application(
        sid=new_sid("AP"), account_sid=account_sid, date_created=now, date_updated=now, **values
    )
    await store.db.run(lambda c: c.execute(insert(applications).values(**asdict(application))))
    return application


async def get_application(store, account_sid: str, sid: str) -> Application | None:
    t = applications.c
    query = select(applications).where(t.account_sid == account_sid, t.sid == sid)
    row = await store.db.run(lambda c: c.execute(query).first())
    return Application(**row._mapping) if row else None


async def list_applications(
    store,
    account_sid: str,
    *,
    friendly_name: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> list[Application]:
    t = applications.c
    query = select(applications).where(t.account_sid == account_sid)
    if friendly_name is not None:
        query = query.where(t.friendly_name == friendly_name)
    query = query.order_by(t.date_created, t.sid).offset(offset).limit(limit)
    rows = await store.db.run(lambda c: c.execute(query).all())
    return [Application(**row._mapping) for row in rows]


async def update_application(
    store, account_sid: str, sid: str, **fields: Any
) -> Application | None:
    t = applications.c
    where = (t.account_sid == account_sid, t.sid == sid)
    values = {k: v for k, v in fields.items() if k in APPLICATION_FIELDS}
    values["date_updated"] = utcnow()

    def work(c: Connection) -> Any:
        c.execute(update(applications).where(*where).values(**values))
        return c.execute(select(applications).where(*where)).first()

    row = await store.db.run(work)
    return Application(**row._mapping) if row else None


async def delete_application(store, account_sid: str, sid: str) -> bool:
    t = applications.c
    where = (t.account_sid == account_sid, t.sid == sid)
    return await store.db.run(lambda c: c.execute(applications.delete().where(*where)).rowcount > 0)
