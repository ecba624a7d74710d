"""loadtest/suite.py without load: its table of scenarios, a missing script,
a script that fails or writes a malformed report, the plot, the summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from loadtest import results, suite

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def sample_report(**changes) -> dict:
    data = results.report(
        "demo",
        target={"load": 100, "unit": "calls", "latency_p99_ms": 20.0},
        levels=[
            results.level(
                50, throughput=49.5, throughput_unit="calls/s", latency_p50_ms=1.0,
                latency_p99_ms=5.0, loss_pct=0.0, cpu_pct=40.0, meets=True,
            ),
            results.level(
                100, throughput=80.0, throughput_unit="calls/s", latency_p50_ms=3.0,
                latency_p99_ms=float("nan"), loss_pct=1.5, cpu_pct=None, meets=False,
            ),
        ],
        largest_passing=50,
    )  # fmt: skip
    data.update(changes)
    return data


def test_level_turns_nan_into_null_and_rounds() -> None:
    row = sample_report()["levels"][1]
    assert row["latency_p99_ms"] is None
    assert row["cpu_pct"] is None
    assert row["meets"] is False
    json.dumps(sample_report(), allow_nan=False)


def test_problems_accepts_a_whole_report() -> None:
    assert results.problems(sample_report()) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"scenario": None}, "scenario"),
        ({"target": {"unit": "calls"}}, "target"),
        ({"target": {"load": 5}}, "unit"),
        ({"levels": None}, "levels"),
        ({"largest_passing": "many"}, "largest_passing"),
    ],
)
def test_problems_names_what_is_wrong(change: dict, expected: str) -> None:
    found = results.problems(sample_report(**change))
    assert found and all(expected in p for p in found)


def test_problems_checks_each_level() -> None:
    data = sample_report()
    del data["levels"][0]["loss_pct"]
    data["levels"][1]["throughput"] = "fast"
    data["levels"][1]["meets"] = "yes"
    assert results.problems(data) == [
        "levels[0].loss_pct: missing",
        "levels[1].throughput: not a number or null",
        "levels[1].meets: not a boolean",
    ]
    assert results.problems([]) == ["not a JSON object"]


def test_every_row_names_an_existing_script_or_says_not_present(tmp_path: Path) -> None:
    names = [s.name for s in suite.SCENARIOS]
    assert len(names) == len(set(names))
    for scenario in suite.SCENARIOS:
        assert scenario.smoke, f"{scenario.name} has no smoke arguments"
    missing = suite.Scenario("turn", "no_such_script.py", (), ("--quick",), "none")
    outcome = suite.run_scenario(missing, smoke=True, out=tmp_path, python=sys.executable)
    assert outcome.status == "not present"
    assert outcome.data is None and outcome.met is None


def fake_script(tmp_path: Path, monkeypatch, body: str) -> suite.Scenario:
    """A scenario whose script is `body` in a stand-in loadtest/ directory."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "fake.py").write_text(body)
    monkeypatch.setattr(suite, "HERE", tmp_path / "bin")
    return suite.Scenario("fake", "fake.py", (), ("--quick",), "a demo", smoke_timeout=30)


def test_a_script_writing_its_json_is_ok_and_plotted(tmp_path: Path, monkeypatch) -> None:
    body = (
        "import json, sys\n"
        f"data = {json.dumps(sample_report())!r}\n"
        "path = sys.argv[sys.argv.index('--json') + 1]\n"
        "print('a table')\n"
        "open(path, 'w').write(data)\n"
    )
    scenario = fake_script(tmp_path, monkeypatch, body)
    out = tmp_path / "out"
    outcome = suite.run_scenario(scenario, smoke=True, out=out, python=sys.executable)
    assert outcome.status == "ok", outcome
    assert outcome.args[:1] == ["--quick"] and "--json" in outcome.args
    assert outcome.met is False  # 50 passed, the target is 100
    assert "a table" in outcome.log.read_text()
    png = suite.plot(outcome.data, out / "fake.png")
    assert png.read_bytes()[:8] == PNG_MAGIC
    table = suite.summary([outcome])
    assert table.splitlines()[2].split() == ["fake", "ok", "50", "100", "calls", "no"]


def test_a_malformed_report_is_bad_and_a_crash_is_failed(tmp_path: Path, monkeypatch) -> None:
    body = (
        "import sys\n"
        "path = sys.argv[sys.argv.index('--json') + 1]\n"
        "open(path, 'w').write('{\"scenario\": \"fake\"}')\n"
    )
    scenario = fake_script(tmp_path, monkeypatch, body)
    outcome = suite.run_scenario(scenario, smoke=True, out=tmp_path / "out", python=sys.executable)
    assert outcome.status == "bad report"
    assert any("levels" in p for p in outcome.problems)
    (tmp_path / "bin" / "fake.py").write_text("raise SystemExit(3)\n")
    outcome = suite.run_scenario(scenario, smoke=True, out=tmp_path / "out", python=sys.executable)
    assert outcome.status == "failed" and outcome.returncode == 3


def test_a_script_past_its_time_is_stopped(tmp_path: Path, monkeypatch) -> None:
    scenario = fake_script(tmp_path, monkeypatch, "import time\ntime.sleep(60)\n")
    scenario = suite.Scenario(**{**scenario.__dict__, "smoke_timeout": 1.0})
    outcome = suite.run_scenario(scenario, smoke=True, out=tmp_path / "out", python=sys.executable)
    assert outcome.status == "timed out"
    assert outcome.seconds < 30


def test_a_script_without_json_option_is_named_so(tmp_path: Path, monkeypatch) -> None:
    body = (
        "import argparse\n"
        "parser = argparse.ArgumentParser()\n"
        "parser.add_argument('--quick', action='store_true')\n"
        "parser.parse_args()\n"
    )
    scenario = fake_script(tmp_path, monkeypatch, body)
    outcome = suite.run_scenario(scenario, smoke=True, out=tmp_path / "out", python=sys.executable)
    assert outcome.status == "no --json option"


def test_write_turns_nan_anywhere_into_null(tmp_path: Path) -> None:
    data = sample_report(detail={"p99_ms": float("nan"), "ways": [1.0, float("inf")]})
    path = tmp_path / "r.json"
    results.write(path, data)
    written = json.loads(path.read_text())
    assert written["detail"] == {"p99_ms": None, "ways": [1.0, None]}
    assert results.problems(written) == []
