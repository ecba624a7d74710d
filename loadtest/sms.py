"""SMS throughput: N messages through the REST API to an SMPP test server.

callswitch runs pinned to CPU 0 with ``--smpp`` pointing at Debian's Net::SMPP test
SMSC (``tests/interop/peers/smsc.pl``, one Perl process on CPU 1, which answers every
submit_sm and sends a delivery receipt at once). The load generator (this process,
CPU 1) posts ``Messages.json`` over C keep-alive HTTP/1.1 connections as fast as the
server answers, each with a StatusCallback to a small HTTP receiver here that notes
when each message's ``delivered`` callback arrives.

It prints: messages/s accepted (201 answers over the time to post all N), messages/s
delivered (delivered callbacks over the time from the first post to the last
delivered callback), and end-to-end latency percentiles (POST sent → ``delivered``
callback received). Target (issue 8): 1,000 messages/s accepted.

    python loadtest/sms.py                      # 10,000 messages
    python loadtest/sms.py --messages 2000      # a shorter run
    python loadtest/sms.py --no-callbacks       # accepted rate without status callbacks
    python loadtest/sms.py --json sms.json      # also the figures (loadtest/results.py)

Loopback only; bounded in messages and time; stops only the processes it started.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from loadtest import results  # noqa: E402
from tests.interop.harness import CallswitchServer, free_port, parse_logfmt  # noqa: E402

SMSC = REPO / "tests" / "interop" / "peers" / "smsc.pl"
TARGET_RATE = 1000  # messages/s accepted (issue 8)


class CallbackReceiver:
    """A minimal HTTP/1.1 server noting when each message's 'delivered' callback came."""

    def __init__(self) -> None:
        self.delivered: dict[str, float] = {}
        self.requests = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        return self.server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length) if length else b""
                now = time.monotonic()
                self.requests += 1
                fields = dict(parse_qsl(body.decode()))
                if fields.get("MessageStatus") == "delivered":
                    self.delivered.setdefault(fields.get("MessageSid", ""), now)
                writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def _post_loop(
    port: int,
    path: str,
    auth: str,
    bodies: asyncio.Queue,
    sent: dict[str, float],
    errors: list[str],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while True:
            try:
                body = bodies.get_nowait()
            except asyncio.QueueEmpty:
                return
            request = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Authorization: Basic {auth}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            started = time.monotonic()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            answer = await reader.readexactly(length)
            if status != 201:
                errors.append(f"{status} {answer[:200]!r}")
                continue
            marker = b'"sid":"'
            at = answer.find(marker)
            sid = answer[at + len(marker) : at + len(marker) + 34].decode()
            sent[sid] = started
    finally:
        writer.close()


def _store_view(path: Path) -> tuple[int, float, float, float, int] | None:
    """Delivered messages as the server recorded them: how many, their rate,
    created → delivered latency (independent of status callbacks), and how many
    messages reached a final status."""
    import sqlite3
    from datetime import datetime

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT date_created, date_updated FROM messages WHERE status = 'delivered'"
        ).fetchall()
        final = db.execute(
            "SELECT count(*) FROM messages WHERE status IN ('delivered', 'undelivered', 'failed')"
        ).fetchone()[0]
    if not rows:
        return None
    pairs = [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in rows]
    first = min(a for a, _ in pairs)
    last = max(b for _, b in pairs)
    latencies = [(b - a).total_seconds() for a, b in pairs]
    span = max((last - first).total_seconds(), 1e-9)
    return (
        len(pairs),
        len(pairs) / span,
        _percentile(latencies, 0.5) * 1000,
        _percentile(latencies, 0.99) * 1000,
        final,
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(args) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="sms-load-"))
    smsc_port = free_port()
    smsc_log = workdir / "smsc.log"
    smsc = subprocess.Popen(
        ["taskset", "-c", str(args.load_cpu), "perl", str(SMSC), str(smsc_port), str(smsc_log)]
        if args.smsc
        else ["sh", "-c", f"echo listening > {smsc_log}; sleep 3600"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = None
    try:
        while not smsc_log.exists() or "listening" not in smsc_log.read_text():
            await asyncio.sleep(0.05)
        server = CallswitchServer.start(
            workdir / "node",
            cpu=args.server_cpu,
            extra_args=(
                "--smpp",
                f"load=smpp://esme:secret@127.0.0.1:{smsc_port};window={args.window}",
                *results.TRUSTED_LOAD,
            ),
        )
        created = next(
            parse_logfmt(line) for line in server.lines() if "event=account.created" in line
        )
        account, token = created["account_sid"], created["auth_token"]
        os.sched_setaffinity(0, {args.load_cpu})
        receiver = CallbackReceiver()
        callback_port = await receiver.start()
        path = f"/2010-04-01/Accounts/{account}/Messages.json"
        auth = base64.b64encode(f"{account}:{token}".encode()).decode()
        bodies: asyncio.Queue = asyncio.Queue()
        for i in range(args.messages):
            params = [
                # Never ending in 9999: the test SMSC answers those with UNDELIV.
                ("To", f"+1555{i % 1_000_000:06d}1"),
                ("From", "+14155550100"),
                ("Body", f"load test message {i}"),
            ]
            if args.callbacks:
                params.append(("StatusCallback", f"http://127.0.0.1:{callback_port}/status"))
            bodies.put_nowait(urlencode(params).encode())
        sent: dict[str, float] = {}
        errors: list[str] = []
        print(
            f"callswitch pid {server.pid} on CPU {args.server_cpu}; SMSC (Net::SMPP) and "
            f"load on CPU {args.load_cpu}; {args.messages} messages over "
            f"{args.connections} connections, SMPP window {args.window}"
        )
        profiler = None
        if args.profile:
            profile_path = workdir / "py-spy.txt"
            profiler = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    "8",
                    "--gil",  # only the thread holding the GIL: where the CPU goes
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--output",
                    str(profile_path),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        cpu_start = _cpu_seconds(server.pid)
        start = time.monotonic()
        await asyncio.gather(
            *(
                _post_loop(server.http_port, path, auth, bodies, sent, errors)
                for _ in range(args.connections)
            )
        )
        posted = time.monotonic()
        cpu_posted = _cpu_seconds(server.pid)
        accepted = len(sent)
        submitted = 0
        deadline = posted + args.drain
        if not args.smsc:
            deadline = posted
        if args.callbacks:
            while len(receiver.delivered) < accepted and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            delivered_times = [receiver.delivered[s] for s in sent if s in receiver.delivered]
            latencies = [
                receiver.delivered[s] - t for s, t in sent.items() if s in receiver.delivered
            ]
            last = max(delivered_times) if delivered_times else posted
        else:
            while time.monotonic() < deadline:
                view = _store_view(server.data_dir / "callswitch.db")
                if view is not None and view[4] >= accepted:
                    break
                await asyncio.sleep(0.5)
            last = time.monotonic()
            latencies = []
            delivered_times = []
        submitted = smsc_log.read_text().count("\nsubmit\t")
        cpu_end = _cpu_seconds(server.pid)
        finished = time.monotonic()
        elapsed_post = posted - start
        print()
        print("| figure | value |")
        print("|---|---|")
        print(f"| messages posted | {args.messages} |")
        print(f"| accepted (201) | {accepted} ({len(errors)} errors) |")
        print(f"| accepted messages/s | {accepted / elapsed_post:,.0f} |")
        print(
            f"| server CPU while posting | {cpu_posted - cpu_start:.1f} s of "
            f"{elapsed_post:.1f} s ({1000 * (cpu_posted - cpu_start) / max(accepted, 1):.2f} "
            "ms per accepted message) |"
        )
        print(
            f"| server CPU in all (posting and delivering) | {cpu_end - cpu_start:.1f} s of "
            f"{finished - start:.1f} s ({1000 * (cpu_end - cpu_start) / max(accepted, 1):.2f} "
            "ms per message) |"
        )
        print(f"| submit_sm received by the SMSC | {submitted} |")
        if args.callbacks:
            print(f"| delivered callbacks | {len(delivered_times)} |")
            print(f"| delivered messages/s | {len(delivered_times) / (last - start):,.0f} |")
            for q in (0.5, 0.9, 0.99):
                value = _percentile(latencies, q) * 1000
                print(
                    f"| end-to-end p{int(q * 100)} (POST → delivered callback) | {value:,.0f} ms |"
                )
        else:
            print(f"| submitted messages/s | {submitted / (last - start):,.0f} |")
        store_view = _store_view(server.data_dir / "callswitch.db")
        if store_view:
            count, rate, p50, p99, _ = store_view
            print(f"| delivered in the store | {count} |")
            print(f"| delivered messages/s (store: first created → last delivered) | {rate:,.0f} |")
            print(
                f"| created → delivered p50 / p99 (store timestamps) | {p50:,.0f} / {p99:,.0f} ms |"
            )
        if errors:
            print("first errors:", errors[:3])
        if args.json:
            accepted_rate = accepted / elapsed_post
            delivered = len(delivered_times) if args.callbacks else submitted
            lost = 100 * (accepted - delivered) / accepted if accepted and args.smsc else None
            meets = accepted_rate >= TARGET_RATE and not errors and not lost
            level = results.level(
                round(accepted_rate),
                throughput=accepted_rate,
                throughput_unit="messages/s accepted",
                latency_p50_ms=_percentile(latencies, 0.5) * 1000 if latencies else None,
                latency_p99_ms=_percentile(latencies, 0.99) * 1000 if latencies else None,
                loss_pct=lost,
                cpu_pct=100 * (cpu_posted - cpu_start) / elapsed_post,
                meets=meets,
                messages=args.messages,
                errors=len(errors),
                delivered=delivered,
                delivered_per_s=delivered / (last - start) if delivered else None,
                cpu_ms_per_message=1000 * (cpu_end - cpu_start) / max(accepted, 1),
            )
            results.write(
                args.json,
                results.report(
                    "sms",
                    target={
                        "load": TARGET_RATE,
                        "unit": "messages/s accepted",
                        "status_callbacks": args.callbacks,
                        "latency": "POST sent to delivered callback",
                    },
                    levels=[level],
                    largest_passing=round(accepted_rate) if meets else None,
                ),
            )
        if profiler is not None:
            profiler.wait(30)
            print(f"\npy-spy profile (raw, collapsed stacks): {profile_path}")
        return 0
    finally:
        if server is not None:
            server.stop()
        smsc.terminate()
        smsc.wait(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--drain", type=float, default=120.0, help="seconds to wait for delivery")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--load-cpu", type=int, default=1)
    parser.add_argument("--no-callbacks", dest="callbacks", action="store_false")
    parser.add_argument(
        "--no-smsc",
        dest="smsc",
        action="store_false",
        help="no SMSC: messages stay queued; measures the API alone",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the server for 8 s")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        return asyncio.run(run(args))
    return uvloop.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
