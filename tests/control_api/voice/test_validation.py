"""Validation calls' own parts: the code, what the callee hears, how keys are read,
and the status callback's parameters."""

from __future__ import annotations

import asyncio

import pytest

from control_api.voice import validation
from control_api.voice.validation import (
    CODE_DIGITS,
    new_validation_code,
    prompt_text,
    validation_callback_params,
)


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
