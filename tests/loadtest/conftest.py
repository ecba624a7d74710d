"""The load suite's own tests: `pytest -m loadtest_smoke` finds the one that runs it."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "loadtest_smoke: runs loadtest/suite.py --smoke on a short subset"
    )
