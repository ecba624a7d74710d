"""The load suite: every scenario at its target, one JSON report, one PNG plot each.

Each scenario is a row of SCENARIOS: the script under loadtest/, the arguments
of the full run (its target levels) and of the smoke run (a few seconds), and
what its target is. The suite runs the scripts one after another, each with
`--json` into DIR/json/NAME.json and its printed table into DIR/logs/NAME.log,
checks each file has the shape of loadtest/results.py, gathers them into
DIR/report.json, draws DIR/NAME.png (throughput and p50/p99 latency against
load, the target marked) and prints a summary table. A row whose script is not
there is reported as "not present"; a script that fails, times out or writes
no report is reported as such and the suite goes on.

    python loadtest/suite.py                  # full: every scenario at its target levels
    python loadtest/suite.py --smoke          # a few seconds each, about 3 minutes in all
    python loadtest/suite.py --soak           # full, then loadtest/soak.py (10 minutes)
    python loadtest/suite.py --smoke --only sip_cps,webhook_calls --out /tmp/report

Exit status: 0 when every present scenario wrote a whole report (targets met or
not: the summary says which), 1 otherwise. Stops only the processes it started.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from loadtest import results  # noqa: E402


@dataclass(frozen=True)
class Scenario:
    """One row of the suite: how to run a script at its target and briefly."""

    name: str
    script: str  # file name under loadtest/
    full: tuple[str, ...]  # arguments of the full run (its target levels)
    smoke: tuple[str, ...]  # arguments of the smoke run (seconds, not minutes)
    target: str  # what the script's target is, for the summary
    full_timeout: float = 1800.0  # seconds before the suite stops the script
    smoke_timeout: float = 180.0


SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "sip_cps",
        "sip_cps.py",
        full=(),
        smoke=("--quick", "--skip-uas"),
        target=">= 500 calls/s on one core, zero failed calls",
        full_timeout=600.0,
        smoke_timeout=90.0,
    ),
    Scenario(
        "webhook_calls",
        "webhook_calls.py",
        full=(),
        smoke=("--levels", "10", "--seconds", "3"),
        target="p99 INVITE to first RTP < 150 ms at 100 concurrent calls",
        full_timeout=900.0,
        smoke_timeout=90.0,
    ),
    Scenario(
        "bridge",
        "bridge.py",
        full=(),
        smoke=("--levels", "20", "--seconds", "3", "--probes", "2"),
        target="500 bridged calls on one core, loss < 0.5%, p99 < 10 ms",
    ),
    Scenario(
        "streams",
        "streams.py",
        full=(),
        smoke=("--levels", "20", "--seconds", "3", "--probes", "2"),
        target="500 Media Streams on one core, p99 RTP->WS < 20 ms, no loss",
    ),
    Scenario(
        "turn",
        "turn.py",
        full=(),
        smoke=("--quick",),
        target="CPU per relayed packet <= 2x coturn's, zero loss",
        smoke_timeout=240.0,
    ),
    Scenario(
        "webrtc_pcmu",
        "webrtc.py",
        full=("--opus",),  # no Opus levels: that codec is the next row
        smoke=("--quick", "--opus"),
        target="100 PCMU browser calls on one core, loss < 1%",
        smoke_timeout=240.0,
    ),
    Scenario(
        "webrtc_opus",
        "webrtc.py",
        full=("--pcmu",),
        smoke=("--quick", "--pcmu"),
        target="40 Opus browser calls on one core, loss < 1%",
        smoke_timeout=240.0,
    ),
    Scenario(
        "sms",
        "sms.py",
        full=(),
        smoke=("--messages", "500", "--drain", "30"),
        target=">= 1,000 messages/s accepted, every one delivered",
        smoke_timeout=180.0,
    ),
    Scenario(
        "abuse",
        "abuse.py",
        full=(),
        smoke=("--quick",),
        target="100 legitimate bridged calls under floods: loss < 0.5%, p99 < 20 ms, none refused",
        full_timeout=600.0,
        smoke_timeout=240.0,
    ),
)


@dataclass
class Outcome:
    """What running one scenario gave."""

    scenario: Scenario
    status: str  # ok, not present, failed, timed out, no report, bad report, no --json option
    args: list[str]
    returncode: int | None = None
    seconds: float | None = None
    log: Path | None = None
    data: dict[str, Any] | None = None
    problems: tuple[str, ...] = ()
    plot: Path | None = None

    @property
    def target_load(self) -> float | None:
        return None if self.data is None else self.data["target"].get("load")

    @property
    def met(self) -> bool | None:
        if self.data is None:
            return None
        best = self.data.get("largest_passing")
        return best is not None and best >= self.target_load

    def as_json(self, out: Path) -> dict[str, Any]:
        def rel(path: Path | None) -> str | None:
            return None if path is None else os.path.relpath(path, out)

        return {
            "status": self.status,
            "script": f"loadtest/{self.scenario.script}",
            "args": self.args,
            "target_text": self.scenario.target,
            "returncode": self.returncode,
            "seconds": None if self.seconds is None else round(self.seconds, 1),
            "log": rel(self.log),
            "plot": rel(self.plot),
            "problems": list(self.problems),
            "met": self.met,
            "report": self.data,
        }


def stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group the script leads (it and its SIPp and
    servers, which its own `finally` blocks also stop), then SIGKILL."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_scenario(scenario: Scenario, *, smoke: bool, out: Path, python: str) -> Outcome:
    script = HERE / scenario.script
    args = list(scenario.smoke if smoke else scenario.full)
    if not script.exists():
        return Outcome(scenario, "not present", args)
    json_path = out / "json" / f"{scenario.name}.json"
    log_path = out / "logs" / f"{scenario.name}.log"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.unlink(missing_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    args += ["--json", str(json_path)]
    timeout = scenario.smoke_timeout if smoke else scenario.full_timeout
    print(f"== {scenario.name}: loadtest/{scenario.script} {' '.join(args)}", flush=True)
    started = time.monotonic()
    timed_out = False
    with open(log_path, "wb") as log:
        # A session of its own, so a script that overruns is stopped with its children.
        proc = subprocess.Popen(
            [python, str(script), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        reader = _tee(proc, log)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_group(proc)
        reader.join(10)
    outcome = Outcome(
        scenario,
        "failed",
        args,
        returncode=proc.returncode,
        seconds=time.monotonic() - started,
        log=log_path,
    )
    if timed_out:
        outcome.status = "timed out"
    if json_path.exists():
        try:
            outcome.data = json.loads(json_path.read_text())
        except ValueError as exc:
            outcome.problems = (f"not JSON: {exc}",)
        else:
            outcome.problems = tuple(results.problems(outcome.data))
        if outcome.problems:
            outcome.status, outcome.data = "bad report", None
        elif not timed_out and proc.returncode in (0, 1):
            outcome.status = "ok"  # sip_cps exits 1 when no rate passed: a figure, not a fault
    elif not timed_out and proc.returncode == 0:
        outcome.status = "no report"
    elif "unrecognized arguments: --json" in log_path.read_text(errors="replace"):
        outcome.status = "no --json option"
    return outcome


def _tee(proc: subprocess.Popen, log) -> threading.Thread:
    """Copy the script's output to the log and, line by line, to our stdout."""

    def pump() -> None:
        for line in proc.stdout:
            log.write(line)
            log.flush()
            sys.stdout.buffer.write(b"   | " + line)
            sys.stdout.flush()

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return thread


