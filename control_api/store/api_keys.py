"""API keys (SK…): they sign browser clients' access tokens and authenticate REST
requests (reference §1).

Twilio has two lists of them: ``Keys`` (standard keys) and ``SigningKeys``. Both kinds
share one table and one SID space, and either kind signs tokens and authenticates
(``find``); each list sees only its own kind (``store.api_keys``: "standard",
``store.signing_keys``: "signing").
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import ColumnElement, insert

from control_api.sids import utcnow
from control_api.store.engine import Database
from control_api.store.rows import Listing, Owned, Rows, created, reader
from control_api.store.schema import api_keys

__all__ = ["ApiKey", "ApiKeyStore", "KeyKind"]

KeyKind = Literal["standard", "signing"]


@dataclass(slots=True)
class ApiKey:
    """An API key (SK…): signs access tokens, and authenticates REST requests (reference §1)."""

    sid: str
    account_sid: str
    friendly_name: str
    secret: str
    date_created: datetime
    date_updated: datetime
    kind: str = "standard"


_api_key = reader(ApiKey)


class ApiKeyStore(Owned[ApiKey]):
    """The accounts' API keys of one ``kind``, oldest first."""

    listing = Listing(order_by=(api_keys.c.date_created, api_keys.c.sid))

    def __init__(self, db: Database, kind: KeyKind = "standard") -> None:
        self.rows = Rows(db, api_keys, _api_key)
        self.kind = kind

    def owned(self, account_sid: str, sid: str) -> tuple[ColumnElement[bool], ...]:
        return (*super().owned(account_sid, sid), api_keys.c.kind == self.kind)

    async def page(
        self, account_sid: str, *, offset: int = 0, limit: int = 50, **filters: Any
    ) -> list[ApiKey]:
        owner = (api_keys.c.account_sid == account_sid, api_keys.c.kind == self.kind)
        return await self.rows.listed(self.listing, filters, offset, limit, *owner)

    async def create(self, account_sid: str, friendly_name: str = "") -> ApiKey:
        key = created(
            ApiKey,
            "SK",
            account_sid=account_sid,
            friendly_name=friendly_name,
            # 32 characters like Twilio's; token_urlsafe keeps it printable for the CLI.
            secret=secrets.token_hex(16),
            kind=self.kind,
        )
        await self.rows.run(lambda c: c.execute(insert(api_keys).values(**asdict(key))))
        return key

    async def find(self, sid: str) -> ApiKey | None:
        """A key of either kind by SID alone, in whichever account: what a token's
        ``iss`` or a REST request's user name names."""
        return await self.rows.one(api_keys.c.sid == sid)

    async def update(self, account_sid: str, sid: str, friendly_name: str) -> ApiKey | None:
        values = {"friendly_name": friendly_name, "date_updated": utcnow()}
        return await self.rows.update_one(self.owned(account_sid, sid), values)
