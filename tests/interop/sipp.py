"""Run SIPp as a subprocess and read back what it counted.

SIPp runs without a terminal (`-nostdin`, stdin from /dev/null), never in the
background (`-bg`), always under a global `-timeout` plus a subprocess timeout
a little longer, and writes its statistics, errors, screens and (for small
runs) every message into a per-run directory so an assertion can quote them.
"""

from __future__ import annotations

import contextlib
import csv
import os
import shlex
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .harness import LOOPBACK, free_port, free_port_block

SCENARIOS = Path(__file__).with_name("scenarios")

BUILTIN_SCENARIOS = {"uac", "uas", "regexp", "3pcc-A", "3pcc-B", "3pcc-C-A", "3pcc-C-B", "branchc"}

# SIPp's documented exit codes.
EXIT_MEANINGS = {
    0: "all calls successful",
    1: "at least one call failed",
    97: "exit on internal command (e.g. global timeout)",
    99: "normal exit without calls processed",
    255: "fatal error",
    254: "fatal error binding a socket",
}


def find_sipp() -> str | None:
    return shutil.which("sipp")


@dataclass
class SippResult:
    """What one SIPp run did: exit code, counters and the logs to quote."""

    cmd: list[str]
    returncode: int
    timed_out: bool
    elapsed: float
    stats: dict[str, str]
    stdout: str
    errors: str
    screen: str
    messages: str
    rundir: Path
    _notes: list[str] = field(default_factory=list)

    def counter(self, name: str) -> int:
        """A cumulative counter from the statistics file, e.g. `SuccessfulCall`."""
        raw = self.stats.get(f"{name}(C)", self.stats.get(name, "0"))
        try:
            return int(float(raw))
        except ValueError:
            return 0

    @property
    def successful(self) -> int:
        return self.counter("SuccessfulCall")

    @property
    def failed(self) -> int:
        return self.counter("FailedCall")

    @property
    def created(self) -> int:
        return self.counter("TotalCallCreated")

    @property
    def global_timeout(self) -> bool:
        """SIPp stopped on its `-timeout` with calls still running."""
        return self.returncode in (97, 255) and "timed out after" in self.errors[-4000:]

    def ok(self, calls: int) -> bool:
        return (
            self.returncode == 0
            and not self.timed_out
            and self.successful == calls
            and self.failed == 0
        )

    def failure_counters(self) -> dict[str, int]:
        """The non-zero `Failed*` cumulative counters."""
        out = {}
        for key in self.stats:
            if key.startswith("Failed") and key.endswith("(C)"):
                value = self.counter(key[:-3])
                if value:
                    out[key[:-3]] = value
        return out

    def describe(self, limit: int = 6000) -> str:
        """Everything a failing assertion should show, trimmed to `limit` chars per part."""

        def clip(text: str) -> str:
            text = text.strip()
            if len(text) <= limit:
                return text or "(empty)"
            return f"... [{len(text) - limit} chars cut] ...\n" + text[-limit:]

        meaning = EXIT_MEANINGS.get(self.returncode, "?")
        parts = [
            f"sipp command: {shlex.join(self.cmd)}",
            f"exit code {self.returncode} ({meaning}); timed out: {self.timed_out}; "
            f"{self.elapsed:.1f} s",
            f"created={self.created} successful={self.successful} failed={self.failed} "
            f"failures={self.failure_counters()}",
            f"run directory: {self.rundir}",
            *self._notes,
            "--- sipp error log ---\n" + clip(self.errors),
            "--- sipp final screen ---\n" + clip(self.screen),
        ]
        if self.messages:
            parts.append("--- sipp message trace ---\n" + clip(self.messages))
        return "\n".join(parts)

    def message_count(self, label: str) -> tuple[int, int] | None:
        """(messages, retransmissions) summed over the scenario screen lines
        whose first word is `label` (e.g. "487", "INVITE"); None if none."""
        found = None
        for line in self.screen.splitlines():
            words = line.split()
            if not words or words[0] != label:
                continue
            nums = [int(w) for w in words[1:] if w.isdigit()]
            if len(nums) >= 2:
                msgs, retrans = found or (0, 0)
                found = (msgs + nums[0], retrans + nums[1])
        return found


