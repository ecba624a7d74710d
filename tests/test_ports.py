"""The test ports helper: pytest-xdist workers probe disjoint port ranges."""

from __future__ import annotations

import pytest

from tests import ports


def _share(monkeypatch: pytest.MonkeyPatch, worker: str, count: int) -> tuple[int, int]:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(count))
    return ports._worker_share(10000, 20000)


def test_workers_take_disjoint_slices_of_a_range(monkeypatch: pytest.MonkeyPatch) -> None:
    slices = [_share(monkeypatch, f"gw{i}", 4) for i in range(4)]
    assert slices == [(10000, 12500), (12500, 15000), (15000, 17500), (17500, 20000)]


def test_outside_xdist_the_whole_range(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    assert ports._worker_share(10000, 20000) == (10000, 20000)


def test_a_worker_picks_its_ports_inside_its_slice(monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = _share(monkeypatch, "gw2", 4)
    assert all(low <= ports.free_port() < high for _ in range(20))
    base = ports.free_port_block(4)
    assert 20000 + 2 * 3000 <= base < 20000 + 3 * 3000
