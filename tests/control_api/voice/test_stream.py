"""A call's forks (``<Start><Stream>``) and the runner that owns them."""

from __future__ import annotations

import gc
import weakref

import pytest

from control_api.voice.stream import CallForks


class Runner:
    def __init__(self) -> None:
        self.forks = CallForks(self)


def test_forks_do_not_keep_their_runner_alive():
    """The runner owns its forks; a back reference would make a cycle per call."""
    gc.disable()
    try:
        runner = Runner()
        forks = runner.forks
        assert forks.runner is runner
        gone = weakref.ref(runner)
        del runner
        assert gone() is None
        with pytest.raises(RuntimeError):
            forks.runner  # noqa: B018
    finally:
        gc.enable()
