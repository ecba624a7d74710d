"""A small Twilio-style application server for the tests, in a thread.

It serves TwiML and audio from a routing table, records every request (with
its headers and form fields) and lets a test wait for requests to a path.
Independent of callswitch's own HTTP stack on purpose: plain http.server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

Handler = Callable[["Recorded"], tuple[int, str, bytes]]


@dataclass
class Recorded:
    method: str
    path: str
    url: str
    headers: dict[str, str]
    form: list[tuple[str, str]]
    at: float

    def field(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)

    @property
    def form_dict(self) -> dict[str, str]:
        return dict(self.form)


def twiml(body: str) -> tuple[int, str, bytes]:
    document = f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'
    return 200, "text/xml", document.encode()


class WebhookApp:
    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[Recorded] = []
        self._cond = threading.Condition()
        app = self

        class _Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                split = urlsplit(self.path)
                form = parse_qsl(
                    body if self.command == "POST" else split.query, keep_blank_values=True
                )
                host = self.headers.get("Host")
                record = Recorded(
                    self.command,
                    split.path,
                    f"http://{host}{self.path}",
                    dict(self.headers.items()),
                    form,
                    time.monotonic(),
                )
                with app._cond:
                    app.requests.append(record)
                    app._cond.notify_all()
                handler = app.routes.get(split.path)
                status, content_type, payload = (
                    handler(record) if handler else (404, "text/plain", b"not found")
                )
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _handle
            do_POST = _handle

        class _Server(ThreadingHTTPServer):
            # http.server's default backlog of 5 drops SYNs in a burst of calls, and the
            # retried connect (1 s, 3 s later) would be charged to callswitch.
            request_queue_size = 1024
            daemon_threads = True

        self._server = _Server(("127.0.0.1", 0), _Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> WebhookApp:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def to(self, path: str) -> list[Recorded]:
        with self._cond:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int = 1, timeout: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([r for r in self.requests if r.path == path]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return [r for r in self.requests if r.path == path]
