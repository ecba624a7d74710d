"""The ``callswitch`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys

from callswitch import __version__
from callswitch.config import ConfigError, add_arguments, load_settings
from callswitch.logs import setup_logging

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="callswitch", description="Self-hosted programmable voice."
    )
    parser.add_argument("--version", action="version", version=f"callswitch {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server")
    add_arguments(serve)
    return parser


def _run(coroutine) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        try:
            settings = load_settings(args)
        except ConfigError as exc:
            print(f"callswitch: {exc}", file=sys.stderr)
            return 2
        setup_logging(settings.log_level)
        from callswitch.server import serve

        try:
            _run(serve(settings))
        except OSError as exc:  # a port in use, an address we do not have
            print(f"callswitch: cannot start: {exc}", file=sys.stderr)
            return 1
    return 0
