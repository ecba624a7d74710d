"""The ``callswitch`` command."""

from __future__ import annotations

import argparse
import asyncio
import sys

from callswitch import __version__
from callswitch.config import ConfigError, add_arguments, load_settings
from callswitch.logs import setup_logging
from callswitch.rtpengine_command import add_rtpengine_command, rtpengine
from callswitch.trunks_command import add_trunks_command, trunks

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
    _add_store_options(create)
    _add_sip_credential_commands(commands)
    _add_balance_commands(commands)
    _add_token_command(commands)
    add_trunks_command(commands, _add_store_options)
    add_rtpengine_command(commands, _add_store_options)
    return parser


def _add_store_options(command) -> None:
    """The settings that find the store, for a management command run beside serve."""
    command.add_argument("--data-dir", default=None, help="as for serve")
    command.add_argument("--database-url", default=None, help="as for serve")
    command.add_argument("--config", default=None, help="as for serve")


def _add_balance_commands(commands) -> None:
    balance = commands.add_parser("balance", help="an account's prepaid balance (docs/billing.md)")
    actions = balance.add_subparsers(dest="action", required=True)
    setter = actions.add_parser("set", help="set the balance; usage is taken off it as priced")
    setter.add_argument("account", help="the account SID (AC...)")
    setter.add_argument("amount", help="in USD, e.g. 10.00")
    show = actions.add_parser("show", help="print the balance")
    show.add_argument("account", help="the account SID (AC...)")
    for action in (setter, show):
        _add_store_options(action)


async def _balance(settings, args) -> int:
    """``balance set|show``; returns the exit status."""
    from decimal import Decimal, InvalidOperation

    store = await _open_store(settings)
    try:
        if await store.accounts.get(args.account) is None:
            print(f"callswitch: no account {args.account}", file=sys.stderr)
            return 1
        billing = store.billing
        if args.action == "set":
            try:
                amount = Decimal(args.amount)
                if not amount.is_finite():
                    raise InvalidOperation
            except InvalidOperation:
                print(f"callswitch: {args.amount} is not an amount", file=sys.stderr)
                return 2
            await billing.set_balance(args.account, amount)
        balance = await billing.get_balance(args.account)
        print("unlimited" if balance is None else f"{balance:.5f} USD")
        return 0
    finally:
        await store.close()


def _add_token_command(commands) -> None:
    token = commands.add_parser(
        "token", help="mint an access token for a browser client (makes an API key if needed)"
    )
    token.add_argument("--identity", required=True, help="the client's name, as in client:alice")
    token.add_argument("--account", default=None, help="the account SID (default: the only one)")
    token.add_argument("--application", default=None, help="AP... for the client's outgoing calls")
    token.add_argument("--key", default=None, help="the API key SK... to sign with")
    token.add_argument("--ttl", type=int, default=3600, help="seconds the token lives (<= 86400)")
    token.add_argument("--no-incoming", action="store_true", help="the client cannot be called")
    _add_store_options(token)


async def _token(settings, args) -> int:
    """``token``: print an access token (reference §10) signed with one of the account's keys.

    Without ``--key``, the account's newest key named ``callswitch-cli`` signs, made on
    first use, so that repeated calls do not pile up keys.
    """
    import time

    from signaling.tokens import MAX_TTL, mint

    if not 1 <= args.ttl <= MAX_TTL:
        print(f"callswitch: --ttl must be 1 to {MAX_TTL} seconds", file=sys.stderr)
        return 2
    store = await _open_store(settings)
    try:
        account_sid = args.account
        if account_sid is None:
            found = await store.accounts.all()
            if len(found) != 1:
                print("callswitch: name the account with --account AC...", file=sys.stderr)
                return 2
            account_sid = found[0].sid
        if await store.accounts.get(account_sid) is None:
            print(f"callswitch: no account {account_sid}", file=sys.stderr)
            return 1
        if args.application and await store.applications.get(account_sid, args.application) is None:
            print(f"callswitch: no application {args.application}", file=sys.stderr)
            return 1
        if args.key:
            key = await store.api_keys.get(account_sid, args.key)
            if key is None:
                print(f"callswitch: no API key {args.key} in {account_sid}", file=sys.stderr)
                return 1
        else:
            keys = [
                k
                for k in await store.api_keys.page(account_sid, limit=10**6)
                if k.friendly_name == "callswitch-cli"
            ]
            key = keys[-1] if keys else await store.api_keys.create(account_sid, "callswitch-cli")
        try:
            token = mint(
                account_sid=account_sid,
                key_sid=key.sid,
                secret=key.secret,
                identity=args.identity,
                now=time.time(),
                ttl=args.ttl,
                incoming_allow=not args.no_incoming,
                application_sid=args.application,
            )
        except ValueError as exc:
            print(f"callswitch: {exc}", file=sys.stderr)
            return 2
        print(token)
        return 0
    finally:
        await store.close()


