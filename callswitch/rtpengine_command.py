"""``callswitch rtpengine``: a running node's rtpengine instances, and draining one,
as ``kamcmd rtpengine.show all`` and ``kamcmd rtpengine.enable URL 0|1`` do for
Kamailio (docs/rtpengine.md).

    callswitch rtpengine                          # each instance: weight, up, enabled, calls
    callswitch rtpengine enable 10.0.0.21:2223 0  # drain it (all: every instance)
    callswitch rtpengine enable 10.0.0.21:2223 1  # take new bridges again

It asks the server's ``/admin/rtpengine`` on the HTTP port (``--url``, else
``http://<bind>:<http-port>`` from the settings) with ``--admin-token``, else the
settings' ``admin_token`` (``CALLSWITCH_ADMIN_TOKEN``). Exit status 0 when the
server did it, 1 when it could not be asked or refused, 2 without a token.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["add_rtpengine_command", "rtpengine"]

TIMEOUT_S = 5.0


def add_rtpengine_command(commands, add_store_options) -> None:
    command = commands.add_parser(
        "rtpengine", help="show a running node's rtpengine instances, drain or enable one"
    )
    command.add_argument("action", nargs="?", choices=["show", "enable"], default="show")
    command.add_argument("instance", nargs="?", help="HOST:PORT of an instance, or all")
    command.add_argument("enabled", nargs="?", choices=["0", "1"], help="0: drain, 1: enable")
    command.add_argument("--url", default=None, help="the server's HTTP address")
    command.add_argument("--http-port", type=int, default=None, help="as for serve")
    command.add_argument("--admin-token", default=None, help="the server's --admin-token")
    command.add_argument("--json", action="store_true", help="print the server's JSON")
    add_store_options(command)


async def rtpengine(settings, args: argparse.Namespace) -> int:
    """Show or change the instances; returns the exit status."""
    if args.action == "enable" and (args.instance is None or args.enabled is None):
        print("callswitch: give the instance (HOST:PORT or all) and 0 or 1", file=sys.stderr)
        return 2
    token = args.admin_token or settings.admin_token
    if not token:
        print("callswitch: give --admin-token (the server's admin_token)", file=sys.stderr)
        return 2
    host = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(settings.bind)
    if host is None:
        host = f"[{settings.bind}]" if ":" in settings.bind else settings.bind
    url = (args.url or f"http://{host}:{settings.http_port}").rstrip("/") + "/admin/rtpengine"
    data = None
    if args.action == "enable":
        url += "/enable"
        data = urllib.parse.urlencode({"instance": args.instance, "enabled": args.enabled})
    request = urllib.request.Request(
        url, data.encode() if data else None, {"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
            body = json.load(answer)
    except urllib.error.HTTPError as exc:
        print(f"callswitch: {url} answered {exc.code}: {_reason(exc)}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"callswitch: no callswitch server answers at {url} ({reason})", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(body, indent=2))
    else:
        _print(body.get("instances", []))
    return 0


def _reason(error: urllib.error.HTTPError) -> str:
    if error.code == 404 and error.url.endswith("/admin/rtpengine"):
        return "the server runs without --admin-token"
    if error.code == 401:
        return "wrong --admin-token"
    try:
        return str(json.load(error).get("message", error.reason))
    except (ValueError, AttributeError):
        return str(error.reason)


def _print(instances: list[dict]) -> None:
    if not instances:
        print("No rtpengine instance is configured (--rtpengine).")
        return
    for each in instances:
        print(
            f"{each['instance']}\tweight {each['weight']}\t{'up' if each['up'] else 'down'}"
            f"\t{'enabled' if each['enabled'] else 'drained'}\t{each['calls']} calls"
        )
