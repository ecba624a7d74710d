"""The Accounts resource: ``GET``/``POST Accounts/{Sid}.json`` and ``GET Accounts.json``.

An account sees only itself (there are no subaccounts). ``POST`` renames it
(``FriendlyName``, 1 to 64 characters); every account is a main account, which Twilio
does not let suspend or close itself, so a ``Status`` other than ``active`` is refused.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from control_api.api.auth import AuthenticatedAccount, PathAccount
from control_api.api.paging import page_response
from control_api.api.params import form_params, parse_choice
from control_api.api.state import store_of
from control_api.errors import INVALID_FRIENDLY_NAME, ApiError
from control_api.sids import rfc2822
from control_api.store import MAX_FRIENDLY_NAME, Account
from control_api.store.accounts import ACCOUNT_STATUSES

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
                ("notifications", "Notifications"),
                ("outgoing_caller_ids", "OutgoingCallerIds"),
                ("queues", "Queues"),
                ("recordings", "Recordings"),
                ("signing_keys", "SigningKeys"),
                ("transcriptions", "Transcriptions"),
            )
        },
        "type": "Full",
        "uri": f"{base}.json",
    }


@router.get("/2010-04-01/Accounts/{account_sid}.json")
async def fetch_account(account: PathAccount) -> JSONResponse:
    return JSONResponse(account_json(account))


@router.post("/2010-04-01/Accounts/{account_sid}.json")
async def update_account(request: Request, account: PathAccount) -> JSONResponse:
    params = await form_params(request)
    status = parse_choice("Status", params.get("Status"), ACCOUNT_STATUSES)
    if status not in (None, account.status):
        raise ApiError.bad_parameter("Status: a main account cannot be suspended or closed")
    name = params.get("FriendlyName")
    if name is None:
        return JSONResponse(account_json(account))
    if not 1 <= len(name) <= MAX_FRIENDLY_NAME:
        raise ApiError.bad_parameter(
            f"FriendlyName must have 1 to {MAX_FRIENDLY_NAME} characters", INVALID_FRIENDLY_NAME
        )
    updated = await store_of(request).accounts.update(account.sid, name=name)
    return JSONResponse(account_json(updated or account))


@router.get("/2010-04-01/Accounts.json")
async def list_accounts(request: Request, account: AuthenticatedAccount) -> JSONResponse:
    async def fetch(*, offset: int, limit: int) -> list[Account]:
        return [account] if offset == 0 else []  # an account sees only itself

    return await page_response(request, "accounts", fetch, account_json)
