"""The Media resource of a message (MMS): ``Messages/{SM}/Media``.

``GET Messages/{SM}/Media.json`` lists a message's media (filter ``DateCreated`` with
``<``/``>``), ``GET``/``DELETE Messages/{SM}/Media/{ME}.json`` fetch and delete one.
The message service stores them (an inbound message's as received, an outbound one's
as fetched from its ``MediaUrl``: control_api/sms/media.py).

``Messages/{SM}/Media/{ME}`` (no ``.json``) is the file itself, with its content type:
the URL the ``SmsUrl`` webhook's ``MediaUrl0``… name. As with Twilio's default, and as
recordings' audio, it is served without authentication: knowing the three SIDs is what
lets a client fetch it. HTTP Basic credentials may be sent; if they are, they must be
right.
"""

from __future__ import annotations

from functools import partial

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import account_uri
from control_api.api.auth import PathAccount, authenticate
from control_api.api.filters import DateRange, Filter
from control_api.api.paging import page_response
from control_api.api.resource import deleted, found, path_sid
from control_api.api.state import store_of
from control_api.errors import ApiError
from control_api.sids import rfc2822
from control_api.store import Account, MediaRecord

__all__ = ["media_base", "media_json", "router"]

router = APIRouter()

BASE = "/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media"
LIST = BASE + ".json"
INSTANCE = BASE + "/{sid}.json"
CONTENT = BASE + "/{sid}"

FILTERS: dict[str, Filter] = {"DateCreated": DateRange.filter("date_created")}


def media_base(account_sid: str, message_sid: str) -> str:
    """The path of a message's media list, without ``.json``."""
    return f"{account_uri(account_sid)}/Messages/{message_sid}/Media"


def media_json(media: MediaRecord) -> dict:
    base = media_base(media.account_sid, media.message_sid)
    return {
        "account_sid": media.account_sid,
        "content_type": media.content_type,
        "date_created": rfc2822(media.date_created),
        "date_updated": rfc2822(media.date_updated),
        "parent_sid": media.message_sid,
        "sid": media.sid,
        "uri": f"{base}/{media.sid}.json",
    }


def _media_sids(request: Request, message_sid: str, sid: str) -> None:
    """404 unless the path names a message (SM…/MM…) and a media (ME…)."""
    path_sid(request, message_sid, "SM", "MM")
    path_sid(request, sid, "ME")


async def _message(request: Request, account: Account, message_sid: str) -> None:
    """404 unless the account has the message."""
    path_sid(request, message_sid, "SM", "MM")
    found(request, await store_of(request).messages.get(account.sid, message_sid))


@router.get(LIST)
async def list_media(request: Request, message_sid: str, account: PathAccount) -> Response:
    await _message(request, account, message_sid)
    fetch = partial(store_of(request).message_media.page, account.sid, message_sid)
    return await page_response(request, "media_list", fetch, media_json, FILTERS)


@router.get(INSTANCE)
async def fetch_media(
    request: Request, message_sid: str, sid: str, account: PathAccount
) -> Response:
    _media_sids(request, message_sid, sid)
    media = await store_of(request).message_media.get(account.sid, message_sid, sid)
    return JSONResponse(media_json(found(request, media)))


@router.delete(INSTANCE)
async def delete_media(
    request: Request, message_sid: str, sid: str, account: PathAccount
) -> Response:
    _media_sids(request, message_sid, sid)
    done = await store_of(request).message_media.delete(account.sid, message_sid, sid)
    return deleted(request, done)


@router.get(CONTENT)
async def fetch_content(request: Request, account_sid: str, message_sid: str, sid: str) -> Response:
    path_sid(request, account_sid, "AC")
    _media_sids(request, message_sid, sid)
    if request.headers.get("authorization") is not None:
        account = await authenticate(request)
        if account.sid != account_sid:
            raise ApiError.unauthorized()
    media = await store_of(request).message_media.get(account_sid, message_sid, sid, content=True)
    media = found(request, media)
    assert media.content is not None  # asked for with its content
    return Response(media.content, media_type=media.content_type)
