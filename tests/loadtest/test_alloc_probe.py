"""loadtest/alloc_probe.py: its report of the allocators, run in this process."""

from __future__ import annotations

import sys

import pytest

from loadtest import alloc_probe


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self and glibc")
def test_probes_name_the_arenas_the_pools_and_what_gc_and_trim_give_back(tmp_path) -> None:
    probe = alloc_probe.Probe(tmp_path)
    probe()  # the baseline
    kept = [bytes(100) + str(i).encode() for i in range(20_000)]  # small objects in new pools
    probe()
    probe()
    first, second, third = ((tmp_path / f"probe-0{n}.txt").read_text() for n in (1, 2, 3))
    assert "# arenas allocated current" in first and "(the baseline)" in first
    assert "not at the baseline" in second
    census = next(line for line in second.splitlines() if "not at the baseline" in line)
    assert int(census.split(" not at the baseline, holding ")[1].split()[0]) >= len(kept) // 2
    assert "builtins.bytes" in second
    assert "gc.collect()" not in second  # only from the third probe on
    assert "after gc.collect()" in third and "after malloc_trim(0)" in third
    assert len(kept) == 20_000


def test_the_summary_keeps_the_arena_and_block_lines() -> None:
    text = (
        "Small block threshold = 512, in 32 size classes.\n"
        "# arenas allocated current         =                   73\n"
        "# bytes in allocated blocks        =           67,500,528\n"
        "# bytes in available blocks        =            6,316,928\n"
        "88 unused pools * 16384 bytes      =            1,441,792\n"
        "# bytes lost to pool headers       =              217,776\n"
    )
    assert alloc_probe.pymalloc_summary(text) == [
        "# arenas allocated current = 73",
        "# bytes in allocated blocks = 67,500,528",
        "# bytes in available blocks = 6,316,928",
        "88 unused pools * 16384 bytes = 1,441,792",
    ]
