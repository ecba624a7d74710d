"""Tests that need a peer program (SIPp, baresip, openssl…) skip without it,
except under CI=true, where a missing install must fail rather than hide a
broken feature."""

from __future__ import annotations

import os

import pytest

__all__ = ["in_ci", "require"]


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def require(condition: bool, reason: str) -> None:
    """Skip when `condition` is false, or fail under CI=true."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: this test must run, not skip)", pytrace=False)
    pytest.skip(reason)
