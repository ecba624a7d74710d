"""loadtest/suite.py --smoke on its two shortest scenarios, against real SIPp.

Checks that the suite writes report.json, one JSON file and one PNG per
scenario, with the shape of loadtest/results.py and numbers in it, not that
the targets are met: what a CI machine manages varies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest import results
from tests.interop.sipp import find_sipp
from tests.peers import require

REPO = Path(__file__).resolve().parents[2]
SUBSET = ("sip_cps", "webhook_calls")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.loadtest_smoke
def test_smoke_suite_writes_report_and_plots(tmp_path: Path) -> None:
    require(find_sipp() is not None, "sipp is not installed (Debian package sip-tester)")
    require((os.cpu_count() or 1) >= 2, "the load suite pins the server and the load apart")
    out = tmp_path / "report"
    run = subprocess.run(
        [sys.executable, "loadtest/suite.py", "--smoke", "--only", ",".join(SUBSET),
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    report = json.loads((out / "report.json").read_text())
    assert report["mode"] == "smoke"
    assert set(report["scenarios"]) == set(SUBSET)
    for name in SUBSET:
        entry = report["scenarios"][name]
        assert entry["status"] == "ok", entry
        data = json.loads((out / "json" / f"{name}.json").read_text())
        assert data == entry["report"]
        assert results.problems(data) == []
        assert data["scenario"] == name
        assert data["levels"], f"{name}: no level measured"
        for row in data["levels"]:
            assert row["load"] > 0
            assert row["throughput"] is not None and row["throughput"] > 0
            assert row["latency_p99_ms"] is not None
            assert row["latency_p50_ms"] <= row["latency_p99_ms"]
            assert 0 <= row["loss_pct"] <= 100
            assert row["cpu_pct"] is not None and row["cpu_pct"] > 0
        passing = [row["load"] for row in data["levels"] if row["meets"]]
        assert data["largest_passing"] == (max(passing) if passing else None)
        assert entry["met"] is (
            data["largest_passing"] is not None
            and data["largest_passing"] >= data["target"]["load"]
        )
        plot = out / entry["plot"]
        assert plot.name == f"{name}.png"
        assert plot.read_bytes()[:8] == PNG_MAGIC
        assert (out / entry["log"]).read_text().strip()
    assert "largest passing" in run.stdout
    for name in SUBSET:
        assert any(line.startswith(name) for line in run.stdout.splitlines())
