"""A throwaway PostgreSQL server for the tests, from Debian's ``postgresql`` package.

``PgCluster.start()`` runs ``initdb`` and ``pg_ctl`` in a fresh temporary directory on a
free 127.0.0.1 port (its unix socket in that directory too, never /var/run), with trust
authentication and durability switched off (a test database need not survive a crash).
PostgreSQL refuses to run as root, so under root (as in CI) every server program runs as
the ``postgres`` system user, which owns the directory. ``stop()`` ends the server by the
PID it wrote and removes the directory.

Each test that wants a clean database makes one with ``create_database()`` and drops it
with ``drop_database()``: cheap next to a whole cluster, and tests never see each
other's rows.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.ports import free_port

__all__ = [
    "STORE_ENV",
    "PgCluster",
    "database_for",
    "find_bin_dir",
    "shared_cluster",
    "stop_shared",
]

# CALLSWITCH_TEST_STORE=postgresql runs every interop server on a PostgreSQL database.
STORE_ENV = "CALLSWITCH_TEST_STORE"

PREFERRED_VERSION = "15"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
SYSTEM_USER = "postgres"
SUPERUSER = "postgres"


def find_bin_dir() -> Path | None:
    """Debian's server programs: /usr/lib/postgresql/15/bin, else the newest installed."""
    root = Path("/usr/lib/postgresql")
    preferred = root / PREFERRED_VERSION / "bin"
    if (preferred / "initdb").exists():
        return preferred
    found = sorted(
        (p for p in root.glob("*/bin") if (p / "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


@dataclass
class PgCluster:
    """One running PostgreSQL server: its directory, port and the PID of its postmaster."""

    bin_dir: Path
    root: Path = field(init=False)
    port: int = 0
    pid: int | None = None
    _names: itertools.count = field(default_factory=itertools.count, init=False)

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    def _command(self, program: str, *args: str) -> list[str]:
        command = [str(self.bin_dir / program), *args]
        if self.as_root:
            return ["runuser", "-u", SYSTEM_USER, "--", *command]
        return command

    def _run(self, program: str, *args: str) -> None:
        result = subprocess.run(
            self._command(program, *args),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            cwd=self.root,  # runuser keeps the working directory; postgres must read it
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{program} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
                f"\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        try:
            return (self.root / "server.log").read_text()[-4000:]
        except OSError:
            return ""

    def start(self) -> PgCluster:
        """``initdb`` then ``pg_ctl start``; waits until the server takes connections."""
        # Not under pytest's tmp_path: that is root's and closed to the postgres user.
        self.root = Path(tempfile.mkdtemp(prefix="callswitch-pg-"))
        if self.as_root:
            user = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        data = self.root / "data"
        self._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
            "--no-instructions",
        )
        for attempt in range(3):
            self.port = free_port()
            options = " ".join(
                [
                    f"-p {self.port}",
                    f"-k {self.root}",
                    "-c listen_addresses=127.0.0.1",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    "-c max_connections=200",
                    "-c jit=off",
                ]
            )
            try:
                self._run(
                    "pg_ctl",
                    "start",
                    "-D",
                    str(data),
                    "-w",
                    "-t",
                    str(START_TIMEOUT_S),
                    "-l",
                    str(self.root / "server.log"),
                    "-o",
                    options,
                )
                break
            except RuntimeError:
                if attempt == 2:  # the port was taken between picking and binding, thrice
                    self.remove()
                    raise
        self.pid = int((data / "postmaster.pid").read_text().split("\n", 1)[0])
        return self

    def url(self, database: str = "postgres") -> str:
        """The URL ``--database-url`` takes, over TCP on loopback."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str) -> None:
        """Run one SQL command as the superuser (e.g. CREATE DATABASE, outside a transaction)."""
        self._run(
            "psql",
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.root),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            "postgres",
            "-c",
            sql,
        )

    def create_database(self, prefix: str = "test") -> str:
        """A new empty database with a name no other test of this run has; its URL."""
        name = f"{prefix}_{os.getpid()}_{next(self._names)}"
        # FILE_COPY: with fsync off, copying the small template beats logging it to WAL.
        self.psql(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        self.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Fast shutdown of the postmaster by its PID, then remove the directory."""
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                # SIGINT is PostgreSQL's fast shutdown: abort sessions, checkpoint, exit.
                os.kill(self.pid, signal.SIGINT)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while time.monotonic() < deadline and _alive(self.pid):
                time.sleep(0.05)
            if _alive(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGQUIT)  # immediate shutdown
            self.pid = None
        self.remove()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A postmaster that pg_ctl left is reparented to init, which reaps it; a zombie of
    # ours would still answer kill 0, so look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


_shared: PgCluster | None = None
_databases: dict[str, str] = {}


def shared_cluster() -> PgCluster:
    """The run's one cluster, started on first use (``stop_shared`` ends it)."""
    global _shared
    if _shared is None:
        bin_dir = find_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server not installed (Debian package postgresql)")
        _shared = PgCluster(bin_dir).start()
        atexit.register(stop_shared)  # for a run that ends without pytest's session hooks
    return _shared


def stop_shared() -> None:
    global _shared
    if _shared is not None:
        _shared.stop()
        _shared = None
        _databases.clear()


def database_for(key: str, *, fresh: bool = False) -> str:
    """A database of the shared cluster kept for ``key`` (e.g. a node's work directory),
    so that a node restarted on the same directory finds its data again; with
    `fresh`, a new empty one from now on."""
    if fresh or key not in _databases:
        _databases[key] = shared_cluster().create_database("node")
    return _databases[key]
