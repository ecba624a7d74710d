"""Validation calls: the code, what the callee hears, how keys are read, the status
callback's parameters; and the call itself with the REST calls' fakes (no sockets):
verified on a later try, failed after three, failed unanswered."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from control_api.voice import validation
from control_api.voice.runtime import VoiceRuntime
from control_api.voice.validation import (
    CODE_DIGITS,
    NewValidation,
    ValidationCalls,
    new_validation_code,
    prompt_text,
    validation_callback_params,
)
from tests.control_api.voice.test_outbound import FakeContext, FakeDialer, Phone, settle


def test_a_code_is_six_random_digits():
    codes = {new_validation_code() for _ in range(50)}
    assert all(len(code) == CODE_DIGITS and code.isdigit() for code in codes)
    assert len(codes) > 40


def test_the_prompt_says_the_code_digit_by_digit():
    assert "1, 2, 3, 4, 5, 6" in prompt_text("123456")


def test_success_names_the_caller_id_and_failure_does_not():
    success = dict(validation_callback_params("AC1", "CA1", "+14155550100", "PN1"))
    assert success["VerificationStatus"] == "success"
    assert success["OutgoingCallerIdSid"] == "PN1"
    assert (success["AccountSid"], success["CallSid"], success["To"]) == (
        "AC1",
        "CA1",
        "+14155550100",
    )
    failed = dict(validation_callback_params("AC1", "CA1", "+14155550100", None))
    assert failed["VerificationStatus"] == "failed" and "OutgoingCallerIdSid" not in failed


@pytest.mark.parametrize(
    ("keys", "read"),
    [("1234567", "123456"), ("12#45", "12"), ("12", "12")],
)
def test_keys_are_read_until_six_a_hash_or_a_pause(monkeypatch, keys, read):
    monkeypatch.setattr(validation, "DIGIT_TIMEOUT_S", 0.05)

    async def main() -> str:
        queue: asyncio.Queue[str] = asyncio.Queue()
        for key in keys:
            queue.put_nowait(key)
        return await validation._read(queue)

    assert asyncio.run(main()) == read


# -- the validation call, with the REST calls' fakes (no sockets) ---------------------


class Dialer(FakeDialer):
    async def resolve(self, account_sid, to, **login):
        return [SimpleNamespace(trunk=None, label=to) for _ in self.phones]


class CallerIds:
    def __init__(self) -> None:
        self.verified_numbers: list[tuple[str, str, str | None]] = []

    async def verified(self, account_sid: str, number: str, name: str | None = None):
        self.verified_numbers.append((account_sid, number, name))
        return SimpleNamespace(sid="PN" + "0" * 32)


def _context(tmp_path, phone: Phone) -> FakeContext:
    context = FakeContext([phone], "unused", tmp_path)
    context.dialer = Dialer([phone])
    context.store.caller_ids = CallerIds()

    async def synthesize(text, voice, language):
        return text  # what play() gets: the text itself

    context.synthesize = synthesize  # type: ignore[method-assign]
    return context


def _callee(phone: Phone, tries: list[str], said: list[str]):
    """A fake play: records what is said; after each prompt the callee keys a try."""

    async def play(leg, samples, *, loop=1):
        said.append(samples)
        if samples.startswith("This is a caller ID validation call") and tries:
            for key in tries.pop(0):
                phone.leg.on_dtmf(key)

    return play


def _validation(code: str = "246810") -> NewValidation:
    return NewValidation(
        phone_number="+15550001111",
        code=code,
        friendly_name="desk",
        extension="9",
        status_callback="http://app/verified",
    )


async def _run(monkeypatch, tmp_path, phone: Phone, tries: list[str]):
    said: list[str] = []
    context = _context(tmp_path, phone)
    monkeypatch.setattr(validation, "play", _callee(phone, tries, said))
    monkeypatch.setattr(validation, "DIGIT_TIMEOUT_S", 0.05)
    call_sid = await ValidationCalls(VoiceRuntime(context)).start("AC1", _validation())
    await settle(context)
    return context, call_sid, said


async def test_the_code_keyed_on_the_second_try_verifies_the_number(monkeypatch, tmp_path):
    phone = Phone("", answers=True)
    context, call_sid, said = await _run(monkeypatch, tmp_path, phone, ["111111", "246810#"])
    [record] = context.store.calls
    assert (record.sid, record.to, record.direction) == (call_sid, "+15550001111", "outbound-api")
    assert context.dialer.placed[0]["sid"] == call_sid
    assert phone.leg.digits == ["9"]  # the Extension, before the prompt
    assert said[:2] == [prompt_text("246810")] * 2
    assert said[2].startswith("Thank you")
    assert context.store.caller_ids.verified_numbers == [("AC1", "+15550001111", "desk")]
    [callback] = context.outbox.posted
    assert callback["url"] == "http://app/verified"
    params = dict(callback["params"])
    assert params["VerificationStatus"] == "success" and params["CallSid"] == call_sid
    assert phone.ended.is_set() and context.store.statuses()[-1] == "completed"


async def test_three_wrong_tries_fail_and_verify_nothing(monkeypatch, tmp_path):
    phone = Phone("", answers=True)
    context, _, said = await _run(monkeypatch, tmp_path, phone, ["1", "22", "333333"])
    assert len(said) == 3 and context.store.caller_ids.verified_numbers == []
    [callback] = context.outbox.posted
    assert dict(callback["params"])["VerificationStatus"] == "failed"


async def test_an_unanswered_validation_call_fails(monkeypatch, tmp_path):
    phone = Phone("", answers=False, failure="busy")
    context, _, said = await _run(monkeypatch, tmp_path, phone, [])
    assert said == [] and context.store.caller_ids.verified_numbers == []
    assert context.store.statuses()[-1] == "busy"
    assert dict(context.outbox.posted[0]["params"])["VerificationStatus"] == "failed"
