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
    accounts = commands.add_parser("accounts", help="manage accounts")
    account_commands = accounts.add_subparsers(dest="action", required=True)
    create = account_commands.add_parser("create", help="create an account; prints SID and token")
    create.add_argument("--friendly-name", default=None)
    create.add_argument("--data-dir", default=None, help="as for serve")
    create.add_argument("--config", default=None, help="as for serve")
    return parser


async def _create_account(settings, friendly_name: str | None) -> None:
    from pathlib import Path

    from callswitch.server import database_url
    from control_api.store import Store

    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    store = await Store.open(database_url(settings))
    try:
        account = await store.create_account(friendly_name)
    finally:
        await store.close()
    print(f"AccountSid: {account.sid}")
    print(f"AuthToken:  {account.auth_token}")


def _run(coroutine) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(coroutine)
    else:
        uvloop.run(coroutine)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "accounts":
        try:
            settings = load_settings({"data_dir": args.data_dir, "config": args.config})
        except ConfigError as exc:
            print(f"callswitch: {exc}", file=sys.stderr)
            return 2
        asyncio.run(_create_account(settings, args.friendly_name))
        return 0
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