def _read(path: Path) -> str:
    try:
        return path.read_text("utf-8", "replace")
    except FileNotFoundError:
        return ""


def _last_stats_row(path: Path) -> dict[str, str]:
    text = _read(path)
    rows = list(csv.reader(text.splitlines(), delimiter=";"))
    if len(rows) < 2:
        return {}
    header, last = rows[0], rows[-1]
    return {k: v for k, v in zip(header, last, strict=False) if k}


def _last_screen(text: str) -> str:
    """The last scenario and statistics screens of a SIPp screen dump.

    Each screen starts with a rule line such as
    `---- Scenario Screen -------- [1-9]: Change Screen --`.
    """
    screens: dict[str, str] = {}
    name, lines = "", []
    for line in text.splitlines():
        if "Screen --" in line and "[1-9]" in line:
            if name:
                screens[name] = "\n".join(lines)
            name, lines = line.strip("- ").split(" Screen")[0], [line]
        else:
            lines.append(line)
    if name:
        screens[name] = "\n".join(lines)
    keep = [screens[k] for k in ("Scenario", "Statistics") if k in screens]
    return "\n".join(keep) if keep else text


def build_command(
    scenario: str | Path,
    target: str | None,
    *,
    rundir: Path,
    sipp: str = "sipp",
    transport: str = "u1",
    service: str | None = None,
    calls: int | None = 1,
    rate: float | None = None,
    rate_period_ms: int | None = None,
    limit: int | None = None,
    keys: dict[str, object] | None = None,
    pause_ms: int | None = None,
    lost: int | None = None,
    timeout: float = 30.0,
    trace_msg: bool = False,
    local_port: int | None = None,
    media_port: int | None = None,
    extra: tuple[str, ...] = (),
    cpu: int | None = None,
) -> list[str]:
    scen = str(scenario)
    if scen in BUILTIN_SCENARIOS:
        scen_args = ["-sn", scen]
    else:
        path = Path(scen)
        if not path.is_absolute() and not path.exists():
            path = SCENARIOS / path
        if not path.exists():
            raise FileNotFoundError(f"SIPp scenario {scenario} not found")
        scen_args = ["-sf", str(path)]
    local_port = local_port or free_port()
    media_port = media_port or free_port_block(4)
    cmd = [
        sipp,
        *scen_args,
        *([target] if target else []),
        "-t",
        transport,
        "-i",
        LOOPBACK,
        "-p",
        str(local_port),
        "-mi",
        LOOPBACK,
        "-mp",
        str(media_port),
        "-cp",
        str(free_port(avoid={local_port})),
        "-nostdin",
        "-timeout",
        f"{max(1, int(timeout))}s",
        "-timeout_error",
        "-trace_stat",
        "-stf",
        str(rundir / "stats.csv"),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(rundir / "errors.log"),
        "-trace_screen",
        "-screen_file",
        str(rundir / "screen.log"),
    ]
    if trace_msg:
        cmd += ["-trace_msg", "-message_file", str(rundir / "messages.log")]
    if service is not None:
        cmd += ["-s", service]
    if calls is not None:
        cmd += ["-m", str(calls)]
    if rate is not None:
        cmd += ["-r", f"{rate:g}"]
    if rate_period_ms is not None:
        cmd += ["-rp", f"{rate_period_ms}ms"]
    if limit is not None:
        cmd += ["-l", str(limit)]
    if pause_ms is not None:
        cmd += ["-d", str(pause_ms)]
    if lost is not None:
        cmd += ["-lost", str(lost)]
    for name, value in (keys or {}).items():
        cmd += ["-key", name, str(value)]
    cmd += list(extra)
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    return cmd


