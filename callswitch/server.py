"""Wires the planes into one process and runs it until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from callswitch.config import Settings
from control_api.builtin_apps import BUILTIN_APPS
from control_api.call import CallManager, MediaSettings
from media.clock import MediaClock
from media.ports import PortPool
from sip.endpoint import SipEndpoint

__all__ = ["Server", "serve"]

log = logging.getLogger("callswitch")

SHUTDOWN_GRACE_S = 5.0  # how long BYE transactions may take to finish on shutdown


class Server:
    """Every plane of one node, started and stopped together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.sip: SipEndpoint | None = None
        self.calls: CallManager | None = None
        self.clock = MediaClock()
        self.listeners: dict[str, str] = {}

    async def start(self) -> None:
        s = self.settings
        Path(s.data_dir).mkdir(parents=True, exist_ok=True)
        if s.runs("sip"):
            self.sip = SipEndpoint(s.bind, s.sip_port, s.public_address)
            await self.sip.start()
            media = MediaSettings(s.bind, s.public_address, PortPool(*s.rtp_ports), self.clock)
            self.calls = CallManager(self.sip.ua, media, BUILTIN_APPS)
            self.listeners.update(self.sip.transports.listeners())
            self.listeners["rtp"] = "%d-%d" % s.rtp_ports
        log.info("ready", extra={"public_address": s.public_address, **self.listeners})
        if self.calls is not None:
            host = f"{s.public_address}:{s.sip_port}"
            log.info("apps", extra={name: f"sip:{name}@{host}" for name in BUILTIN_APPS})

    async def stop(self) -> None:
        """End calls cleanly (BYE), let their transactions finish, then close."""
        if self.sip is not None:
            ended = self.sip.ua.hangup_all()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + SHUTDOWN_GRACE_S
            while self.sip.ua.layer.client and loop.time() < deadline:
                await asyncio.sleep(0.05)
            log.info("stopping", extra={"calls_ended": ended})
            await self.sip.close()
        self.clock.close()


async def serve(settings: Settings) -> None:
    server = Server(settings)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop()
    log.info("stopped")
