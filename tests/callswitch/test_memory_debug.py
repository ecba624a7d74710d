from __future__ import annotations

import asyncio
import logging
import os
import signal
import tracemalloc
from pathlib import Path

import pytest

from callswitch.memory_debug import ENV, MemoryDebug, frames_from_env


@pytest.fixture
def not_tracing():
    assert not tracemalloc.is_tracing()
    yield
    tracemalloc.stop()


def test_frames_from_env(caplog: pytest.LogCaptureFixture) -> None:
    assert frames_from_env({}) is None
    assert frames_from_env({ENV: ""}) is None
    assert frames_from_env({ENV: "0"}) is None
    assert frames_from_env({ENV: " 6 "}) == 6
    assert frames_from_env({ENV: "64"}) == 64
    with caplog.at_level(logging.WARNING, logger="callswitch.memory"):
        assert frames_from_env({ENV: "65"}) is None
        assert frames_from_env({ENV: "-1"}) is None
        assert frames_from_env({ENV: "yes"}) is None
    assert len(caplog.records) == 3


class Kept:
    pass


def test_first_signal_starts_tracing_later_ones_write_what_grew(
    tmp_path: Path, not_tracing: None
) -> None:
    memory = MemoryDebug(4, tmp_path / "tracemalloc")
    before_start = [Kept() for _ in range(100)]  # not traced: allocated before the start
    memory.signalled()
    assert tracemalloc.is_tracing()
    assert not (tmp_path / "tracemalloc").exists()
    kept = [Kept() for _ in range(3000)]
    memory.signalled()
    first = (tmp_path / "tracemalloc" / "snapshot-01.txt").read_text()
    assert first.startswith("snapshot 1: traced ")
    assert "blocks allocated by Python" in first.splitlines()[1]
    assert "== allocated since tracing started, still alive" in first
    assert "test_memory_debug.py:" in first.split("-- allocated")[0]  # `kept`, by line
    assert f"{Kept.__module__}.Kept" in first  # counted by type
    kept += [Kept() for _ in range(2000)]
    memory.signalled()
    second = (tmp_path / "tracemalloc" / "snapshot-02.txt").read_text()
    grew = second.split("== since the snapshot before")[1]
    assert "test_memory_debug.py:" in grew
    changed = second.split("== types whose count changed most")[1]
    assert f"+2000  {Kept.__module__}.Kept" in changed
    assert len(before_start) + len(kept) == 5100


def test_sigusr2_on_the_loop(tmp_path: Path, not_tracing: None) -> None:
    out = tmp_path / "tracemalloc"

    async def run() -> None:
        loop = asyncio.get_running_loop()
        memory = MemoryDebug(1, out)
        memory.install(loop)
        try:
            os.kill(os.getpid(), signal.SIGUSR2)
            for _ in range(200):
                if tracemalloc.is_tracing():
                    break
                await asyncio.sleep(0.01)
            assert tracemalloc.is_tracing()
            os.kill(os.getpid(), signal.SIGUSR2)
            for _ in range(500):
                if (out / "snapshot-01.txt").exists():
                    break
                await asyncio.sleep(0.01)
        finally:
            memory.uninstall(loop)
        assert (out / "snapshot-01.txt").exists()
        assert not tracemalloc.is_tracing()

    asyncio.run(run())