def _new_rundir(workdir: Path, scenario: str | Path) -> Path:
    stem = Path(str(scenario)).stem
    for i in range(1000):
        rundir = workdir / f"sipp-{stem}-{i}"
        try:
            rundir.mkdir(parents=True)
        except FileExistsError:
            continue
        return rundir
    raise RuntimeError(f"too many SIPp runs in {workdir}")


def collect(cmd: list[str], rundir: Path, rc: int, timed_out: bool, elapsed: float, stdout: str):
    screen_dump = _read(rundir / "screen.log")
    return SippResult(
        cmd=cmd,
        returncode=rc,
        timed_out=timed_out,
        elapsed=elapsed,
        stats=_last_stats_row(rundir / "stats.csv"),
        stdout=stdout,
        errors=_read(rundir / "errors.log"),
        screen=_last_screen(screen_dump) if screen_dump else _last_screen(stdout),
        messages=_read(rundir / "messages.log"),
        rundir=rundir,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a SIPp we started, by its PID: SIGUSR1 (soft exit), SIGTERM, SIGKILL."""
    if proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGUSR1, 2.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_sipp(
    scenario: str | Path,
    target: str | None,
    *,
    workdir: Path,
    timeout: float = 30.0,
    cwd: Path | None = None,
    **options,
) -> SippResult:
    """Run SIPp to completion and return its result.

    `scenario` is a built-in name (`uac`, `uas`, ...) or an XML file, absolute
    or relative to `tests/interop/scenarios`. `options` are those of
    `build_command` (transport, service, calls, rate, limit, keys, pause_ms,
    lost, trace_msg, ...). SIPp gets `-timeout timeout`; the subprocess is
    killed 15 s after that if it is still running.
    """
    rundir = _new_rundir(workdir, scenario)
    cmd = build_command(scenario, target, rundir=rundir, timeout=timeout, **options)
    start = time.monotonic()
    timed_out = False
    with open(rundir / "stdout.log", "wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=cwd or rundir,
        )
        try:
            rc = proc.wait(timeout + 15)
        except subprocess.TimeoutExpired:
            timed_out = True
            _stop(proc)
            rc = proc.returncode if proc.returncode is not None else -9
    elapsed = time.monotonic() - start
    stdout = _read(rundir / "stdout.log")
    result = collect(cmd, rundir, rc, timed_out, elapsed, stdout)
    if result.global_timeout:
        result._notes.append("SIPp stopped on its global -timeout: calls were still running")
    return result


class SippBackground:
    """A SIPp run in the background (a UAS, say), stopped by its own PID."""

    def __init__(
        self,
        scenario: str | Path,
        target: str | None,
        *,
        workdir: Path,
        files: dict[str, bytes] | None = None,
        **options,
    ):
        """``files`` are written to SIPp's working directory before it starts
        (it reads ``rtp_stream`` files when it loads the scenario)."""
        self.rundir = _new_rundir(workdir, scenario)
        for name, content in (files or {}).items():
            (self.rundir / name).write_bytes(content)
        self.cmd = build_command(scenario, target, rundir=self.rundir, **options)
        self._out = open(self.rundir / "stdout.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.DEVNULL,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            cwd=self.rundir,
        )
        self.start = time.monotonic()

    def wait(self, timeout: float) -> SippResult:
        """Wait for SIPp to finish by itself (stopping it after `timeout` s)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        return self.stop()

    def kill(self) -> None:
        """SIGKILL: SIPp vanishes without a word, like a peer that lost power."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> SippResult:
        _stop(self.proc)
        self._out.close()
        return collect(
            self.cmd,
            self.rundir,
            self.proc.returncode,
            False,
            time.monotonic() - self.start,
            _read(self.rundir / "stdout.log"),
        )