def plot(data: dict[str, Any], path: Path) -> Path:
    """Throughput and p50/p99 latency against load; the target load (and latency
    limit, if any) marked; levels that missed the target drawn hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = sorted(data["levels"], key=lambda row: row["load"])
    target = data["target"]
    unit = target.get("unit", "load")
    loads = [row["load"] for row in levels]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 7), sharex=True)
    best = data.get("largest_passing")
    fig.suptitle(f"{data['scenario']}: largest passing {'none' if best is None else best} {unit}")

    def series(ax, key: str, label: str, color: str) -> None:
        points = [(row["load"], row[key], row["meets"]) for row in levels if row[key] is not None]
        if not points:
            return
        ax.plot([p[0] for p in points], [p[1] for p in points], "-", color=color, label=label)
        for meets in (True, False):
            chosen = [p for p in points if p[2] is meets]
            if chosen:
                ax.plot(
                    [p[0] for p in chosen],
                    [p[1] for p in chosen],
                    "o",
                    color=color,
                    markerfacecolor=color if meets else "white",
                )

    series(top, "throughput", levels[0]["throughput_unit"] if levels else "throughput", "C0")
    top.set_ylabel(levels[0]["throughput_unit"] if levels else "throughput")
    series(bottom, "latency_p50_ms", "p50", "C1")
    series(bottom, "latency_p99_ms", "p99", "C3")
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel(f"load ({unit}); hollow markers: level missed the target")
    for ax in (top, bottom):
        ax.set_ylim(bottom=0)
        ax.axvline(target["load"], color="grey", linestyle="--", label=f"target {target['load']}")
        ax.grid(alpha=0.3)
    limit = target.get("latency_p99_ms")
    if limit is not None:
        bottom.axhline(limit, color="C3", linestyle=":", label=f"p99 limit {limit:g} ms")
    if loads:
        right = max(max(loads), target["load"]) * 1.05
        top.set_xlim(0, right)
    top.legend(loc="best", fontsize="small")
    bottom.legend(loc="best", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def summary(outcomes: list[Outcome]) -> str:
    rows = [("scenario", "status", "largest passing", "target", "met")]
    for o in outcomes:
        best = target = met = "-"
        if o.data is not None:
            unit = o.data["target"].get("unit", "")
            passing = o.data.get("largest_passing")
            best = "none" if passing is None else f"{passing:g}"
            target = f"{o.target_load:g} {unit}"
            met = "yes" if o.met else "no"
        rows.append((o.scenario.name, o.status, best, target, met))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="each scenario briefly")
    parser.add_argument(
        "--out", type=Path, default=HERE / "report", help="report directory (%(default)s)"
    )
    parser.add_argument("--only", default=None, help="comma-separated scenario names")
    parser.add_argument("--soak", action="store_true", help="then run loadtest/soak.py")
    parser.add_argument(
        "--soak-seconds", type=float, default=600.0, help="soak duration (%(default)s s)"
    )
    parser.add_argument(
        "--soak-streams", type=int, default=None, help="soak calls up at once (soak.py's default)"
    )
    parser.add_argument("--list", action="store_true", help="print the scenarios and stop")
    args = parser.parse_args(argv)
    if args.soak and args.smoke:
        parser.error("the soak is not part of the smoke run")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    chosen = list(SCENARIOS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(names) - {s.name for s in SCENARIOS})
        if unknown:
            print(f"unknown scenarios: {', '.join(unknown)}", file=sys.stderr)
            return 2
        chosen = [s for s in SCENARIOS if s.name in names]
    if args.list:
        for s in chosen:
            present = "" if (HERE / s.script).exists() else "  (not present)"
            print(f"{s.name:15s} loadtest/{s.script}: {s.target}{present}")
        return 0
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    mode = "smoke" if args.smoke else "full"
    began = datetime.now(UTC)
    outcomes = []
    for scenario in chosen:
        outcome = run_scenario(scenario, smoke=args.smoke, out=out, python=sys.executable)
        if outcome.data is not None:
            try:
                outcome.plot = plot(outcome.data, out / f"{scenario.name}.png")
            except Exception as exc:  # a plot that fails still leaves the figures
                outcome.problems = (*outcome.problems, f"plot: {type(exc).__name__}: {exc}")
        outcomes.append(outcome)
    soak = None
    if args.soak:
        soak = run_soak(out, args.soak_seconds, args.soak_streams)
    report = {
        "mode": mode,
        "started": began.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "scenarios": {o.scenario.name: o.as_json(out) for o in outcomes},
    }
    if soak is not None:
        report["soak"] = soak
    (out / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n")
    print()
    print(summary(outcomes))
    for o in outcomes:
        for problem in o.problems:
            print(f"  {o.scenario.name}: {problem}")
    if soak is not None:
        print(f"soak: {soak.get('status')}; {soak.get('verdict', '')}")
    print(f"report: {out / 'report.json'}")
    whole = all(o.status in ("ok", "not present", "ran (no JSON)") for o in outcomes)
    soak_ok = soak is None or (soak.get("status") == "ok" and not soak.get("growth"))
    return 0 if whole and soak_ok else 1


def run_soak(out: Path, seconds: float, streams: int | None = None) -> dict[str, Any]:
    """loadtest/soak.py with --json; its report goes under "soak"."""
    path = out / "json" / "soak.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    cmd = [sys.executable, str(HERE / "soak.py"), "--seconds", str(seconds), "--json", str(path)]
    if streams is not None:
        cmd += ["--streams", str(streams)]
    print(f"== soak: {' '.join(cmd[1:])}", flush=True)
    log_path = out / "logs" / "soak.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
        reader = _tee(proc, log)
        try:
            proc.wait(seconds + 600)
        except subprocess.TimeoutExpired:
            stop_group(proc)
        reader.join(10)
    if not path.exists():
        return {"status": "no report", "returncode": proc.returncode, "log": "logs/soak.log"}
    data = json.loads(path.read_text())
    # soak.py exits 0 (no growth) or 1 (growth beyond noise) once it has measured
    data["status"] = "ok" if proc.returncode in (0, 1) else "failed"
    data["log"] = "logs/soak.log"
    return data


if __name__ == "__main__":
    sys.exit(main())
