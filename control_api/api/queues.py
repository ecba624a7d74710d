"""The Queues resource (QU…) and its Members, the calls waiting in a queue.

- ``POST Queues.json`` (``FriendlyName``, ``MaxSize``: 1 to 5000, default 1000) creates
  (201); ``GET`` lists; ``GET``/``POST``/``DELETE Queues/{QU}.json`` fetch, update
  (``FriendlyName``, ``MaxSize``) and delete one (only once it is empty).
  ``current_size`` and ``average_wait_time`` are computed at the request from the
  members waiting now.
- ``GET Queues/{QU}/Members.json`` lists the waiting calls front first;
  ``GET Members/{CallSid}.json`` (or ``Front``) fetches one with its ``position`` and
  ``wait_time``; ``POST`` with ``Url`` (and ``Method``) dequeues it: the call leaves
  the queue and runs the TwiML at ``Url`` (its ``<Enqueue action>`` is told
  ``QueueResult=redirected``). The dequeue goes through ``LiveCalls.redirect``, so a
  member on another node is reached as a REST call update would reach it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import account_uri
from control_api.api.auth import PathAccount
from control_api.api.paging import page_response
from control_api.api.params import Params, form_params, parse_method, parse_url
from control_api.api.resource import Resource, found
from control_api.api.state import store_of
from control_api.call_queue import DEFAULT_MAX_SIZE, MAX_QUEUE_SIZE, average_wait, wait_seconds
from control_api.errors import (
    CALL_METHOD_INVALID,
    CALL_URL_INVALID,
    INVALID_FRIENDLY_NAME,
    INVALID_PARAMETER,
    ApiError,
)
from control_api.sids import rfc2822, utcnow
from control_api.store import MAX_FRIENDLY_NAME, Account, QueueMember, QueueNameTaken, QueueRecord
from control_api.voice.port import LiveCalls

__all__ = ["member_json", "queue_json", "router"]

router = APIRouter()

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"
INSTANCE = ACCOUNT + "/Queues/{sid}.json"
MEMBERS = ACCOUNT + "/Queues/{sid}/Members.json"
MEMBER = ACCOUNT + "/Queues/{sid}/Members/{call_sid}.json"
FRONT = "Front"


def _queue_uri(queue: QueueRecord) -> str:
    return f"{account_uri(queue.account_sid)}/Queues/{queue.sid}"


def queue_json(queue: QueueRecord, enqueued: Sequence[datetime]) -> dict:
    """A queue as Twilio shows it; ``enqueued``: when each member waiting now joined.

    As the spec's queue schema has it: no ``api_version`` and no ``subresource_uris``
    (the members are at the queue's URI with ``/Members.json``).
    """
    now = utcnow().timestamp()
    base = _queue_uri(queue)
    return {
        "account_sid": queue.account_sid,
        "average_wait_time": average_wait((at.timestamp() for at in enqueued), now),
        "current_size": len(enqueued),
        "date_created": rfc2822(queue.date_created),
        "date_updated": rfc2822(queue.date_updated),
        "friendly_name": queue.friendly_name,
        "max_size": queue.max_size,
        "sid": queue.sid,
        "uri": f"{base}.json",
    }


def member_json(member: QueueMember, position: int) -> dict:
    return {
        "call_sid": member.call_sid,
        "date_enqueued": rfc2822(member.date_enqueued),
        "position": position,
        "queue_sid": member.queue_sid,
        "uri": (
            f"{account_uri(member.account_sid)}/Queues/{member.queue_sid}"
            f"/Members/{member.call_sid}.json"
        ),
        "wait_time": wait_seconds(member.date_enqueued.timestamp(), utcnow().timestamp()),
    }


def _fields(params: Params, *, creating: bool) -> dict:
    fields: dict = {}
    if "FriendlyName" in params or creating:
        name = params.get("FriendlyName") or ""
        if not 1 <= len(name) <= MAX_FRIENDLY_NAME:
            raise ApiError.bad_parameter(
                f"FriendlyName must have 1 to {MAX_FRIENDLY_NAME} characters",
                INVALID_FRIENDLY_NAME,
            )
        fields["friendly_name"] = name
    size = params.get("MaxSize")
    if size:
        if not size.isdigit() or not 1 <= int(size) <= MAX_QUEUE_SIZE:
            raise ApiError.bad_parameter(f"MaxSize must be a number from 1 to {MAX_QUEUE_SIZE}")
        fields["max_size"] = int(size)
    elif creating:
        fields["max_size"] = DEFAULT_MAX_SIZE
    return fields


async def _show(request: Request, queues: Sequence[QueueRecord]) -> list[dict]:
    """The queues' JSON, with the members waiting in each now."""
    enqueued = await store_of(request).queue_members.enqueued(queue.sid for queue in queues)
    return [queue_json(queue, enqueued[queue.sid]) for queue in queues]


async def _refuse_busy(request: Request, queue: QueueRecord) -> None:
    if await store_of(request).queue_members.front(queue.account_sid, queue.sid) is not None:
        raise ApiError(400, INVALID_PARAMETER, "A queue with calls waiting cannot be deleted")


QUEUES = Resource(INSTANCE, ("QU",), lambda r: store_of(r).queues, show=_show)
QUEUES.add_routes(router, refuse_delete=_refuse_busy)


def _name_taken(exc: QueueNameTaken) -> ApiError:
    return ApiError.bad_parameter(f"A queue named {exc.name!r} exists already")


@router.post(QUEUES.list_path)
async def create(request: Request, account: PathAccount) -> Response:
    fields = _fields(await form_params(request), creating=True)
    try:
        queue = await store_of(request).queues.create(account.sid, **fields)
    except QueueNameTaken as exc:
        raise _name_taken(exc) from None
    return JSONResponse(await QUEUES.json(request, queue), status_code=201)


@router.post(INSTANCE)
async def update(request: Request, sid: str, account: PathAccount) -> Response:
    fields = _fields(await form_params(request), creating=False)
    queue = await QUEUES.existing(request, account.sid, sid)
    if fields:
        try:
            updated = await store_of(request).queues.update(account.sid, sid, **fields)
        except QueueNameTaken as exc:
            raise _name_taken(exc) from None
        queue = updated or queue
    return JSONResponse(await QUEUES.json(request, queue))


@router.get(MEMBERS)
async def list_members(request: Request, sid: str, account: PathAccount) -> Response:
    queue = await QUEUES.existing(request, account.sid, sid)
    members = store_of(request).queue_members

    async def fetch(*, offset: int, limit: int) -> list[tuple[QueueMember, int]]:
        page = await members.page(account.sid, queue.sid, offset=offset, limit=limit)
        return [(member, offset + number) for number, member in enumerate(page, start=1)]

    return await page_response(request, "queue_members", fetch, _member_json)


def _member_json(member_at: tuple[QueueMember, int]) -> dict:
    return member_json(*member_at)


async def _member(request: Request, account: Account, sid: str, call_sid: str) -> QueueMember:
    queue = await QUEUES.existing(request, account.sid, sid)
    members = store_of(request).queue_members
    if call_sid == FRONT:
        return found(request, await members.front(account.sid, queue.sid))
    return found(request, await members.get(account.sid, queue.sid, call_sid))


@router.get(MEMBER)
async def fetch_member(request: Request, sid: str, call_sid: str, account: PathAccount) -> Response:
    member = await _member(request, account, sid, call_sid)
    position = await store_of(request).queue_members.position(member)
    return JSONResponse(member_json(member, position))


@router.post(MEMBER)
async def dequeue_member(
    request: Request, sid: str, call_sid: str, account: PathAccount
) -> Response:
    """Dequeue the member: its call runs the TwiML at ``Url`` now."""
    params = await form_params(request)
    url = parse_url("Url", params.get("Url") or "", CALL_URL_INVALID)
    if url is None:
        raise ApiError.bad_parameter("Url is required", CALL_URL_INVALID)
    method = parse_method("Method", params.get("Method") or "", CALL_METHOD_INVALID)
    member = await _member(request, account, sid, call_sid)
    store = store_of(request)
    position = await store.queue_members.position(member)
    live: LiveCalls = request.app.state.live_calls
    if not await live.redirect(account.sid, member.call_sid, url=url, method=method):
        # The call ended without leaving (its node stopped): the row is stale.
        await store.queue_members.remove(member.queue_sid, member.call_sid)
        raise ApiError.not_found(request.url.path)
    return JSONResponse(member_json(member, position))
