"""Start and stop a real `callswitch serve` process for interop tests.

The server runs as a child process on free loopback ports. Its stderr (logfmt,
one event per line) is read by a thread, kept in memory and copied to a file so
a failing test can show what the server said. It is stopped by its own PID
only: SIGTERM, then SIGKILL if it has not exited after a grace period.

Servers are forked from a zygote that has imported callswitch once
(tests/interop/zygote.py), which saves the second or two of imports each start
would cost; ``CALLSWITCH_INTEROP_FORK=0``, a server pinned to a CPU, or
``CALLSWITCH_INTEROP_SERVER`` start a fresh interpreter instead.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.pg import STORE_ENV, database_for
from tests.ports import LOOPBACK as LOOPBACK
from tests.ports import free_port as free_port  # re-exported for the suite's peers
from tests.ports import free_port_block as free_port_block
from tests.ports import free_rtp_range as free_rtp_range

READY_TIMEOUT = 15.0
STOP_GRACE = 5.0

# Lets a developer aim the suite at another build, e.g. "python -m callswitch".
SERVER_CMD_ENV = "CALLSWITCH_INTEROP_SERVER"
# "0" starts every server with a fresh interpreter instead of forking it from the zygote.
FORK_ENV = "CALLSWITCH_INTEROP_FORK"
REPO = Path(__file__).resolve().parents[2]


def parse_logfmt(line: str) -> dict[str, str]:
    """Parse one logfmt line (`key=value key="quoted value"`) into a dict.

    Tolerant: bare words become keys with an empty value, and a line that is
    not logfmt at all (a traceback, say) just yields whatever pairs it has.
    """
    out: dict[str, str] = {}
    i, n = 0, len(line)
    while i < n:
        while i < n and line[i] == " ":
            i += 1
        start = i
        while i < n and line[i] not in " =":
            i += 1
        key = line[start:i]
        if i < n and line[i] == "=":
            i += 1
            if i < n and line[i] == '"':
                i += 1
                buf = []
                while i < n and line[i] != '"':
                    if line[i] == "\\" and i + 1 < n:
                        i += 1
                    buf.append(line[i])
                    i += 1
                i += 1
                value = "".join(buf)
            else:
                start = i
                while i < n and line[i] != " ":
                    i += 1
                value = line[start:i]
        else:
            value = ""
        if key:
            out[key] = value
    return out


def make_tls_cert(directory: Path, common_name: str = LOOPBACK) -> tuple[Path, Path]:
    """A self-signed certificate and its unencrypted key (PEM) for `common_name`
    (an IP address, also put in subjectAltName), written into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            f"/CN={common_name}",
            "-addext",
            f"subjectAltName=IP:{common_name}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def server_command() -> list[str]:
    """The command that runs callswitch, without the `serve` arguments."""
    override = os.environ.get(SERVER_CMD_ENV)
    if override:
        return shlex.split(override)
    script = Path(sys.executable).with_name("callswitch")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "callswitch"]


class ServerError(AssertionError):
    """The server failed to start, died, or did not stop cleanly."""


class ForkedProcess:
    """What the harness uses of `subprocess.Popen`, for a server forked by the zygote
    (tests/interop/zygote.py): its pid, its stderr, and its exit code when it ends."""

    def __init__(self, conn: socket.socket, args: list[str], stderr) -> None:
        self._conn = conn
        self._buffer = b""
        self.args = args
        self.stderr = stderr
        self.returncode: int | None = None
        line = self._line(READY_TIMEOUT)
        if line is None:
            raise ServerError("the zygote did not fork the server")
        self.pid = int(line)

    def _line(self, timeout: float | None) -> bytes | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            self._conn.settimeout(left)
            try:
                data = self._conn.recv(64)
            except (TimeoutError, BlockingIOError):
                return None
            if not data:
                raise ServerError("the zygote went away")
            self._buffer += data
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    def poll(self) -> int | None:
        if self.returncode is None:
            line = self._line(0)
            if line is not None:
                self.returncode = int(line)
                self._conn.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            line = self._line(timeout)
            if line is None:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self.returncode = int(line)
            self._conn.close()
        return self.returncode


