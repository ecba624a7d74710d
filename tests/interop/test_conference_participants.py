"""A participant dialled into a running conference through the Participants API, with
the official `twilio` library and SIPp on both ends.

A SIPp caller (1700 Hz) is in `<Conference>room</Conference>`; the API dials a SIPp
phone (1000 Hz) in with `participants.create(from_=..., to="sip:...")`: each hears
the other's tone and not its own. Put on hold, the phone hears the local hold music
and the caller stops hearing it. The phone's `ConferenceStatusCallback` (the first
given: the caller gave none) gets the participant events, signed; once both have
left, the conference is completed with `last-participant-left`.
"""

from __future__ import annotations

import time

from twilio.request_validator import RequestValidator
from twilio.rest import Client

from .audio import sine, ulaw_encode
from .conftest import require
from .harness import free_port
from .rtp import RtpSink
from .sipp import SippBackground, find_sipp
from .test_conference import band_level
from .test_queues import LOUD, QUIET, audio_between, caller, hold_music_hz, wait_until
from .test_voice_webhooks import LocalHttpClient, credentials
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550042"
CALLER_HZ, PHONE_HZ = 1700.0, 1000.0  # neither is a note of the hold music


def phone(tmp_path, port: int, sink: RtpSink) -> SippBackground:
    return SippBackground(
        "uas_answer_tone_wait_bye.xml",
        None,
        workdir=tmp_path / "phone",
        sipp=find_sipp(),
        local_port=port,
        calls=1,
        timeout=60,
        trace_msg=True,
        keys={"sink_port": sink.port},
        files={"tone.ulaw": ulaw_encode(sine(PHONE_HZ, 1.0, amplitude=0.2))},
    )


def test_a_participant_dialled_in_hears_the_room_and_is_held(server, tmp_path):
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    sid, token = credentials(server)
    client = Client(sid, token, http_client=LocalHttpClient(f"http://127.0.0.1:{server.http_port}"))
    port = free_port()
    with WebhookApp() as app, RtpSink() as caller_sink, RtpSink() as phone_sink:
        app.routes["/room"] = lambda r: twiml(
            '<Dial><Conference beep="false">room</Conference></Dial>'
        )
        app.routes["/events"] = lambda r: (204, "text/plain", b"")
        client.incoming_phone_numbers.create(phone_number=NUMBER, voice_url=app.url("/room"))
        ends = []
        try:
            ends.append(caller(server, tmp_path, "caller", NUMBER, CALLER_HZ, caller_sink))
            room = wait_until(
                lambda: next(iter(client.conferences.list(status="in-progress")), None),
                "conference",
                server,
            )
            ends.append(phone(tmp_path, port, phone_sink))
            participant = client.conferences("room").participants.create(
                from_=NUMBER,
                to=f"sip:agent@127.0.0.1:{port}",
                label="agent",
                beep="false",
                conference_status_callback=app.url("/events"),
                conference_status_callback_event=["join", "leave", "hold", "end"],
            )
            assert participant.status == "queued" and participant.conference_sid == room.sid
            handle = client.conferences(room.sid).participants("agent")
            wait_until(lambda: handle.fetch().status == "connected", "connected", server)
            time.sleep(1.0)
            talk = time.monotonic()
            time.sleep(2.5)
            talked = time.monotonic()

            held = handle.update(hold=True)
            assert held.hold is True
            time.sleep(1.0)
            hold = time.monotonic()
            time.sleep(2.5)
            unheld = time.monotonic()

            handle.delete()  # kicked: its TwiML ends after the <Dial>, and so does the call
            [caller_call] = client.calls.list(to=NUMBER)
            client.calls(caller_call.sid).update(status="completed")
            for end in ends:
                result = end.wait(20)
                assert result.ok(1), f"{result.describe()}\n{server.tail()}"
            ended = wait_until(
                lambda: (c := client.conferences(room.sid).fetch()).status == "completed" and c,
                "the end",
                server,
            )
            events = app.wait_for("/events", count=5, timeout=10)
            time.sleep(0.5)  # nothing more arrives
            assert len(app.wait_for("/events", count=5)) == 5
        finally:
            for end in ends:
                end.kill()

    assert ended.reason_conference_ended == "last-participant-left"
    assert ended.call_sid_ending_conference == caller_call.sid
    kinds = [(e.field("StatusCallbackEvent"), e.field("CallSid")) for e in events]
    assert kinds == [
        ("participant-join", participant.call_sid),
        ("participant-hold", participant.call_sid),
        ("participant-leave", participant.call_sid),
        ("participant-leave", caller_call.sid),
        ("conference-end", None),
    ], kinds
    assert events[0].field("ParticipantLabel") == "agent"
    assert (
        events[0].field("ConferenceSid") == room.sid and events[0].field("FriendlyName") == "room"
    )
    assert events[-1].field("ReasonConferenceEnded") == "last-participant-left"
    validator = RequestValidator(token)
    for event in events:
        signature = event.headers["X-Twilio-Signature"]
        assert validator.validate(event.url, event.form_dict, signature), event.form
    call = client.calls(participant.call_sid).fetch()
    assert call.status == "completed" and call.to == f"sip:agent@127.0.0.1:{port}"

    by_caller = audio_between(caller_sink, talk, talked)
    by_phone = audio_between(phone_sink, talk, talked)
    assert band_level(by_phone, CALLER_HZ) > LOUD, band_level(by_phone, CALLER_HZ)
    assert band_level(by_caller, PHONE_HZ) > LOUD, band_level(by_caller, PHONE_HZ)
    assert band_level(by_phone, PHONE_HZ) < QUIET and band_level(by_caller, CALLER_HZ) < QUIET

    on_hold = audio_between(phone_sink, hold, unheld)
    assert max(band_level(on_hold, hz) for hz in hold_music_hz()) > 400
    assert band_level(on_hold, CALLER_HZ) < QUIET
    caller_during = audio_between(caller_sink, hold, unheld)
    assert band_level(caller_during, PHONE_HZ) < QUIET
