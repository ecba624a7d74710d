"""``/admin/rtpengine``: the operator's view of this node's rtpengine instances, and
draining one for maintenance, as Kamailio's rtpengine module offers them over RPC
(``rtpengine.show all``, ``rtpengine.enable URL 0|1``; docs/rtpengine.md).

- ``GET /admin/rtpengine``: each instance (``HOST:PORT``), its weight, whether it is
  up (answering) and enabled (not drained), and the bridges this node holds there.
- ``POST /admin/rtpengine/enable`` with ``instance=HOST:PORT`` (or ``all``) and
  ``enabled=0`` (drain) or ``1``, as a form or JSON: the instances after the change.
  A drained instance takes no new bridge (they go to the other instances, or stay in
  process when none is left); the bridges it carries keep their audio until they end.

Both take ``Authorization: Bearer <--admin-token>``; without ``--admin-token`` the
endpoints do not exist (404). The state is the node's own, in memory: with several
nodes, drain the instance on each (as with each Kamailio), and again after a restart.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from media.rtpengine.client import RtpEngines

__all__ = ["rtpengine_admin"]

log = logging.getLogger("callswitch.admin")

PATH = "/admin/rtpengine"


def _listing(engines: RtpEngines | None) -> JSONResponse:
    instances = [] if engines is None else engines.set.instances
    return JSONResponse(
        {
            "instances": [
                {
                    "instance": str(i.address),
                    "weight": i.address.weight,
                    "up": i.up,
                    "enabled": not i.draining,
                    "calls": i.calls,
                }
                for i in instances
            ]
        }
    )


def _authorized(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode()
    )


async def _fields(request: Request) -> dict[str, str]:
    """``instance`` and ``enabled`` from a JSON body or a form."""
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            body = json.loads(await request.body())
        except ValueError:
            return {}
        if not isinstance(body, dict):
            return {}
        return {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in body.items()}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


def rtpengine_admin(
    engines: Callable[[], RtpEngines | None],
    token: str | None,
    refused: Callable[[str, str], None] = lambda reason, source: None,
) -> APIRouter:
    """The routes, reading the node's instances through ``engines`` (None: no
    --rtpengine); none at all without a ``token``. A request without it is
    ``refused`` (``admin.unauthorized``, its source address)."""
    router = APIRouter()
    if not token:
        return router

    def unauthorized(request: Request) -> JSONResponse | None:
        if _authorized(request, token):
            return None
        refused("admin.unauthorized", request.client.host if request.client else "")
        headers = {"WWW-Authenticate": 'Bearer realm="admin"'}
        return JSONResponse({"error": "unauthorized"}, 401, headers=headers)

    @router.get(PATH)
    async def show(request: Request) -> JSONResponse:
        return unauthorized(request) or _listing(engines())

    @router.post(PATH + "/enable")
    async def enable(request: Request) -> JSONResponse:
        if (refusal := unauthorized(request)) is not None:
            return refusal
        fields = await _fields(request)
        enabled = {"1": True, "true": True, "0": False, "false": False}.get(
            fields.get("enabled", "").strip().lower()
        )
        instance = fields.get("instance", "").strip()
        if enabled is None or not instance:
            message = "give instance=HOST:PORT (or all) and enabled=0 or 1"
            return JSONResponse({"error": "bad_request", "message": message}, 400)
        current = engines()
        try:
            chosen = [] if current is None else current.set.drain(instance, not enabled)
        except ValueError as exc:
            return JSONResponse({"error": "bad_request", "message": str(exc)}, 400)
        if not chosen:
            return JSONResponse({"error": "not_found", "message": "no such instance"}, 404)
        for each in chosen:
            log.info(
                "rtpengine.enabled" if enabled else "rtpengine.drained",
                extra={"instance": str(each.address), "calls": each.calls},
            )
        return _listing(current)

    return router
