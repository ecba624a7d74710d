"""``callswitch serve --database-url postgresql://…`` keeps its state in PostgreSQL.

A real callswitch process on a fresh database of the test cluster (tests/pg.py): the
official twilio library provisions a number, SIPp calls it, the Calls API lists the
call; then the process is stopped and a second one starts with an EMPTY data
directory on the same database, and still has the account, the number and the call.
"""

from __future__ import annotations

import time

from twilio.rest import Client

from .harness import CallswitchServer
from .sipp import run_sipp
from .test_voice_webhooks import credentials, rest_client
from .webhook_app import WebhookApp, twiml

NUMBER = "+15005550142"


def test_serve_on_postgresql_keeps_numbers_and_calls_across_restarts(
    pg_cluster, sipp_bin, rtp_sink, tmp_path
):
    url = pg_cluster.create_database("serve")
    try:
        with WebhookApp() as app:
            app.routes["/voice"] = lambda r: twiml("<Say>Stored in PostgreSQL.</Say><Hangup/>")
            first = CallswitchServer.start(tmp_path / "first", extra_args=("--database-url", url))
            try:
                sid, token = credentials(first)
                client = rest_client(first, sid, token)
                number = client.incoming_phone_numbers.create(
                    phone_number=NUMBER, voice_url=app.url("/voice")
                )
                assert client.calls.list() == []
                result = run_sipp(
                    "uac_wait_bye.xml",
                    first.sip_target,
                    workdir=tmp_path / "sipp",
                    sipp=sipp_bin,
                    service=NUMBER.lstrip("+"),
                    keys={"sink_port": rtp_sink.port},
                    calls=1,
                    timeout=20,
                )
                assert result.ok(1), result.describe()
                call = _completed_call(client)
                assert call.to == NUMBER and call.direction == "inbound"
            finally:
                problems = first.stop()
            assert not problems, problems
            assert not (first.data_dir / "callswitch.db").exists(), "wrote the SQLite file"

            # A new node: nothing on its disk, everything in the database.
            second = CallswitchServer.start(tmp_path / "second", extra_args=("--database-url", url))
            try:
                assert not second.events("account.created"), "the account was not kept"
                client = rest_client(second, sid, token)
                [kept] = client.incoming_phone_numbers.list(phone_number=NUMBER)
                assert kept.sid == number.sid and kept.voice_url == app.url("/voice")
                [listed] = client.calls.list()
                assert listed.sid == call.sid and listed.status == "completed"
                assert listed.duration == call.duration
            finally:
                problems = second.stop()
            assert not problems, problems
    finally:
        pg_cluster.drop_database(url)


def _completed_call(client: Client):
    """The one call, once the engine has written its final status."""
    deadline = time.monotonic() + 10
    calls = []
    while time.monotonic() < deadline:
        calls = client.calls.list()
        if len(calls) == 1 and calls[0].status == "completed":
            return calls[0]
        time.sleep(0.1)
    raise AssertionError(f"no completed call listed: {[(c.sid, c.status) for c in calls]}")
