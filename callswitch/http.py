"""The HTTP listener: uvicorn embedded in our event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import uvicorn

__all__ = ["HttpServer"]

log = logging.getLogger("callswitch")


class _Embedded(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):
        # The process's signals belong to callswitch.server, which stops us itself.
        yield


class HttpServer:
    """Serves an ASGI app on ``host:port`` inside the running loop."""

    def __init__(self, app, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level="warning",
            server_header=False,
        )
        self._server = _Embedded(config)
        self._task: asyncio.Task | None = None
        self.address = f"{host}:{port}"

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():  # failed to bind: surface the error
                await self._task
                raise OSError(f"HTTP server on {self.address} did not start")
            await asyncio.sleep(0.01)
        sockets = [s for server in self._server.servers for s in server.sockets]
        if sockets:
            host, port = sockets[0].getsockname()[:2]
            self.address = f"{host}:{port}"

    async def stop(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await self._task
            self._task = None
