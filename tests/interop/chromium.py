"""Debian's Chromium for the browser tests, headless and kept off the network.

The flags keep it from calling home (every such connection is refused on a
closed network) and run it as root without a sandbox; tests add their own
(fake media devices, loopback ICE) to ``FLAGS``.
"""

from __future__ import annotations

from pathlib import Path

from tests.peers import require

__all__ = ["CHROMIUM", "FLAGS", "require_chromium"]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def require_chromium() -> None:
    """Chromium and Playwright (which drives it) must be installed: fail under CI."""
    require(Path(CHROMIUM).exists(), "chromium is not installed (Debian package chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        require(False, "playwright is not installed (pip install playwright)")
