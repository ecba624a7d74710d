"""The Accounts resource: ``GET Accounts/{Sid}.json`` and ``GET Accounts.json``.

An account sees only itself (there are no subaccounts).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from control_api.api.auth import AuthenticatedAccount, PathAccount
from control_api.api.paging import page_response
from control_api.sids import rfc2822
from control_api.store import Account

__all__ = ["account_json", "account_uri", "router"]

API_VERSION = "2010-04-01"

router = APIRouter()


def account_uri(sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{sid}"


def account_json(account: Account) -> dict:
    base = account_uri(account.sid)
    return {
        "auth_token": account.auth_token,
        "date_created": rfc2822(account.date_created),
        "date_updated": rfc2822(account.date_updated),
        "friendly_name": account.friendly_name,
        "owner_account_sid": account.sid,
        "sid": account.sid,
        "status": account.status,
        # Twilio's entries for the resources built here.
        "subresource_uris": {
            name: f"{base}/{path}.json"
            for name, path in (
                ("applications", "Applications"),
                ("balance", "Balance"),
                ("calls", "Calls"),
                ("conferences", "Conferences"),
                ("incoming_phone_numbers", "IncomingPhoneNumbers"),
                ("keys", "Keys"),
                ("messages", "Messages"),
                ("outgoing_caller_ids", "OutgoingCallerIds"),
                ("recordings", "Recordings"),
            )
        },
        "type": "Full",
        "uri": f"{base}.json",
    }


@router.get("/2010-04-01/Accounts/{account_sid}.json")
async def fetch_account(account: PathAccount) -> JSONResponse:
    return JSONResponse(account_json(account))


@router.get("/2010-04-01/Accounts.json")
async def list_accounts(request: Request, account: AuthenticatedAccount) -> JSONResponse:
    async def fetch(*, offset: int, limit: int) -> list[Account]:
        return [account] if offset == 0 else []  # an account sees only itself

    return await page_response(request, "accounts", fetch, account_json)
