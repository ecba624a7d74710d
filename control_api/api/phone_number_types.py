"""``IncomingPhoneNumbers/Local``, ``/Mobile`` and ``/TollFree``: create and list numbers
of one type.

A number created through one of these lists has that ``type`` (shown by the
IncomingPhoneNumbers resource); each list shows the account's numbers of its type.
Their bodies are the IncomingPhoneNumber's without ``type``, as Twilio's spec has them.
The app includes this router before ``phone_numbers``', whose
``IncomingPhoneNumbers/{sid}.json`` would otherwise take these paths.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.phone_numbers import list_page, number_json, provision
from control_api.store import PhoneNumber

__all__ = ["TYPED_LISTS", "router"]

router = APIRouter()

# The list's name in the path -> the type of its numbers.
TYPED_LISTS = {"Local": "local", "Mobile": "mobile", "TollFree": "toll-free"}


def typed_number_json(number: PhoneNumber) -> dict:
    body = number_json(number)
    del body["type"]
    return body


def _routes(name: str, number_type: str) -> None:
    path = f"/2010-04-01/Accounts/{{account_sid}}/IncomingPhoneNumbers/{name}.json"

    async def create(request: Request, account: PathAccount) -> Response:
        number = await provision(request, account, number_type)
        return JSONResponse(typed_number_json(number), status_code=201)

    async def list_(request: Request, account: PathAccount) -> Response:
        return await list_page(request, account, typed_number_json, number_type)

    router.add_api_route(path, create, methods=["POST"], name=f"create_{number_type}_number")
    router.add_api_route(path, list_, methods=["GET"], name=f"list_{number_type}_numbers")


for _name, _type in TYPED_LISTS.items():
    _routes(_name, _type)
