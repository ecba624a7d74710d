"""The demo number's TwiML app, served by callswitch itself.

It greets, gathers digits (finish with #) and reads them back: a first call
that exercises webhooks, <Say>, <Gather> and actions without writing any code.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from fastapi import APIRouter, Request, Response

__all__ = ["DEMO_NUMBER", "DEMO_PATH", "router"]

DEMO_NUMBER = "+1000"
DEMO_PATH = "/demo/voice"

router = APIRouter()


def _twiml(body: str) -> Response:
    document = f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'
    return Response(document, media_type="text/xml")


@router.api_route(DEMO_PATH, methods=["GET", "POST"])
async def greet() -> Response:
    return _twiml(
        f'<Gather action="{DEMO_PATH}/digits" finishOnKey="#" timeout="6">'
        "<Say>Welcome to callswitch. Enter some digits, then press the pound key.</Say>"
        "</Gather>"
        "<Say>We did not get any digits. Goodbye.</Say>"
    )


@router.api_route(DEMO_PATH + "/digits", methods=["GET", "POST"])
async def read_back(request: Request) -> Response:
    form = await request.form() if request.method == "POST" else request.query_params
    digits = "".join(c for c in str(form.get("Digits", "")) if c in "0123456789*#")
    spoken = ", ".join({"*": "star", "#": "pound"}.get(c, c) for c in digits)
    return _twiml(f"<Say>You entered {escape(spoken)}. Goodbye.</Say>")