class Zygote:
    """The test session's zygote: started on first use, gone with the session."""

    _lock = threading.Lock()
    _instance: Zygote | None = None

    def __init__(self) -> None:
        import tempfile

        self.path = os.path.join(tempfile.mkdtemp(prefix="callswitch-zygote-"), "socket")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.interop.zygote", self.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=REPO,
        )
        assert self.proc.stdout is not None
        if self.proc.stdout.readline().strip() != b"ready":
            raise ServerError(f"the zygote did not start (exit code {self.proc.wait(5)})")

    @classmethod
    def shared(cls) -> Zygote:
        with cls._lock:
            if cls._instance is None or cls._instance.proc.poll() is not None:
                cls._instance = cls()
            return cls._instance

    def spawn(self, args: list[str], argv: list[str], cwd: Path, env: dict) -> ForkedProcess:
        read_end, write_end = os.pipe()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.path)
            request = json.dumps({"argv": argv, "env": env, "cwd": str(cwd)}) + "\n"
            socket.send_fds(conn, [request.encode()], [write_end])
        finally:
            os.close(write_end)
        return ForkedProcess(conn, args, os.fdopen(read_end, "rb"))


def _forking() -> bool:
    return not os.environ.get(SERVER_CMD_ENV) and os.environ.get(FORK_ENV) != "0"


