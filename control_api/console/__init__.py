"""The web console at ``/console``: plain HTML and a little JavaScript, no build step.

The page signs in with an Account SID and auth token and reads everything through
the REST API the account already has (Calls, Messages, IncomingPhoneNumbers,
Usage). The one thing the REST API does not show is what a live call sounds
like, so this module adds one resource for it:
``GET /console/api/Accounts/{AccountSid}/LiveCalls.json``, each call in progress
with its legs and their RFC 3550 figures (codec, packets, loss, jitter) and an
E-model MOS estimate (:mod:`media.quality`). Nor does it show the node's
trunks: ``GET /console/api/Accounts/{AccountSid}/Trunks.json`` lists each
configured trunk (no credentials), its entry points and, for ``;register`` ones,
the registration's state (``callswitch trunks`` reads it too). Both take the same
Basic credentials as the REST API and answer Twilio's 401 to wrong ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from control_api.api.auth import path_account
from control_api.store import Account
from control_api.voice.live import LiveCall
from control_api.voice.port import LiveCalls
from media.quality import leg_quality

__all__ = ["router"]

STATIC = Path(__file__).parent / "static"
ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}
# The page signs in with an auth token: no other site may frame it (clickjacking)
# and it runs only its own script and style, talking only to this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter()


@router.get("/console", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/console/{asset}", include_in_schema=False)
async def asset(asset: str) -> FileResponse:
    if asset not in ASSETS:
        raise HTTPException(404)
    return FileResponse(STATIC / asset, media_type=ASSETS[asset], headers=SECURITY_HEADERS)


@router.get("/console/api/Accounts/{account_sid}/LiveCalls.json")
async def live_calls(
    request: Request, account: Annotated[Account, Depends(path_account)]
) -> JSONResponse:
    live_calls: LiveCalls = request.app.state.live_calls
    lives = live_calls.live_of(account.sid)
    calls = [_call(live) for live in lives if not live.call.ended.is_set()]
    return JSONResponse({"account_sid": account.sid, "calls": calls})


@router.get("/console/api/Accounts/{account_sid}/Trunks.json")
async def trunks(
    request: Request, account: Annotated[Account, Depends(path_account)]
) -> JSONResponse:
    views = getattr(request.app.state, "trunk_views", None)  # set by a node that runs SIP
    listed = [view.to_json() for view in views()] if views is not None else []
    return JSONResponse({"account_sid": account.sid, "trunks": listed})


def _call(live: LiveCall) -> dict:
    call, runner = live.call, live.runner
    params = dict(runner.params()) if runner is not None else {}
    legs = [_leg("caller", call)]
    bridged = runner.bridged if runner is not None else None
    if bridged is not None:
        legs = [_leg("caller" if party is call else "dialed", party) for party in bridged]
    return {
        "sid": call.sid,
        "direction": getattr(call, "direction", "inbound"),
        "from": params.get("From", ""),
        "to": params.get("To", ""),
        "status": "in-progress" if call.answered else "ringing",
        "duration": round(call.duration),
        "legs": legs,
    }


def _leg(role: str, call) -> dict:
    leg = call.leg
    quality = leg_quality(leg) if leg is not None else None
    figures: dict = {"role": role, "call_sid": call.sid, "kind": getattr(leg, "kind", "none")}
    if quality is not None:
        figures |= {
            "codec": quality.codec,
            "packets_received": quality.received,
            "packets_lost": quality.lost,
            "loss_pct": round(100 * quality.loss, 2),
            "jitter_ms": round(quality.jitter_ms, 1),
            "mos": None if quality.mos is None else round(quality.mos, 2),
        }
    return figures