def _add_sip_credential_commands(commands) -> None:
    sip = commands.add_parser("sip-credentials", help="manage SIP usernames that may register")
    actions = sip.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a SIP username and password to an account")
    add.add_argument("--account", required=True, help="the account SID (AC...)")
    add.add_argument("--username", required=True)
    add.add_argument("--password", required=True)
    add.add_argument(
        "--list", default="default", help="credential list name, created if absent (default)"
    )
    listing = actions.add_parser("list", help="list an account's SIP usernames")
    listing.add_argument("--account", required=True, help="the account SID (AC...)")
    remove = actions.add_parser("remove", help="remove a SIP username from an account")
    remove.add_argument("--username", required=True)
    remove.add_argument(
        "--account", help="the account SID (AC...); needed when several accounts have the name"
    )
    for action in (add, listing, remove):
        _add_store_options(action)


async def _open_store(settings):
    from pathlib import Path

    from callswitch.server import database_url
    from control_api.store import Store

    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    return await Store.open(database_url(settings))


async def _sip_credentials(settings, args) -> int:
    """``sip-credentials add|list|remove``; returns the exit status."""
    from control_api.store import UsernameTaken

    store = await _open_store(settings)
    try:
        if args.action == "remove":
            if (
                args.account is None
                and len(await store.sip_credentials.find_all(args.username)) > 1
            ):
                print(
                    f"callswitch: several accounts have SIP username {args.username}: "
                    "name one with --account",
                    file=sys.stderr,
                )
                return 2
            if not await store.sip_credentials.delete_username(args.username, args.account):
                print(f"callswitch: no SIP username {args.username}", file=sys.stderr)
                return 1
            print(f"Removed {args.username}")
            return 0
        if await store.accounts.get(args.account) is None:
            print(f"callswitch: no account {args.account}", file=sys.stderr)
            return 1
        if args.action == "list":
            for credential_list in await store.credential_lists.page(args.account, limit=10**6):
                for credential in await store.sip_credentials.page(
                    args.account, credential_list.sid, limit=10**6
                ):
                    print(
                        f"{credential.username}\t{credential_list.friendly_name}\t{credential.sid}"
                    )
            return 0
        found = await store.credential_lists.page(args.account, friendly_name=args.list)
        credential_list = found[0] if found else None
        try:
            if credential_list is None:
                credential_list = await store.credential_lists.create(args.account, args.list)
            credential = await store.sip_credentials.create(
                args.account, credential_list.sid, args.username, args.password
            )
        except (ValueError, UsernameTaken) as exc:
            print(f"callswitch: {exc}", file=sys.stderr)
            return 2 if isinstance(exc, ValueError) else 1
        print(f"CredentialSid: {credential.sid}")
        print(f"CredentialListSid: {credential_list.sid} ({credential_list.friendly_name})")
        return 0
    finally:
        await store.close()


async def _create_account(settings, friendly_name: str | None) -> None:
    from pathlib import Path

    from callswitch.server import database_url
    from control_api.store import Store

    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    store = await Store.open(database_url(settings))
    try:
        account = await store.accounts.create(friendly_name)
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


def _tool_settings(args: argparse.Namespace):
    """The settings a management command runs with (its --data-dir, --database-url and
    --config), or None after saying what is wrong with them."""
    values = {"data_dir": args.data_dir, "config": args.config}
    if args.database_url is not None:
        values["database_url"] = args.database_url
    for name in ("http_port", "trunk"):  # `trunks` reads these as serve does
        if getattr(args, name, None) is not None:
            values[name] = getattr(args, name)
    try:
        return load_settings(values)
    except ConfigError as exc:
        print(f"callswitch: {exc}", file=sys.stderr)
        return None


TOOLS = {
    "token": _token,
    "balance": _balance,
    "sip-credentials": _sip_credentials,
    "trunks": trunks,
    "rtpengine": rtpengine,
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in TOOLS or args.command == "accounts":
        settings = _tool_settings(args)
        if settings is None:
            return 2
        if args.command == "accounts":
            asyncio.run(_create_account(settings, args.friendly_name))
            return 0
        return asyncio.run(TOOLS[args.command](settings, args))
    if args.command == "serve":
        try:
            settings = load_settings(args)
        except ConfigError as exc:
            print(f"callswitch: {exc}", file=sys.stderr)
            return 2
        setup_logging(settings.log_level)
        from callswitch.server import serve
        from control_api.store import StoreUnavailable

        try:
            _run(serve(settings))
        except (OSError, StoreUnavailable) as exc:  # a port in use, no database
            print(f"callswitch: cannot start: {exc}", file=sys.stderr)
            return 1
    return 0
