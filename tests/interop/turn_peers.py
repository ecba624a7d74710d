"""Helpers for the TURN interop tests: coturn's test programs and a UDP echo peer."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from .harness import LOOPBACK, free_port

SECRET = "interop-secret"
USER, PASSWORD = "alice", "wonderland"
TURN_ARGS = (
    "--turn-user",
    f"{USER}:{PASSWORD}",
    "--turn-secret",
    SECRET,
    "--turn-allow-peer",
    "127.0.0.0/8",
)


def find(program: str) -> str | None:
    return shutil.which(program)


@dataclass
class UclientResult:
    returncode: int
    output: str
    sent: int
    received: int
    lost: int | None

    def describe(self) -> str:
        return f"turnutils_uclient exited {self.returncode}\n{self.output[-3000:]}"


def run_uclient(
    turn_port: int,
    peer_port: int,
    *args: str,
    messages: int = 50,
    clients: int = 2,
    timeout: float = 60,
    cpu: int | None = None,
    host: str = LOOPBACK,
) -> UclientResult:
    """coturn's load client: ``clients`` sessions each send ``messages`` to the peer
    through our relay and count what comes back."""
    cmd = [
        "turnutils_uclient",
        "-p", str(turn_port),
        "-e", host,
        "-r", str(peer_port),
        "-n", str(messages),
        "-m", str(clients),
        "-l", "100",
        *args,
        host,
    ]  # fmt: skip
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    output = proc.stdout + proc.stderr
    totals = re.findall(r"tot_send_msgs=(\d+), tot_recv_msgs=(\d+)\s*$", output, re.M)
    lost = re.findall(r"Total lost packets (\d+)", output)
    sent, received = (int(totals[-1][0]), int(totals[-1][1])) if totals else (0, 0)
    return UclientResult(proc.returncode, output, sent, received, int(lost[-1]) if lost else None)


@contextlib.contextmanager
def turnutils_peer(cpu: int | None = None, host: str = LOOPBACK):
    """coturn's UDP echo peer on a free loopback port; stopped by its PID."""
    port = free_port()
    cmd = ["turnutils_peer", "-L", host, "-p", str(port)]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_udp_bound(port, host)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _wait_udp_bound(port: int, host: str = LOOPBACK, timeout: float = 5.0) -> None:
    import time

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.bind((host, port))
            except OSError:
                return  # taken: the peer is there
        time.sleep(0.02)
    raise AssertionError(f"turnutils_peer did not bind UDP {port}")


class UdpEcho:
    """A UDP peer that sends every datagram back where it came from (a thread)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((LOOPBACK, 0))
        self.sock.settimeout(0.2)
        self.address = self.sock.getsockname()
        self.seen: list[tuple[bytes, tuple]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.seen.append((data, addr))
            self.sock.sendto(data, addr)

    def __enter__(self) -> UdpEcho:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def write_page(directory: Path, html: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "index.html"
    path.write_text(html)
    return path
