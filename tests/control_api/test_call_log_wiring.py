"""The call log wired as callswitch wires it (the webhook client's ``on_exchange``, the
outbox's ``on_failed``) over a real store and a real HTTP server: a status callback
answered 404 is a 15003 warning of its call, and the request one of its events."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import parse_qs

from control_api.call_log import CallLog
from control_api.sids import new_sid
from control_api.store import Store
from control_api.webhooks import Outbox, WebhookClient


async def answering_404() -> tuple[asyncio.Server, str]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        body = b"no such page"
        writer.write(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/status"


async def test_a_failing_status_callback_is_logged_on_its_call(tmp_path: Path):
    server, url = await answering_404()
    store = await Store.open(f"sqlite:///{tmp_path / 'callswitch.db'}")
    client = WebhookClient(timeout=2)
    outbox = Outbox(store, client, store.accounts.auth_token)
    call_log = CallLog(store)
    client.on_exchange = call_log.exchanged
    outbox.on_failed = call_log.callback_failed
    try:
        account = await store.accounts.create("main")
        call_sid = new_sid("CA")
        params = [("CallSid", call_sid), ("AccountSid", account.sid), ("CallStatus", "completed")]
        await outbox.enqueue(
            account_sid=account.sid, url=url, method="POST", params=params, call_sid=call_sid
        )
        assert await outbox.deliver_due() == 1
        await call_log.flush()
        [note] = await store.notifications.page(account.sid, call_sid=call_sid)
        assert note.error_code == "15003" and note.log == 1
        assert note.request_url == url and note.request_method == "POST"
        assert note.response_body == "no such page"
        assert parse_qs(note.message_text)["httpResponse"] == ["404"]
        [event] = await store.call_events.page(account.sid, call_sid)
        assert event.response_code == 404 and event.request_url == url
        assert ["CallStatus", "completed"] in event.request_parameters
    finally:
        await call_log.stop()
        await client.close()
        await store.close()
        server.close()
