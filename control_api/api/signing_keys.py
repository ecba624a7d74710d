"""The SigningKeys resource: signing keys (SK…), Twilio's other list of API keys.

A signing key is made, listed, renamed and deleted as a key of ``Keys.json`` is
(api/keys.py), in a list of its own: ``POST SigningKeys.json`` (``FriendlyName``)
answers, once only, with its ``secret`` (201); ``GET SigningKeys.json`` lists the
account's signing keys and ``GET``/``POST``/``DELETE SigningKeys/{Sid}.json`` fetch,
rename and delete one, never showing the secret again. As the spec says of the secret,
it signs access tokens and authenticates REST requests (``SKxxx:secret``) as a key's
does; deleting the key invalidates both at once.
"""

from __future__ import annotations

from fastapi import APIRouter

from control_api.api.keys import add_key_routes
from control_api.api.state import store_of

__all__ = ["router"]

router = APIRouter()

SIGNING_KEYS = add_key_routes(router, "SigningKeys", lambda r: store_of(r).signing_keys)
