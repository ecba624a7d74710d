"""The node endpoint peers forward REST updates of a call to (``/cluster/…``): it acts
on this node's own calls through the voice runtime's ``LiveCalls`` port, and on its
own conference rooms (a participant's or a conference's change) through
``LiveConferences``. The forwarding side is control_api/cluster/forward.py and
conferences.py; see docs/deploy.md."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from control_api.api.auth import PathAccount
from control_api.api.conferences import LiveConferences
from control_api.cluster.forward import FORWARD_PATH, stream_to_wire, transcription_to_wire
from control_api.voice.port import LiveCalls, NewRecording, NewStream, NewTranscription, NewTwiml

__all__ = ["cluster_router"]


def cluster_router(local: LiveCalls, rooms: LiveConferences | None = None) -> APIRouter:
    """The node endpoint peers forward to; it acts on ``local`` (this node's own calls)
    and ``rooms`` (this node's own conference rooms)."""
    router = APIRouter()

    @router.post(FORWARD_PATH)
    async def forwarded(request: Request, call_sid: str, account: PathAccount) -> JSONResponse:
        try:
            body = await request.json()
            action = body["action"]
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": "bad_request"}, 400)
        sid = account.sid
        if action in CONFERENCE_ACTIONS:
            if rooms is None:
                return JSONResponse({"acted": False})
            try:
                acted = await _conference_action(rooms, sid, call_sid, body)
            except (KeyError, TypeError, ValueError):
                return JSONResponse({"error": "bad_request"}, 400)
            return JSONResponse({"acted": acted})
        if action == "hangup":
            return JSONResponse({"acted": await local.hangup(sid, call_sid)})
        if action == "cancel":
            return JSONResponse({"acted": await local.cancel(sid, call_sid)})
        if action == "redirect":
            to = NewTwiml(body.get("url"), body.get("method") or "POST", body.get("twiml"))
            acted = await local.redirect(sid, call_sid, to)
            return JSONResponse({"acted": acted})
        if action == "start_stream":
            try:
                fields = dict(body["stream"])
                fields["parameters"] = tuple(tuple(p) for p in fields.get("parameters", ()))
                stream = NewStream(**fields)
            except (KeyError, TypeError, ValueError):
                return JSONResponse({"error": "bad_request"}, 400)
            try:
                found = await local.start_stream(sid, call_sid, stream)
            except ValueError as exc:
                return JSONResponse({"error": "name_taken", "message": str(exc)}, 409)
            return JSONResponse({"stream": stream_to_wire(found)})
        if action == "stop_stream":
            try:
                found = await local.stop_stream(sid, call_sid, str(body["stream"]))
            except LookupError as exc:
                return JSONResponse({"error": "no_such_stream", "message": str(exc)}, 404)
            return JSONResponse({"stream": stream_to_wire(found)})
        if action in ("start_recording", "update_recording"):
            return await _recording(local, sid, call_sid, action, body)
        if action in ("start_transcription", "stop_transcription"):
            return await _transcription(local, sid, call_sid, action, body)
        return JSONResponse({"error": "bad_request"}, 400)

    return router


async def _recording(
    local: LiveCalls, account_sid: str, call_sid: str, action: str, body: dict
) -> JSONResponse:
    """A forwarded ``POST Calls/{CallSid}/Recordings`` (start) or ``…/Recordings/{Sid}``."""
    try:
        if action == "start_recording":
            fields = dict(body["recording"])
            fields["status_callback_events"] = tuple(fields.get("status_callback_events", ()))
            new = NewRecording(**fields)
        else:
            sid, status = str(body["recording"]), str(body["status"])
            pause_behavior = str(body["pause_behavior"])
    except (KeyError, TypeError, ValueError):
        return JSONResponse({"error": "bad_request"}, 400)
    try:
        if action == "start_recording":
            found = await local.start_recording(account_sid, call_sid, new)
        else:
            found = await local.update_recording(account_sid, call_sid, sid, status, pause_behavior)
    except LookupError as exc:
        return JSONResponse({"error": "no_such_recording", "message": str(exc)}, 404)
    except ValueError as exc:  # as many recordings as the call may have
        return JSONResponse({"error": "name_taken", "message": str(exc)}, 409)
    return JSONResponse({"recording": found})


async def _transcription(
    local: LiveCalls, account_sid: str, call_sid: str, action: str, body: dict
) -> JSONResponse:
    """A forwarded ``POST Calls/{CallSid}/Transcriptions`` (start) or
    ``…/Transcriptions/{Sid}`` (stop)."""
    try:
        if action == "start_transcription":
            new = NewTranscription(**dict(body["transcription"]))
        else:
            sid_or_name = str(body["transcription"])
    except (KeyError, TypeError, ValueError):
        return JSONResponse({"error": "bad_request"}, 400)
    try:
        if action == "start_transcription":
            found = await local.start_transcription(account_sid, call_sid, new)
        else:
            found = await local.stop_transcription(account_sid, call_sid, sid_or_name)
    except LookupError as exc:
        return JSONResponse({"error": "no_such_transcription", "message": str(exc)}, 404)
    except ValueError as exc:  # a name taken, or as many as the call may have
        return JSONResponse({"error": "name_taken", "message": str(exc)}, 409)
    return JSONResponse({"transcription": transcription_to_wire(found)})


CONFERENCE_ACTIONS = frozenset(
    {"update_participant", "kick_participant", "end_conference", "announce_conference"}
)
PARTICIPANT_CHANGES = frozenset(
    {
        "muted",
        "hold",
        "hold_url",
        "hold_method",
        "announce_url",
        "announce_method",
        "coaching",
        "call_sid_to_coach",
        "end_conference_on_exit",
        "beep_on_exit",
    }
)


async def _conference_action(
    rooms: LiveConferences, account_sid: str, call_sid: str, body: dict
) -> bool:
    """A conference change a peer forwarded (cluster/conferences.py), on this node's rooms."""
    action, conference_sid = body["action"], str(body["conference_sid"])
    if action == "update_participant":
        changes = dict(body.get("changes") or {})
        if not set(changes) <= PARTICIPANT_CHANGES:
            raise ValueError("unknown participant change")
        return await rooms.update_participant(account_sid, conference_sid, call_sid, **changes)
    if action == "kick_participant":
        return await rooms.kick(account_sid, conference_sid, call_sid)
    if action == "end_conference":
        return await rooms.end(account_sid, conference_sid)
    return await rooms.announce(
        account_sid, conference_sid, str(body["url"]), str(body.get("method") or "POST")
    )
