"""Answering-machine detection on calls we place: the REST and TwiML parameters, and the
detector listening to a leg (control_api/voice/machine_detection.py)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from starlette.datastructures import ImmutableMultiDict

from control_api.api.calls import machine_detection_from, new_call_from
from control_api.errors import ApiError
from control_api.twiml.parser import parse_voice_twiml
from control_api.voice import machine_detection
from control_api.voice.port import NewMachineDetection
from media.g711 import ulaw_encode
from media.leg import Frame


def form(**fields: str) -> ImmutableMultiDict:
    return ImmutableMultiDict(fields)


def test_rest_parameters_with_twilio_defaults_and_ranges():
    assert machine_detection_from(form()) is None
    assert machine_detection_from(form(MachineDetection="none")) is None
    enable = machine_detection_from(form(MachineDetection="Enable"))
    assert enable is not None and not enable.detect_message_end and not enable.asynchronous
    assert (enable.timeout_s, enable.speech_threshold_ms, enable.speech_end_threshold_ms) == (
        30,
        2400,
        1200,
    )
    assert enable.silence_timeout_ms == 5000
    tuned = machine_detection_from(
        form(
            MachineDetection="DetectMessageEnd",
            MachineDetectionTimeout="120",
            MachineDetectionSpeechThreshold="100",
            MachineDetectionSpeechEndThreshold="900",
            MachineDetectionSilenceTimeout="99999",
            AsyncAmd="true",
            AsyncAmdStatusCallback="https://example.com/amd",
            AsyncAmdStatusCallbackMethod="GET",
        )
    )
    assert tuned is not None and tuned.detect_message_end and tuned.asynchronous
    assert (tuned.timeout_s, tuned.speech_threshold_ms, tuned.speech_end_threshold_ms) == (
        59,
        1000,
        900,
    )
    assert (tuned.silence_timeout_ms, tuned.callback, tuned.callback_method) == (
        10000,
        "https://example.com/amd",
        "GET",
    )
    with pytest.raises(ApiError):
        machine_detection_from(form(MachineDetection="Sometimes"))


def test_send_digits_turns_machine_detection_off_as_on_twilio():
    base = {"To": "+15551230000", "From": "+15551239999", "Url": "https://example.com/"}
    assert new_call_from(form(**base, MachineDetection="Enable")).machine_detection is not None
    with_digits = form(**base, MachineDetection="Enable", SendDigits="1234")
    assert new_call_from(with_digits).machine_detection is None


def test_a_dialled_number_asks_for_asynchronous_detection():
    [dial] = parse_voice_twiml(
        "<Response><Dial><Number machineDetection='DetectMessageEnd' "
        "machineDetectionSilenceTimeout='3000' amdStatusCallback='https://example.com/amd'>"
        "+15551230000</Number><Client>alice</Client></Dial></Response>"
    ).verbs
    number, client = dial.nouns
    request = machine_detection.request_of(number)
    assert request is not None and request.asynchronous and request.detect_message_end
    assert (request.silence_timeout_ms, request.callback) == (3000, "https://example.com/amd")
    assert machine_detection.request_of(client) is None


class FakeLeg:
    tap = None
    tap_paced = False


class FakeCall:
    def __init__(self) -> None:
        self.leg = FakeLeg()
        self.ended = asyncio.Event()


def pcmu_frames(samples: np.ndarray) -> list[Frame]:
    payload = ulaw_encode(samples.astype(np.int16))
    return [Frame("PCMU", payload[i : i + 160]) for i in range(0, len(payload) - 159, 160)]


async def test_the_detector_hears_the_leg_and_lets_go_of_it():
    call = FakeCall()
    settings = machine_detection.settings_of(NewMachineDetection())
    detecting = asyncio.ensure_future(machine_detection.detect(call, settings))
    await asyncio.sleep(0)
    assert call.leg.tap is not None
    t = np.arange(8000) / 8000
    for frame in pcmu_frames(0.3 * 32767 * np.sin(2 * np.pi * 1100 * t)):
        call.leg.tap(1, Frame("PCMU", b"\xff" * 160))  # what we send is not listened to
        call.leg.tap(0, frame)
    result = await asyncio.wait_for(detecting, 30)
    assert result is not None and result.answered_by == "fax"
    assert call.leg.tap is None


async def test_a_silent_peer_is_unknown_and_an_ended_call_has_no_answer():
    call = FakeCall()
    quick = NewMachineDetection(silence_timeout_ms=2000)
    result = await asyncio.wait_for(
        machine_detection.detect(call, machine_detection.settings_of(quick)), 30
    )
    assert result is not None and result.answered_by == "unknown"
    assert 2000 <= result.duration_ms <= 2020  # counted in audio time, not when it was told
    ended = FakeCall()
    detecting = asyncio.ensure_future(
        machine_detection.detect(ended, machine_detection.settings_of(quick))
    )
    await asyncio.sleep(0)
    ended.ended.set()
    assert await asyncio.wait_for(detecting, 30) is None
    assert ended.leg.tap is None


PARTY = {"To": "+15551230000", "From": "+15551239999"}


def test_a_participant_s_detection_is_asynchronous_to_its_amd_status_callback():
    from control_api.api.participants import new_participant_from

    new = new_participant_from(
        form(
            **PARTY,
            MachineDetection="DetectMessageEnd",
            MachineDetectionTimeout="10",
            MachineDetectionSpeechThreshold="3000",
            AmdStatusCallback="https://example.com/amd",
            AmdStatusCallbackMethod="GET",
        )
    )
    amd = new.call.machine_detection
    assert amd is not None and amd.asynchronous and amd.detect_message_end
    assert (amd.timeout_s, amd.speech_threshold_ms) == (10, 3000)
    assert (amd.callback, amd.callback_method, amd.misplaced_async) == (
        "https://example.com/amd",
        "GET",
        False,
    )
    # The Calls form of the callback does not apply to a participant: 21263 later.
    misplaced = new_participant_from(
        form(**PARTY, MachineDetection="Enable", AsyncAmdStatusCallback="https://e.example/")
    ).call.machine_detection
    assert misplaced is not None and misplaced.callback is None and misplaced.misplaced_async
    assert new_participant_from(form(**PARTY)).call.machine_detection is None
    digits = form(**PARTY, MachineDetection="Enable", SendDigits="12")
    assert new_participant_from(digits).call.machine_detection is None
    for bad in (
        {"MachineDetection": "Sometimes"},
        {"MachineDetection": "Enable", "AmdStatusCallback": "ftp://x"},
        {"MachineDetection": "Enable", "AmdStatusCallbackMethod": "PUT"},
    ):
        with pytest.raises(ApiError):
            new_participant_from(form(**PARTY, **bad))


class FakeCallLog:
    def __init__(self) -> None:
        self.problems: list[dict] = []

    def problem(self, **fields) -> None:
        self.problems.append(fields)


def test_warnings_21262_and_21263_are_notifications_of_the_call():
    from types import SimpleNamespace

    from control_api.call_log import WARNING

    call_log = FakeCallLog()
    context = SimpleNamespace(call_log=call_log)
    account, call = "AC" + "1" * 32, "CA" + "2" * 32
    machine_detection.warn(context, account, call, NewMachineDetection())  # synchronous
    machine_detection.warn(
        context, account, call, NewMachineDetection(asynchronous=True, callback="https://e/")
    )
    assert call_log.problems == []
    machine_detection.warn(
        context, account, call, NewMachineDetection(asynchronous=True, misplaced_async=True)
    )
    assert [(p["code"], p["level"], p["call_sid"]) for p in call_log.problems] == [
        (21263, WARNING, call),
        (21262, WARNING, call),
    ]
    assert "No AMD status callback URL provided" in call_log.problems[1]["text"]
    machine_detection.warn(SimpleNamespace(call_log=None), account, call, NewMachineDetection())


def test_async_amd_attributes_on_a_dialled_number_are_warning_21263():
    """A <Number>/<Sip> detects the asynchronous way with amdStatusCallback; Calls'
    asyncAmd attributes on it are taken for warning 21263, not schema warnings."""
    response = parse_voice_twiml(
        '<Response><Dial><Number machineDetection="Enable" asyncAmd="true"'
        ' asyncAmdStatusCallback="https://e.example/amd">+15551230000</Number>'
        '<Sip machineDetection="Enable">sip:a@example.com</Sip></Dial></Response>'
    )
    number, sip = response.verbs[0].nouns
    assert response.warnings == ()
    assert number.misplaced_async_amd == ("asyncAmd", "asyncAmdStatusCallback")
    amd = machine_detection.request_of(number)
    assert amd is not None and amd.misplaced_async and amd.callback is None
    plain = machine_detection.request_of(sip)
    assert plain is not None and not plain.misplaced_async
    call_log = FakeCallLog()
    from types import SimpleNamespace

    machine_detection.warn(
        SimpleNamespace(call_log=call_log), "AC" + "1" * 32, "CA" + "2" * 32, amd
    )
    assert [p["code"] for p in call_log.problems] == [21263, 21262]
    # Without machineDetection nothing detects: they are unknown attributes as any other.
    ignored = parse_voice_twiml(
        '<Response><Dial><Number asyncAmd="true">+15551230000</Number></Dial></Response>'
    )
    assert ignored.warnings == ("<Number>: unknown attribute 'asyncAmd' ignored",)
