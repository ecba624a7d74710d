"""The account's Balance (reference §8) and the rule that a spent balance stops new usage.

``GET Balance.json`` answers ``{"account_sid", "balance", "currency"}``. An account
without a balance (none was ever set, by ``callswitch balance set`` or the store) is
not limited. One with a balance of zero or less is refused new calls and messages
with Twilio's 20005 "Account not active", which Twilio documents as what an account
that ran out of funds gets (https://www.twilio.com/docs/api/errors/20005).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.errors import ACCOUNT_NOT_ACTIVE, ApiError

__all__ = ["require_funds", "router"]

router = APIRouter()

INSTANCE = "/2010-04-01/Accounts/{account_sid}/Balance.json"


def _billing(request: Request):
    return getattr(request.app.state, "billing", None)


async def require_funds(request: Request, account_sid: str) -> None:
    """Refuse the request (401, 20005) when the account's balance is spent."""
    billing = _billing(request)
    if billing is None:
        return
    if await billing.is_spent(account_sid):
        raise ApiError(
            401,
            ACCOUNT_NOT_ACTIVE,
            "Account not active: the account's balance is spent",
        )


@router.get(INSTANCE)
async def fetch_balance(request: Request, account: PathAccount) -> Response:
    billing = _billing(request)
    balance = await billing.billing.get_balance(account.sid) if billing is not None else None
    return JSONResponse(
        {
            "account_sid": account.sid,
            "balance": f"{balance:.2f}" if balance is not None else None,
            "currency": "USD",
        }
    )
