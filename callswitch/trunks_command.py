"""``callswitch trunks``: each configured trunk, its entry points and registration.

The trunks are the settings' (``--trunk`` in ``callswitch.toml``, ``CALLSWITCH_TRUNK``
or the flag); what their registrations are doing only the running server knows, so
the command asks it: ``GET /console/api/Accounts/{AccountSid}/Trunks.json`` on the
HTTP port (``--url``, else ``http://<bind>:<http-port>`` from the settings), with
Basic credentials: ``--account``/``--auth-token``, else ``CALLSWITCH_ACCOUNT_SID``
and ``CALLSWITCH_AUTH_TOKEN``, else the first account of the store under
``--data-dir``. When no server answers it prints the configured trunks and says so
(exit status 1).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path

from control_api.calls.trunk_registrations import trunk_views

__all__ = ["add_trunks_command", "trunks"]

TIMEOUT_S = 5.0


def add_trunks_command(commands, add_store_options) -> None:
    command = commands.add_parser(
        "trunks", help="list the trunks, their entry points and registration state"
    )
    command.add_argument("--url", default=None, help="the server's HTTP address")
    command.add_argument("--http-port", type=int, default=None, help="as for serve")
    command.add_argument("--trunk", action="append", default=None, help="as for serve")
    command.add_argument("--account", default=None, help="an account SID (AC...)")
    command.add_argument("--auth-token", default=None, help="that account's auth token")
    command.add_argument("--json", action="store_true", help="print the server's JSON")
    add_store_options(command)


async def trunks(settings, args: argparse.Namespace) -> int:
    """Print the trunks; returns the exit status."""
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(settings.bind)
    if host is None:
        host = f"[{settings.bind}]" if ":" in settings.bind else settings.bind
    url = (args.url or f"http://{host}:{settings.http_port}").rstrip("/")
    configured = [view.to_json() for view in trunk_views(settings.trunk, None)]
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=TIMEOUT_S):
            pass  # a server answers; which trunks it has needs an account
    except (OSError, ValueError) as exc:
        _print(configured)
        reason = getattr(exc, "reason", exc)
        print(
            f"callswitch: no callswitch server answers at {url} ({reason}): "
            "registration state unknown",
            file=sys.stderr,
        )
        return 1
    login = await _login(settings, args)
    if login is None:
        _print(configured)
        print(
            "callswitch: no account to ask the server with: give --account and --auth-token",
            file=sys.stderr,
        )
        return 2
    sid, token = login
    try:
        listed = _fetch(f"{url}/console/api/Accounts/{sid}/Trunks.json", sid, token)
    except urllib.error.HTTPError as exc:
        print(
            f"callswitch: {url} answered {exc.code}: check --account and --auth-token",
            file=sys.stderr,
        )
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"callswitch: cannot read the trunks from {url}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(listed, indent=2))
    else:
        _print(listed)
    return 0


async def _login(settings, args) -> tuple[str, str] | None:
    if args.account and args.auth_token:
        return args.account, args.auth_token
    if settings.account_sid and settings.auth_token:
        return settings.account_sid, settings.auth_token
    if not settings.database_url and not Path(settings.data_dir).is_dir():
        return None  # no store here to find an account in
    from callswitch.cli import _open_store

    store = await _open_store(settings)
    try:
        accounts = await store.accounts.all()
    finally:
        await store.close()
    wanted = [a for a in accounts if not args.account or a.sid == args.account]
    return (wanted[0].sid, wanted[0].auth_token) if wanted else None


def _fetch(url: str, sid: str, token: str) -> list[dict]:
    basic = base64.b64encode(f"{sid}:{token}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {basic}"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
        body = json.load(answer)
    return list(body["trunks"])


def _print(listed: list[dict]) -> None:
    if not listed:
        print("No trunk is configured (--trunk, CALLSWITCH_TRUNK or [[trunk]]).")
        return
    for trunk in listed:
        prefixes = " ".join(trunk["prefixes"]) or "every number"
        print(f"{trunk['name']}\t{trunk['transport']}\t{', '.join(trunk['entry_points'])}")
        print(f"  serves: {prefixes}")
        if trunk.get("outbound_proxy"):
            print(f"  outbound proxy: {trunk['outbound_proxy']}")
        print(f"  registration: {_registration(trunk)}")


def _registration(trunk: dict) -> str:
    if not trunk["register"]:
        return "none (no ;register)"
    reg = trunk.get("registration")
    if reg is None:
        return "unknown"
    parts = [reg["state"]]
    if reg["last_status"] is not None:
        parts.append(f"last answer {reg['last_status']} {reg['last_reason']}".rstrip())
    elif reg["last_reason"]:
        parts.append(reg["last_reason"])
    if reg["expires_in"] is not None:
        parts.append(f"expires in {reg['expires_in']} s")
    if reg["retry_in"] is not None:
        parts.append(f"retry in {reg['retry_in']} s")
    if reg["failures"]:
        parts.append(f"{reg['failures']} failures")
    if reg["contact"]:
        parts.append(f"contact {reg['contact']}")
    return ", ".join(parts)
