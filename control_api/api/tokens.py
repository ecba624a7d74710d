"""The Tokens resource (Network Traversal Service): STUN/TURN servers and credentials.

``POST /2010-04-01/Accounts/{AccountSid}/Tokens.json`` with ``Ttl`` (seconds,
default and maximum 86400) answers Twilio's shape (reference §9): the ICE
servers of this deployment's TURN relay, each TURN URL with a TURN REST API
username ``<expiry>:<AccountSid>`` and its HMAC-SHA1 password, which every TURN
node sharing the secret accepts until the expiry. Nothing is stored.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.params import form_params
from control_api.errors import ApiError
from control_api.sids import rfc2822, utcnow
from turn.auth import rest_credentials

__all__ = ["DEFAULT_TTL", "IceServers", "router", "token_json"]

LIST = "/2010-04-01/Accounts/{account_sid}/Tokens.json"
DEFAULT_TTL = 86400
MAX_TTL = 86400

router = APIRouter()


@dataclass(frozen=True, slots=True)
class IceServers:
    """Where our TURN relay listens and the secret its REST credentials are signed with."""

    secret: str
    host: str
    port: int = 3478
    tls_port: int | None = None  # turns: URLs only when TURN over TLS runs

    def urls(self) -> tuple[list[str], list[str]]:
        """(stun URLs, turn URLs)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        stun = [f"stun:{host}:{self.port}"]
        turn = [
            f"turn:{host}:{self.port}?transport=udp",
            f"turn:{host}:{self.port}?transport=tcp",
        ]
        if self.tls_port:
            turn.append(f"turns:{host}:{self.tls_port}?transport=tcp")
        return stun, turn


def token_json(account_sid: str, ice: IceServers, ttl: int, now: float) -> dict:
    username, password = rest_credentials(ice.secret, account_sid, int(now) + ttl)
    stun, turn = ice.urls()
    servers: list[dict] = [{"url": url, "urls": url} for url in stun]
    servers += [
        {"url": url, "urls": url, "username": username, "credential": password} for url in turn
    ]
    created = rfc2822(utcnow())
    return {
        "account_sid": account_sid,
        "date_created": created,
        "date_updated": created,
        "ttl": str(ttl),
        "username": username,
        "password": password,
        "ice_servers": servers,
    }


def _ttl(value: str | None) -> int:
    if value is None or value == "":
        return DEFAULT_TTL
    if not value.isdigit() or not 1 <= int(value) <= MAX_TTL:
        raise ApiError.bad_parameter(f"Ttl must be a whole number of seconds from 1 to {MAX_TTL}")
    return int(value)


@router.post(LIST)
async def create_token(request: Request, account: PathAccount) -> Response:
    params = await form_params(request)
    ttl = _ttl(params.get("Ttl"))
    ice: IceServers | None = getattr(request.app.state, "ice_servers", None)
    if ice is None:
        raise ApiError.not_found(request.url.path)
    return JSONResponse(token_json(account.sid, ice, ttl, time.time()), status_code=201)
