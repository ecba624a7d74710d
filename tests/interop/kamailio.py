"""Kamailio in front of callswitch nodes, from the configuration in deploy/kamailio/.

``render`` rewrites only the ``#!substdef`` deployment lines at the top of
deploy/kamailio/kamailio.cfg (address, port, dispatcher list, probe interval, node
reply timeout), so the rest of the file is exactly what is shipped. ``Kamailio.start``
runs it in the foreground (``-DD -E``: no daemon, logs to stderr, read by a thread)
and ``stop`` ends it by its PID.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .harness import LOOPBACK, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kamailio"
CONFIG = DEPLOY / "kamailio.cfg"
DISPATCHER_LIST = DEPLOY / "dispatcher.list"
START_TIMEOUT_S = 15.0


def find_kamailio() -> str | None:
    return shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None
    )


def render(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``#!substdef "!NAME!old!g"`` line given ``values[NAME]``."""
    out = template
    for name, value in values.items():
        pattern = re.compile(rf'^#!substdef "!{re.escape(name)}![^!]*!g"$', re.M)
        out, count = pattern.subn(f'#!substdef "!{name}!{value}!g"', out)
        if count != 1:
            raise ValueError(f"{CONFIG} has no #!substdef line for {name}")
    return out


def dispatcher_list(template: str, nodes: list[tuple[str, int]]) -> str:
    """The shipped list's comment lines, and set 1 holding ``nodes``."""
    comments = [line for line in template.splitlines() if line.startswith("#")]
    return "\n".join([*comments, *(f"1 sip:{host}:{port}" for host, port in nodes)]) + "\n"


def _udp_taken(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


@dataclass
class Kamailio:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    _lines: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def start(
        cls,
        binary: str,
        workdir: Path,
        nodes: list[tuple[str, int]],
        *,
        probe_interval: int = 1,
        node_reply_timeout_ms: int = 1000,
    ) -> Kamailio:
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        listing = workdir / "dispatcher.list"
        listing.write_text(dispatcher_list(DISPATCHER_LIST.read_text(), nodes))
        config = workdir / "kamailio.cfg"
        config.write_text(
            render(
                CONFIG.read_text(),
                {
                    "PROXY_ADDR": LOOPBACK,
                    "PROXY_PORT": str(port),
                    "DISPATCHER_LIST": str(listing),
                    "PROBE_INTERVAL": str(probe_interval),
                    "NODE_REPLY_TIMEOUT": str(node_reply_timeout_ms),
                },
            )
        )
        return cls.run(binary, workdir, config, port)

    @classmethod
    def run(cls, binary: str, workdir: Path, config: Path, port: int) -> Kamailio:
        """Check ``config`` (``kamailio -c``), run it, and wait for it to listen on
        ``port`` (UDP, on loopback)."""
        check = subprocess.run(
            [binary, "-c", "-f", str(config)], capture_output=True, text=True, timeout=30
        )
        if check.returncode != 0:
            raise AssertionError(f"kamailio -c refused {config}:\n{check.stderr[-4000:]}")
        proc = subprocess.Popen(
            [binary, "-DD", "-E", "-f", str(config), "-m", "64", "-M", "8", "-w", str(workdir)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=workdir,
            start_new_session=True,  # its workers in a group of its own: see stop()
        )
        proxy = cls(proc, port, workdir)
        threading.Thread(target=proxy._read, daemon=True).start()
        proxy._wait_listening()
        return proxy

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with open(self.workdir / "kamailio.log", "w", encoding="utf-8") as log:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                log.write(line + "\n")
                with self._lock:
                    self._lines.append(line)

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                time.sleep(0.2)
                raise AssertionError(f"kamailio exited with {self.proc.returncode}\n{self.tail()}")
            if _udp_taken(self.port):
                return
            time.sleep(0.1)
        self.stop()
        raise AssertionError(f"kamailio did not listen on {LOOPBACK}:{self.port}\n{self.tail()}")

    @property
    def target(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def lines(self) -> list[str]:
        with self._lock:
            return list(self._lines)

    def tail(self, n: int = 40) -> str:
        return "--- kamailio ---\n" + "\n".join(self.lines()[-n:])

    def stop(self) -> None:
        """SIGTERM to the main process (it ends its workers); if it lingers, SIGKILL to
        the process group it leads (a SIGKILLed main leaves its workers running: on a
        busy machine that left a Kamailio listening after its test)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
