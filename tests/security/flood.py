"""Idle and half-sent connections from chosen loopback sources, and a watch on
which of them the server has closed.

Sources are 127.0.0.2, 127.0.0.3…: every address of 127.0.0.0/8 is loopback on
Linux, so each stands for another attacking host. The loops are bounded in
count and time."""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import time


class Flood:
    """Up to a few hundred connections the test holds open and watches."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.closed: set[int] = set()  # indexes of sockets the server closed
        self._selector = selectors.DefaultSelector()

    def open(self, target: tuple[str, int], source: str, count: int, send: bytes = b"") -> None:
        """``count`` connections from ``source`` to ``target``, each sending ``send``."""
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((source, 0))
            sock.settimeout(5)
            try:
                sock.connect(target)
                if send:
                    sock.sendall(send)
            except (ConnectionResetError, BrokenPipeError):
                pass  # closed at once: the watch sees it as closed too
            sock.setblocking(False)
            index = len(self.sockets)
            self.sockets.append(sock)
            self._selector.register(sock, selectors.EVENT_READ, index)

    @property
    def open_count(self) -> int:
        return len(self.sockets) - len(self.closed)

    def watch(self, seconds: float) -> None:
        """Note every connection the server closes within ``seconds``."""
        deadline = time.monotonic() + seconds
        while self.open_count and (left := deadline - time.monotonic()) > 0:
            for key, _ in self._selector.select(min(left, 0.2)):
                self._read(key.fileobj, key.data)

    def wait_until_open(self, count: int, seconds: float) -> bool:
        """Watch until at most ``count`` connections remain open, or ``seconds``."""
        deadline = time.monotonic() + seconds
        while self.open_count > count and time.monotonic() < deadline:
            self.watch(min(0.5, deadline - time.monotonic()))
        return self.open_count <= count

    def _read(self, sock: socket.socket, index: int) -> None:
        try:
            data = sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno not in (errno.ECONNRESET, errno.EPIPE, errno.ETIMEDOUT):
                raise
            data = b""
        if not data:
            self.closed.add(index)
            self._selector.unregister(sock)

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
        self._selector.close()

    def __enter__(self) -> Flood:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
