"""TwiML applications (AP…): where a browser client's outgoing call gets its TwiML."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from control_api.sids import utcnow
from control_api.store.engine import Database
from control_api.store.rows import Listing, Owned, Rows, created, reader
from control_api.store.schema import applications
from control_api.store.webhooks import VOICE_WEBHOOK_DEFAULTS, VoiceWebhooks

__all__ = ["APPLICATION_FIELDS", "Application", "ApplicationStore"]


@dataclass(slots=True)
class Application(VoiceWebhooks):
    """A TwiML application (AP…): where a browser client's outgoing call gets its TwiML."""

    sid: str
    account_sid: str
    friendly_name: str
    date_created: datetime
    date_updated: datetime


# What create and update take, with the defaults of create.
_DEFAULTS: dict[str, str | None] = {
    "friendly_name": "",
    **VOICE_WEBHOOK_DEFAULTS,
}
APPLICATION_FIELDS = frozenset(_DEFAULTS)


_BY_NAME = Listing(
    order_by=(applications.c.date_created, applications.c.sid),
    equal={"friendly_name": applications.c.friendly_name},
)


_application = reader(Application)


class ApplicationStore(Owned[Application]):
    """The accounts' TwiML applications, oldest first; ``page`` filters: friendly_name."""

    listing = _BY_NAME

    def __init__(self, db: Database) -> None:
        self.rows = Rows(db, applications, _application)

    async def create(self, account_sid: str, **fields: Any) -> Application:
        """A new application; ``fields`` not in ``APPLICATION_FIELDS`` are left out."""
        values: dict[str, Any] = {**_DEFAULTS, **_known(fields)}
        application = created(Application, "AP", account_sid=account_sid, **values)
        statement = insert(applications).values(**asdict(application))
        await self.rows.run(lambda c: c.execute(statement))
        return application

    async def update(self, account_sid: str, sid: str, **fields: Any) -> Application | None:
        """Change ``fields`` (those in ``APPLICATION_FIELDS``); None if there is no such one."""
        values = {**_known(fields), "date_updated": utcnow()}
        return await self.rows.update_one(self.owned(account_sid, sid), values)


def _known(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if name in APPLICATION_FIELDS}