@dataclass
class CallswitchServer:
    """A running `callswitch serve` child process bound to loopback ports."""

    proc: subprocess.Popen[bytes] | ForkedProcess
    sip_port: int
    http_port: int
    rtp_ports: tuple[int, int]
    data_dir: Path
    log_path: Path
    cmd: list[str]
    ready: dict[str, str] = field(default_factory=dict)
    sip_tls_port: int | None = None  # set when started with tls=True
    tls_cert: Path | None = None  # the self-signed certificate the server presents
    turn_port: int | None = None  # TURN over UDP and TCP
    turn_tls_port: int | None = None  # TURN over TLS, with tls=True
    relay_ports: tuple[int, int] | None = None  # TURN relay range
    sip_ws_port: int | None = None  # SIP over WebSocket (RFC 7118)
    _lines: list[str] = field(default_factory=list)
    _said: threading.Condition = field(default_factory=threading.Condition)  # a line came
    _ready_event: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None
    stopped_rc: int | None = None
    stop_seconds: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def store_args(self) -> list[str]:
        """The settings naming this server's store, for a `callswitch` tool run on it."""
        args = ["--data-dir", str(self.data_dir)]
        if "--database-url" in self.cmd:
            args += ["--database-url", self.cmd[self.cmd.index("--database-url") + 1]]
        return args

    @property
    def sip_target(self) -> str:
        return f"{LOOPBACK}:{self.sip_port}"

    @property
    def sip_addr(self) -> tuple[str, int]:
        return (LOOPBACK, self.sip_port)

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        rtp_size: int = 200,
        ready_timeout: float = READY_TIMEOUT,
        extra_args: tuple[str, ...] = (),
        cpu: int | None = None,
        tls: bool = False,
        relay_size: int = 100,
    ) -> CallswitchServer:
        """Start callswitch; with `tls` also its SIP TLS listener on a free
        port, with a fresh self-signed certificate for 127.0.0.1.

        A port probed free can still be taken before the server binds it (by a
        peer another test starts); the server then exits saying so, and is
        started again on fresh ports. A node new to `workdir` starts again
        from nothing, so its first start's account is the one it logs."""
        data_dir = workdir / "callswitch-data"
        new_node = not data_dir.exists()
        for attempt in range(3):
            try:
                return cls._launch(
                    workdir,
                    rtp_size=rtp_size,
                    ready_timeout=ready_timeout,
                    extra_args=extra_args,
                    cpu=cpu,
                    tls=tls,
                    relay_size=relay_size,
                    fresh_database=new_node and attempt > 0,
                )
            except ServerError as failure:
                taken = ("address already in use", "could not bind to local_addr")  # TCP, UDP
                if not any(words in str(failure) for words in taken) or attempt == 2:
                    raise
                if new_node:
                    shutil.rmtree(data_dir, ignore_errors=True)
        raise AssertionError("unreachable")

    @classmethod
    def _launch(
        cls,
        workdir: Path,
        *,
        rtp_size: int,
        ready_timeout: float,
        extra_args: tuple[str, ...],
        cpu: int | None,
        tls: bool,
        relay_size: int,
        fresh_database: bool,
    ) -> CallswitchServer:
        workdir.mkdir(parents=True, exist_ok=True)
        data_dir = workdir / "callswitch-data"
        data_dir.mkdir(exist_ok=True)
        sip_port = free_port()
        http_port = free_port(avoid={sip_port})
        rtp = free_rtp_range(rtp_size)
        turn_port = free_port(avoid={sip_port, http_port})
        sip_ws_port = free_port(avoid={sip_port, http_port, turn_port})
        relay = free_rtp_range(relay_size, low=59000, high=60900)
        tls_args: list[str] = []
        sip_tls_port = tls_cert = turn_tls_port = None
        if tls:
            sip_tls_port = free_port(avoid={sip_port, http_port, turn_port})
            turn_tls_port = free_port(avoid={sip_port, http_port, turn_port, sip_tls_port})
            tls_cert, tls_key = make_tls_cert(workdir / "tls")
            tls_args = [
                "--sip-tls-port",
                str(sip_tls_port),
                "--sip-tls-cert",
                str(tls_cert),
                "--sip-tls-key",
                str(tls_key),
                "--turn-tls-port",
                str(turn_tls_port),
            ]
        if os.environ.get(STORE_ENV) == "postgresql" and "--database-url" not in extra_args:
            extra_args = (
                *extra_args,
                "--database-url",
                database_for(str(workdir.resolve()), fresh=fresh_database),
            )
        cmd = [
            *server_command(),
            "serve",
            "--bind",
            LOOPBACK,
            "--public-address",
            LOOPBACK,
            "--sip-port",
            str(sip_port),
            "--http-port",
            str(http_port),
            "--rtp-ports",
            f"{rtp[0]}-{rtp[1]}",
            "--data-dir",
            str(data_dir),
            "--turn-port",
            str(turn_port),
            "--relay-ports",
            f"{relay[0]}-{relay[1]}",
            "--sip-ws-port",
            str(sip_ws_port),
            "--sip-wss-port",
            "0",  # a test that wants WSS passes a free port and --http-tls-cert
            *tls_args,
            *extra_args,
        ]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        proc: subprocess.Popen[bytes] | ForkedProcess
        if cpu is None and _forking():
            argv = cmd[len(server_command()) :]
            proc = Zygote.shared().spawn(cmd, argv, workdir, env)
        else:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=env,
            )
        server = cls(
            proc=proc,
            sip_port=sip_port,
            http_port=http_port,
            rtp_ports=rtp,
            data_dir=data_dir,
            log_path=workdir / "callswitch.stderr.log",
            cmd=cmd,
            sip_tls_port=sip_tls_port,
            tls_cert=tls_cert,
            turn_port=turn_port,
            turn_tls_port=turn_tls_port,
            relay_ports=relay,
            sip_ws_port=sip_ws_port,
        )
        server._reader = threading.Thread(target=server._read_stderr, daemon=True)
        server._reader.start()
        server._wait_ready(ready_timeout)
        return server

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        with open(self.log_path, "w", encoding="utf-8") as log:
            for raw in self.proc.stderr:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                log.write(line + "\n")
                log.flush()
                with self._said:
                    self._lines.append(line)
                    self._said.notify_all()
                if not self._ready_event.is_set() and "event=ready" in line:
                    self.ready = parse_logfmt(line)
                    self._ready_event.set()

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._ready_event.wait(0.05):
                break
            if self.proc.poll() is not None:
                # Let the reader drain what the process said before dying.
                if self._reader is not None:
                    self._reader.join(2)
                raise ServerError(
                    f"callswitch exited with {self.proc.returncode} before it was ready\n"
                    f"command: {shlex.join(self.cmd)}\n{self.tail()}"
                )
        else:
            self._kill()
            raise ServerError(
                f"callswitch printed no event=ready line within {timeout:.0f} s\n"
                f"command: {shlex.join(self.cmd)}\n{self.tail()}"
            )
        only = self.cmd[self.cmd.index("--only") + 1] if "--only" in self.cmd else "all"
        expected_listeners = {}
        if only == "all" or "sip" in only.split(","):
            expected_listeners["sip_udp"] = f"{LOOPBACK}:{self.sip_port}"
            expected_listeners["sip_tcp"] = f"{LOOPBACK}:{self.sip_port}"
            if self.sip_tls_port is not None:
                expected_listeners["sip_tls"] = f"{LOOPBACK}:{self.sip_tls_port}"
        if only == "all" or "turn" in only.split(","):
            bind = [self.cmd[i + 1] for i, arg in enumerate(self.cmd) if arg == "--bind"][-1]
            suffix, host = ("6", f"[{bind}]") if ":" in bind else ("", bind)
            expected_listeners[f"turn_udp{suffix}"] = f"{host}:{self.turn_port}"
            expected_listeners[f"turn_tcp{suffix}"] = f"{host}:{self.turn_port}"
        for key, expected in expected_listeners.items():
            if self.ready.get(key) != expected:
                self._kill()
                raise ServerError(
                    f"ready line names {key}={self.ready.get(key)!r}, expected {expected}\n"
                    f"ready line: {self.ready}"
                )

    def lines(self) -> list[str]:
        with self._said:
            return list(self._lines)

    def tail(self, n: int = 60) -> str:
        lines = self.lines()
        body = "\n".join(lines[-n:]) if lines else "(no output)"
        return (
            f"--- callswitch stderr (last {min(n, len(lines))} of {len(lines)} lines) ---\n{body}"
        )

    def events(self, name: str) -> list[dict[str, str]]:
        """Parsed log lines whose `event` is `name`."""
        return [f for f in map(parse_logfmt, self.lines()) if f.get("event") == name]

    def wait_events(self, name: str, timeout: float = 10.0, count: int = 1) -> list[dict[str, str]]:
        """The events called `name` once `count` are logged (the log is read by a thread,
        a moment behind the wire); what there is after `timeout` otherwise."""
        deadline = time.monotonic() + timeout
        with self._said:
            while len(found := self.events(name)) < count:
                left = deadline - time.monotonic()
                if left <= 0 or not self._said.wait(left):
                    return self.events(name)
        return found

    def is_alive(self) -> bool:
        return self.proc.poll() is None

    def assert_alive(self) -> None:
        if not self.is_alive():
            if self._reader is not None:
                self._reader.join(2)
            raise ServerError(
                f"callswitch (pid {self.pid}) died during the test with exit code "
                f"{self.proc.returncode}\n{self.tail()}"
            )

    def _kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(5)

    def stop(self, grace: float = STOP_GRACE) -> list[str]:
        """Stop the server; return a list of problems (empty when all went well).

        Also records `stop_seconds`, how long it took to exit after SIGTERM.

        Problems: it had died before we stopped it, it ignored SIGTERM for
        `grace` seconds, it exited non-zero, or it printed a Python traceback.
        """
        if self.stopped_rc is not None:
            return []  # already stopped (and judged) by the test itself
        problems: list[str] = []
        rc = self.proc.poll()
        if rc is not None:
            problems.append(f"callswitch (pid {self.pid}) died during the test, exit code {rc}")
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGTERM)
            sent = time.monotonic()
            try:
                rc = self.proc.wait(grace)
                self.stop_seconds = time.monotonic() - sent
            except subprocess.TimeoutExpired:
                problems.append(f"callswitch did not exit within {grace:.0f} s of SIGTERM")
                self._kill()
                rc = self.proc.returncode
            else:
                if rc != 0:
                    problems.append(f"callswitch exited with {rc} after SIGTERM, expected 0")
        self.stopped_rc = rc
        if self._reader is not None:
            self._reader.join(5)
        if any("Traceback (most recent call last)" in line for line in self.lines()):
            problems.append("callswitch printed a Python traceback")
        return problems


