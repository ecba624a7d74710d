"""A pre-loaded parent that forks the `callswitch serve` processes of the interop tests.

Importing callswitch (FastAPI, SQLAlchemy, aiortc, numpy …) takes one to two
seconds and the suite starts well over a hundred servers. The zygote imports it
all once; each server is then a fork running the same ``callswitch.cli.main``
with its own arguments, environment, working directory and stderr: the program
`callswitch serve` runs, less the imports.

One Unix stream connection per server. The harness sends one JSON line
``{"argv": [...], "env": {...}, "cwd": "..."}`` with the write end of its stderr
pipe attached (SCM_RIGHTS). The zygote answers ``<pid>`` once it has forked and
``<returncode>`` when that child exits (negative: killed by that signal, as
`subprocess` reports it), each on a line, then closes the connection.

The zygote exits when its standard input closes, that is when the test session
that started it has gone.

    python -m tests.interop.zygote SOCKET_PATH
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import sys
import traceback

MAX_REQUEST = 1 << 20


def _read_request(conn: socket.socket) -> tuple[dict, int]:
    """The JSON request and the stderr descriptor sent with it."""
    data, fds, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, 1)
    while not data.endswith(b"\n"):
        more = conn.recv(MAX_REQUEST)
        if not more:
            raise ConnectionError("request cut short")
        data += more
    if len(fds) != 1:
        raise ConnectionError("no stderr descriptor came with the request")
    return json.loads(data), fds[0]


def _run_child(request: dict, stderr_fd: int) -> int:
    """In the forked child: become `callswitch <argv>` and return its exit code."""
    from callswitch.cli import main

    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(stderr_fd, 2)
    os.close(devnull)
    os.close(stderr_fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.argv = ["callswitch", *request["argv"]]
    try:
        return main(request["argv"])
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()


class Zygote:
    def __init__(self, path: str) -> None:
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(64)
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wakeup_r, selectors.EVENT_READ, "children")
        self.selector.register(sys.stdin, selectors.EVENT_READ, "parent")
        self.children: dict[int, socket.socket] = {}

    def run(self) -> None:
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wakeup_w)
        while True:
            for key, _ in self.selector.select():
                if key.data == "accept":
                    self._accept()
                elif key.data == "children":
                    while True:
                        try:
                            if not os.read(self.wakeup_r, 512):
                                break
                        except BlockingIOError:
                            break
                    self._reap()
                elif not sys.stdin.buffer.read1(1):
                    return  # the test session has gone

    def _accept(self) -> None:
        conn, _ = self.listener.accept()
        try:
            request, stderr_fd = _read_request(conn)
        except (OSError, ValueError):
            conn.close()
            return
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            self._forget_in_child(conn)
            os._exit(_run_child(request, stderr_fd))
        os.close(stderr_fd)
        self.children[pid] = conn
        conn.sendall(f"{pid}\n".encode())

    def _forget_in_child(self, conn: socket.socket) -> None:
        """Drop the zygote's descriptors and signal set-up in a new child (closing the
        selector does not unregister anything from the epoll set the parent shares)."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.selector.close()
        self.listener.close()
        os.close(self.wakeup_r)
        os.close(self.wakeup_w)
        for other in self.children.values():
            other.close()
        conn.close()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            conn = self.children.pop(pid, None)
            if conn is None:
                continue
            with contextlib.suppress(OSError):
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            conn.close()


def main(path: str) -> None:
    # The expensive imports, done once for every server.
    import callswitch.cli
    import callswitch.server  # noqa: F401

    zygote = Zygote(path)
    print("ready", flush=True)
    zygote.run()


if __name__ == "__main__":
    main(sys.argv[1])
