"""A real rtpengine (Debian ``rtpengine-daemon``) for interop tests.

Started in userspace on loopback (``--table=-1``, no kernel module) with
``--config-file=none`` (Debian's own config asks for the kernel table), free ng
and CLI ports, a port range of its own, and its DTMF log both sent to a free port
(``--dtmf-log-dest``; a server started with ``--rtpengine-dtmf-log`` at
:attr:`RtpEngineProcess.dtmf_log` hears it) and to the clients of its ng TCP
port, the ng port's number (``--listen-tcp-ng``, ``--dtmf-log-ng-tcp``: a server
with ``--rtpengine-dtmf-log ng-tcp``); stopped by its PID only. Its ng port
is spoken to with callswitch's own client (media/rtpengine), so a test can ask
it which calls it holds (``list``).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from media.rtpengine.client import RtpEngines
from media.rtpengine.selection import EngineAddress

from .harness import LOOPBACK, free_port, free_rtp_range

__all__ = ["RtpEngineProcess", "find_rtpengine"]

READY_S = 10.0


def find_rtpengine() -> str | None:
    return shutil.which("rtpengine") or (
        "/usr/bin/rtpengine" if Path("/usr/bin/rtpengine").exists() else None
    )


@dataclass
class RtpEngineProcess:
    process: subprocess.Popen[bytes]
    ng_port: int
    ports: tuple[int, int]
    log_path: Path
    dtmf_log_port: int = 0

    @property
    def dtmf_log(self) -> str:
        """The ``--rtpengine-dtmf-log`` value that hears its DTMF log."""
        return f"{LOOPBACK}:{self.dtmf_log_port}"

    @property
    def spec(self) -> str:
        """The ``--rtpengine`` value that reaches it."""
        return f"{LOOPBACK}:{self.ng_port}"

    @classmethod
    def start(
        cls,
        binary: str,
        workdir: Path,
        config: tuple[Path, str] | None = None,
        *,
        port_count: int = 200,
        cpu: int | None = None,
    ) -> RtpEngineProcess:
        """``config``: a config file and its section to run (deploy/rtpengine/), its
        addresses and ports overridden by the loopback ones; none: userspace defaults.
        ``port_count`` media ports of its own; ``cpu``: pinned to that CPU (taskset)."""
        workdir.mkdir(parents=True, exist_ok=True)
        ng_port, cli_port, dtmf_log_port = free_port(), free_port(), free_port()
        low, high = free_rtp_range(port_count)
        log_path = workdir / "rtpengine.log"
        settings = ["--config-file=none", "--table=-1"]
        if config is not None:
            settings = [f"--config-file={config[0]}", f"--config-section={config[1]}"]
        pinned = [] if cpu is None else ["taskset", "-c", str(cpu)]
        args = [
            *pinned,
            binary,
            *settings,
            f"--interface={LOOPBACK}",
            f"--listen-ng={LOOPBACK}:{ng_port}",
            f"--listen-cli={LOOPBACK}:{cli_port}",
            f"--dtmf-log-dest={LOOPBACK}:{dtmf_log_port}",
            f"--listen-tcp-ng={LOOPBACK}:{ng_port}",
            "--dtmf-log-ng-tcp",
            f"--port-min={low}",
            f"--port-max={high}",
            "--num-threads=1",
            "--foreground",
            "--log-stderr",
        ]
        with log_path.open("wb") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        engine = cls(process, ng_port, (low, high), log_path, dtmf_log_port)
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"rtpengine exited: {log_path.read_text()[-2000:]}")
            if engine.ng("ping") == "pong":
                return engine
            time.sleep(0.1)
        engine.stop()
        raise RuntimeError(f"rtpengine did not answer ping: {log_path.read_text()[-2000:]}")

    def ng(self, command: str) -> object:
        """``ping`` -> its result; ``list`` -> the Call-IDs it holds."""

        async def ask() -> object:
            engines = RtpEngines([EngineAddress(LOOPBACK, self.ng_port)], attempts=2)
            instance = engines.set.instances[0]
            try:
                if command == "list":
                    return await engines.list(instance)
                return (await engines.send(instance, {"command": command})).get("result")
            except Exception:
                return None
            finally:
                engines.close()

        return asyncio.run(ask())

    def calls(self) -> list[str] | None:
        result = self.ng("list")
        return result if isinstance(result, list) else None

    def wait_calls(self, predicate, timeout: float) -> list[str] | None:
        """Poll ``list`` until ``predicate(calls)`` holds; the last answer."""
        deadline = time.monotonic() + timeout
        calls = self.calls()
        while not predicate(calls) and time.monotonic() < deadline:
            time.sleep(0.2)
            calls = self.calls()
        return calls

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
        with contextlib.suppress(Exception):
            self.process.wait(1)