class ServerPool:
    """One callswitch process reused by consecutive tests (of one module).

    Starting the server costs a second or two, so tests that do not need a
    fresh process share one. Each test is still judged on its own: `release`
    reports the server dying or printing a traceback during that test, and
    then throws the process away so the next test gets a new one.
    """

    def __init__(self, workdir: Path, **options):
        self.workdir = workdir
        self.options = options
        self.server: CallswitchServer | None = None
        self._count = 0

    def acquire(self) -> CallswitchServer:
        if self.server is None or not self.server.is_alive():
            self._count += 1
            self.server = CallswitchServer.start(
                self.workdir / f"server-{self._count}", **self.options
            )
        return self.server

    def release(self, server: CallswitchServer, first_line: int) -> list[str]:
        """Problems seen since `first_line` of the server's log; a server with
        problems is stopped and forgotten."""
        problems = []
        if not server.is_alive():
            if server._reader is not None:
                server._reader.join(2)
            rc = server.proc.returncode
            problems.append(f"callswitch (pid {server.pid}) died during the test, exit code {rc}")
        new = server.lines()[first_line:]
        if any("Traceback (most recent call last)" in line for line in new):
            problems.append("callswitch printed a Python traceback during the test")
        if problems:
            server.stop()
            self.server = None
        return problems

    def close(self) -> list[str]:
        if self.server is None:
            return []
        server, self.server = self.server, None
        return server.stop()
