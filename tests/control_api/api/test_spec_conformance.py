"""Every operation of Twilio's 2010-04-01 API that the app serves, checked against the spec.

The spec is Twilio's own OpenAPI file (tests/fixtures/twilio_api_v2010.json, trimmed of
prose by tests/fixtures/trim_twilio_spec.py). In scope are its operations in the voice,
messaging, usage and SIP families: all of the 2010-04-01 API except the regulatory
Addresses (with DependentPhoneNumbers) and Twilio Connect (ConnectApps,
AuthorizedConnectApps), 185 operations. An operation is served when the app has a route
of the same path template and method, so a new router's operations join the walk by
themselves.

The walk runs the app in process over a fresh SQLite store, with the message service and
billing, fake call and conference engines, and a recordings directory. It seeds what only
the engine writes (calls, conferences, participants, recordings, usage) and creates the
rest through the API itself, from the spec's required parameters; then it calls every
served operation with valid data: creates first, then fetches and lists, updates, and
deletes last (children before parents, each on an instance of its own). Each answer's
status must be one the spec lists for the operation, and every field of its body must
match the spec's schema: each field the spec names present, no field it does not name,
types, enums, nullability and SID patterns. Every ``subresource_uris`` entry must have a
route, and a resource must list each of Twilio's subresources the app has a route for.

``python -m tests.control_api.api.test_spec_conformance`` prints the report.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import compile_path

from control_api.api import create_app
from control_api.api.tokens import IceServers
from control_api.call_log import CallLog
from control_api.http_client import HttpResponse
from control_api.sids import new_sid, utcnow
from control_api.sms.service import Messaging
from control_api.store import (
    Account,
    CallRecord,
    ConferenceRecord,
    ParticipantRecord,
    QueueMember,
    RecordingRecord,
    Store,
    TranscriptionRecord,
)
from control_api.usage.billing import Billing
from control_api.voice.validation import NewValidation
from control_api.webhooks import Exchange, Outbox, WebhookClient
from tests.control_api.api.conftest import FakeLiveCalls
from tests.control_api.api.routing_server import FakeLiveConferences
from tests.control_api.api.sms_server import FakeCarrier

SPEC_FILE = Path(__file__).parents[2] / "fixtures" / "twilio_api_v2010.json"
SPEC: dict = json.loads(SPEC_FILE.read_text())
METHODS = ("get", "post", "delete")
# The 2010-04-01 resources outside voice, messaging, usage and SIP (the segment after
# /Accounts/{AccountSid}/): regulatory addresses and Twilio Connect.
OUT_OF_SCOPE = frozenset({"Addresses", "ConnectApps", "AuthorizedConnectApps"})
IN_SCOPE_COUNT = 185
HOOK = "https://example.com/hook"
# Request parameters beyond the spec's required ones that an operation needs to succeed
# (Twilio documents them as "one of" choices, which the spec cannot mark required).
EXTRA_PARAMS: dict[tuple[str, str], dict[str, str]] = {
    ("post", "/Calls.json"): {"Url": HOOK},
    ("post", "/Calls/{Sid}.json"): {"Url": HOOK},
    ("post", "/Messages.json"): {"Body": "conformance"},
    ("post", "/Messages/{Sid}.json"): {"Body": ""},
    ("post", "/IncomingPhoneNumbers.json"): {"PhoneNumber": "{number}"},
    ("post", "/Conferences/{Sid}.json"): {"Status": "completed"},
    ("post", "/Conferences/{ConferenceSid}/Participants/{CallSid}.json"): {"Muted": "true"},
    ("post", "/Calls/{CallSid}/Streams.json"): {"Url": "wss://example.com/stream"},
    ("post", "/Calls/{CallSid}/Streams/{Sid}.json"): {"Status": "stopped"},
    ("post", "/Calls/{CallSid}/Recordings/{Sid}.json"): {"Status": "paused"},
    ("post", "/Conferences/{ConferenceSid}/Recordings/{Sid}.json"): {"Status": "paused"},
    ("post", "/Queues/{QueueSid}/Members/{CallSid}.json"): {"Url": HOOK},
}
# Values for required parameters by name; "{number}" is a fresh number of our own.
PARAM_VALUES = {
    "To": "+15550100001",  # the fake carrier's prefix: messages to it are delivered
    "From": "{own}",
    "PhoneNumber": "{number}",
    "FriendlyName": "{name}",
    "Username": "{user}",
    "Password": "Conformance1234",
    "DomainName": "{domain}",
    "IpAddress": "192.0.2.10",
    "TriggerValue": "100",
    "UsageCategory": "calls",
}


# -- the spec -------------------------------------------------------------------------


def in_scope(path: str) -> bool:
    parts = path.split("/")
    if parts[2] != "Accounts" or len(parts) < 5:
        return True  # Accounts.json, Accounts/{Sid}.json
    return parts[4].removesuffix(".json") not in OUT_OF_SCOPE


def in_scope_operations() -> list[tuple[str, str]]:
    return [
        (method, path)
        for path, item in SPEC["paths"].items()
        if in_scope(path)
        for method in METHODS
        if method in item
    ]


def resolve(schema: dict) -> dict:
    """``schema`` with its ``$ref`` followed (siblings of the reference kept)."""
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        rest = {key: value for key, value in schema.items() if key != "$ref"}
        schema = SPEC["components"]["schemas"][name] | rest
    return schema


DECIMAL = re.compile(r"-?\d+(\.\d+)?")
# Where Twilio's own answers (and the examples in its spec) differ from its schemas:
# ``number`` fields such as prices are sent as decimal strings ("price": "2192.84855"),
# and a field whose schema is an enum is null while it has no value (a conference's
# ``reason_conference_ended`` while it runs), though no enum schema says nullable.
TYPES: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: (
        (isinstance(v, int | float) and not isinstance(v, bool))
        or (isinstance(v, str) and DECIMAL.fullmatch(v) is not None)
    ),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}


def mismatches(value: Any, schema: dict, where: str) -> list[str]:
    """How ``value`` differs from ``schema``: one line per difference."""
    schema = resolve(schema)
    if value is None:
        if schema.get("nullable") or "enum" in schema:
            return []
        return [f"{where}: null where the spec has no null"]
    kind = schema.get("type")
    if kind in TYPES and not TYPES[kind](value):
        return [f"{where}: {type(value).__name__} {value!r} where the spec has {kind}"]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        found.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict) and schema.get("properties"):
        names = schema["properties"]
        found += [f"{where}.{name}: missing" for name in sorted(names.keys() - value.keys())]
        found += [f"{where}.{name}: not in the spec" for name in sorted(value.keys() - names)]
        for name in sorted(names.keys() & value.keys()):
            found += mismatches(value[name], names[name], f"{where}.{name}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            found += mismatches(item, schema["items"], f"{where}[{index}]")
    return found


# Twilio's subresource_uris of each resource (its spec's examples): name -> path under the
# resource. The app must list each one it has a route for (and, checked apart, no other).
_ACCOUNT_SUBRESOURCES = {
    "addresses": "Addresses.json",
    "applications": "Applications.json",
    "authorized_connect_apps": "AuthorizedConnectApps.json",
    "available_phone_numbers": "AvailablePhoneNumbers.json",
    "balance": "Balance.json",
    "calls": "Calls.json",
    "conferences": "Conferences.json",
    "connect_apps": "ConnectApps.json",
    "incoming_phone_numbers": "IncomingPhoneNumbers.json",
    "keys": "Keys.json",
    "messages": "Messages.json",
    "notifications": "Notifications.json",
    "outgoing_caller_ids": "OutgoingCallerIds.json",
    "queues": "Queues.json",
    "recordings": "Recordings.json",
    "short_codes": "SMS/ShortCodes.json",
    "signing_keys": "SigningKeys.json",
    "sip": "SIP.json",
    "transcriptions": "Transcriptions.json",
    "usage": "Usage.json",
}
_CALL_SUBRESOURCES = {
    "events": "Events.json",
    "notifications": "Notifications.json",
    "payments": "Payments.json",
    "recordings": "Recordings.json",
    "siprec": "Siprec.json",
    "streams": "Streams.json",
    "transcriptions": "Transcriptions.json",
    "user_defined_message_subscriptions": "UserDefinedMessageSubscriptions.json",
    "user_defined_messages": "UserDefinedMessages.json",
}
SUBRESOURCES: dict[str, dict[str, str]] = {
    "/2010-04-01/Accounts/{Sid}.json": _ACCOUNT_SUBRESOURCES,
    "/Calls/{Sid}.json": _CALL_SUBRESOURCES,
    "/Conferences/{Sid}.json": {
        "participants": "Participants.json",
        "recordings": "Recordings.json",
    },
    "/Messages/{Sid}.json": {"media": "Media.json", "feedback": "Feedback.json"},
    "/Recordings/{Sid}.json": {
        "add_on_results": "AddOnResults.json",
        "transcriptions": "Transcriptions.json",
    },
    "/SIP/CredentialLists/{Sid}.json": {"credentials": "Credentials.json"},
    "/SIP/Domains/{Sid}.json": {
        "credential_list_mappings": "CredentialListMappings.json",
        "ip_access_control_list_mappings": "IpAccessControlListMappings.json",
    },
    "/SIP/IpAccessControlLists/{Sid}.json": {"ip_addresses": "IpAddresses.json"},
}

# Fields the spec names that Twilio itself leaves out, each with the reason.
ALLOWED = {
    "POST /Tokens.json.ice_servers[].credential: missing": "STUN servers have no credentials",
    "POST /Tokens.json.ice_servers[].username: missing": "STUN servers have no credentials",
}


def allowed(problem: str) -> bool:
    return re.sub(r"\[\d+\]", "[]", problem) in ALLOWED


def subresource_uris(body: Any) -> Iterator[tuple[str, str]]:
    """(name, URI) of every ``subresource_uris`` entry anywhere in ``body``."""
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "subresource_uris" and isinstance(value, dict):
                yield from ((name, uri) for name, uri in value.items() if isinstance(uri, str))
            else:
                yield from subresource_uris(value)
    elif isinstance(body, list):
        for item in body:
            yield from subresource_uris(item)


def template(path: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", path)


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # parameters as {}
    regex: re.Pattern[str]


def app_routes(app: Any) -> list[Route]:
    """Every route of ``app``, included routers' too."""

    def walk(routes: list, prefix: str) -> Iterator[Route]:
        for route in routes:
            if isinstance(route, APIRoute):
                regex = compile_path(prefix + route.path)[0]
                for method in route.methods:
                    yield Route(method.lower(), template(prefix + route.path), regex)
            elif hasattr(route, "original_router"):  # FastAPI's included router
                context = getattr(route, "include_context", None)
                yield from walk(
                    route.original_router.routes, prefix + getattr(context, "prefix", "")
                )

    return list(walk(app.routes, ""))


def serving(routes: list[Route], method: str, path: str) -> str | None:
    """How ``app`` serves an operation: "exact" (a route has its path template),
    "covered" (a route with a parameter where the spec has a fixed word takes its path:
    ``Usage/Records/{view}.json`` for ``Usage/Records/Daily.json``) or None."""
    if any(r.method == method and r.template == template(path) for r in routes):
        return "exact"
    concrete = re.sub(r"\{[^}]*\}", "X0", path)
    if any(r.method == method and r.regex.match(concrete) for r in routes):
        return "covered"
    return None


def local(path: str) -> str:
    """The path after /Accounts/{AccountSid} (the account's own paths unchanged)."""
    return path.split("/Accounts/{AccountSid}", 1)[1] if "{AccountSid}" in path else path


def is_instance(path: str) -> bool:
    return path.endswith("}.json")


def wav_bytes() -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(bytes(range(256)) * 16)
    return buffer.getvalue()


# -- the walk -------------------------------------------------------------------------


@dataclass
class Answer:
    method: str
    path: str
    status: int
    problems: list[str]


@dataclass
class Report:
    in_scope: list[tuple[str, str]]
    served: list[tuple[str, str]]
    answers: list[Answer] = field(default_factory=list)
    not_exercised: dict[tuple[str, str], str] = field(default_factory=dict)
    # Every in-scope operation called with SIDs of nobody's and no parameters: its status.
    probes: dict[tuple[str, str], int] = field(default_factory=dict)

    def summary(self) -> str:
        return f"served {len(self.served)} of {len(self.in_scope)}"

    def text(self) -> str:
        lines = [self.summary()]
        for answer in self.answers:
            state = "ok" if not answer.problems else "MISMATCH"
            lines.append(f"{state:8} {answer.status} {answer.method.upper():6} {answer.path}")
            lines += [f"           {problem}" for problem in answer.problems]
        for (method, path), why in self.not_exercised.items():
            lines.append(f"NOT RUN  {method.upper():6} {path}: {why}")
        not_served = sorted(set(self.in_scope) - set(self.served), key=lambda o: (o[1], o[0]))
        lines.append(f"not served ({len(not_served)}):")
        lines += [f"  {method.upper():6} {local(path)}" for method, path in not_served]
        return "\n".join(lines)


class NoInstance(Exception):
    """No instance of a collection could be found or made."""


class Walk:
    """Calls the served operations of the spec against one app, as one account."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        store: Store,
        live_calls: FakeLiveCalls,
        live_conferences: FakeLiveConferences,
        billing: Billing,
        account: Account,
        root: Path,
        routes: list[Route],
    ) -> None:
        self.http = http
        self.routes = routes
        self.store = store
        self.live_calls = live_calls
        self.live_conferences = live_conferences
        self.billing = billing
        self.account = account
        self.root = root
        self.numbers = itertools.count(4_000_000)
        self.names = itertools.count(1)
        self.live_call = ""
        self.own_number = ""
        self.cache: dict[str, str] = {}  # concrete collection path -> an instance's sid
        self.links: dict[str, int] = {}  # subresource URI -> the status it answered
        self.served: set[tuple[str, str]] = set()
        self.prefixes = self._sid_prefixes()

    @staticmethod
    def _sid_prefixes() -> dict[str, str]:
        """SID prefix (``CL``) -> the template of the collection its resources are in."""
        prefixes = {}
        for path, item in SPEC["paths"].items():
            if not path.endswith("/{Sid}.json"):
                continue
            for operation in (item.get(m) for m in METHODS):
                for parameter in (operation or {}).get("parameters", []):
                    pattern = parameter["schema"].get("pattern", "")
                    if parameter["name"] == "Sid" and pattern.startswith("^"):
                        collection = path.removesuffix("/{Sid}.json")
                        known = prefixes.get(pattern[1:3])
                        # The top-level collection (IpAccessControlLists), not a mapping of
                        # it under another resource (a domain's IpAccessControlListMappings).
                        if known is None or collection.count("{") < known.count("{"):
                            prefixes[pattern[1:3]] = collection
        return prefixes

    def fill(self, text: str) -> str:
        if text == "{number}":
            return self.new_number()
        if text == "{own}":
            return self.own_number
        if text == "{name}":
            return f"conformance {next(self.names)}"
        if text == "{user}":
            return f"user{next(self.names)}"
        if text == "{domain}":
            return f"conformance{next(self.names)}.sip.example.com"
        return text

    def new_number(self) -> str:
        return f"+1415{next(self.numbers):07d}"

    # what only the call engine writes

    async def seed(self) -> None:
        number = await self.request(
            "post", "/IncomingPhoneNumbers.json", {"PhoneNumber": self.new_number()}
        )
        self.own_number = number["phone_number"]
        call = await self.insert_call("in-progress")
        self.live_call = call.sid
        completed = await self.insert_call("completed", duration=61)
        await self.billing_call(completed)
        conference = await self.store.conferences.insert(
            ConferenceRecord(
                sid=new_sid("CF"),
                account_sid=self.account.sid,
                friendly_name="conformance",
                status="in-progress",
            )
        )
        await self.insert_participant(conference.sid)
        # Both are being recorded (Calls/{CA}/Recordings, <Conference record>).
        self.live_calls.recordings[call.sid] = await self.insert_recording(
            call_sid=call.sid, status="in-progress"
        )
        self.live_conferences.recordings[conference.sid] = await self.insert_recording(
            conference_sid=conference.sid, status="in-progress"
        )
        await self.insert_call_log(call.sid)

    async def insert_call(self, status: str, **fields: Any) -> CallRecord:
        record = CallRecord(
            sid=new_sid("CA"),
            account_sid=self.account.sid,
            to="+15550100002",
            from_=self.own_number,
            direction="outbound-api",
            status=status,
            **fields,
        )
        call = await self.store.calls.insert(record)
        if status == "in-progress":
            self.live_calls.live.add(call.sid)
        return call

    async def billing_call(self, call: CallRecord) -> None:
        await self.billing.call_finished(
            sid=call.sid,
            account_sid=self.account.sid,
            direction=call.direction,
            to=call.to,
            from_=call.from_,
            status="completed",
            duration_s=61,
        )

    async def insert_participant(self, conference_sid: str) -> str:
        call = await self.insert_call("in-progress")
        await self.store.participants.insert(
            ParticipantRecord(
                conference_sid=conference_sid, call_sid=call.sid, account_sid=self.account.sid
            )
        )
        return call.sid

    async def insert_recording(self, status: str = "completed", **fields: Any) -> str:
        sid = new_sid("RE")
        relative = f"{self.account.sid}/{sid}.wav"
        (self.root / self.account.sid).mkdir(parents=True, exist_ok=True)
        (self.root / relative).write_bytes(wav_bytes())
        record = RecordingRecord(
            sid=sid,
            account_sid=self.account.sid,
            status=status,
            duration=1,
            file_path=relative,
            **fields,
        )
        await self.store.recordings.insert(record)
        return sid

    async def insert_call_log(self, call_sid: str) -> str:
        """A notification of the call and an event (what the call log writes)."""
        log = CallLog(self.store)
        log.exchanged(
            Exchange(HOOK, "POST", [("CallSid", call_sid), ("AccountSid", self.account.sid)],
                     HttpResponse(500, [(b"content-type", b"text/plain")], b"oops"), 0.1)
        )  # fmt: skip
        log.problem(account_sid=self.account.sid, call_sid=call_sid, code=11200, text="HTTP 500")
        await log.flush()
        sid = (await self.store.notifications.page(self.account.sid, limit=1))[0].sid
        return sid

    async def fresh_seed(self, collection: str, values: dict[str, str]) -> str | None:
        """A new instance of an engine-written collection (``None``: not one of those)."""
        name = collection.rsplit("/", 1)[1]
        if collection == "/Calls":
            return (await self.insert_call("completed")).sid
        if name == "Notifications":
            return await self.insert_call_log(values.get("CallSid") or self.live_call)
        if name == "Participants":
            return await self.insert_participant(values["ConferenceSid"])
        if name == "Recordings" and values.get("CallSid"):  # the live call's running one
            call_sid = values["CallSid"]
            sid = await self.insert_recording(call_sid=call_sid, status="in-progress")
            self.live_calls.live.add(call_sid)
            self.live_calls.recordings[call_sid] = sid
            return sid
        if name == "Recordings":
            return await self.insert_recording(conference_sid=values.get("ConferenceSid"))
        if name == "Members":  # a live call waiting in the queue, as <Enqueue> leaves it
            call = await self.insert_call("in-progress")
            await self.store.queue_members.add(
                QueueMember(
                    queue_sid=values["QueueSid"],
                    call_sid=call.sid,
                    account_sid=self.account.sid,
                    date_enqueued=utcnow(),
                )
            )
            return call.sid
        if name == "OutgoingCallerIds":  # a validation call verified one
            return (await self.store.caller_ids.verified(self.account.sid, self.new_number())).sid
        if name == "Transcriptions":  # <Record transcribe> wrote one
            recording_sid = values.get("RecordingSid") or await self.insert_recording()
            now = utcnow()
            record = TranscriptionRecord(
                sid=new_sid("TR"),
                account_sid=self.account.sid,
                recording_sid=recording_sid,
                status="completed",
                transcription_text="hello",
                duration=1,
                date_created=now,
                date_updated=now,
            )
            await self.store.transcriptions.insert(record)
            return record.sid
        if name == "Media":  # an MMS brought one
            media = await self.store.message_media.add(
                self.account.sid, values["MessageSid"], "image/png", b"\x89PNG"
            )
            return media.sid
        return None

    # instances

    def concrete(self, path: str, values: dict[str, str]) -> str:
        return re.sub(r"\{([^}]*)\}", lambda m: values[m.group(1)], path)

    async def values_for(self, method: str, path: str) -> dict[str, str]:
        """A value for each parameter in ``path``: fresh for the last one of a delete."""
        values = {"AccountSid": self.account.sid}
        if "{AccountSid}" not in path and "{Sid}" in path:  # Accounts/{Sid}.json
            return {"Sid": self.account.sid}
        for match in re.finditer(r"/\{(\w+)\}", local(path)):
            name = match.group(1)
            collection = local(path)[: match.start()]
            last = match.end() == len(local(path)) - len(".json")
            fresh = method == "delete" and last
            values[name] = await self.instance(collection, values, fresh=fresh)
        return values

    async def instance(self, collection: str, values: dict[str, str], *, fresh: bool) -> str:
        """The SID of an instance in ``collection`` (a local template, e.g. /Calls)."""
        if collection == "/Calls" and not fresh:
            return self.live_call
        where = self.concrete(collection, values)
        if not fresh and where in self.cache:
            return self.cache[where]
        sid = await self.fresh_seed(collection, values) if fresh else None
        if sid is None and not fresh:
            sid = await self.first_listed(collection, values)
        if sid is None and ("post", collection + ".json") in self.served:
            created = await self.create(collection + ".json", values, fresh=fresh)
            sid = created.get("sid") or created.get("call_sid")
            if fresh and created.get("status") in ("accepted", "queued", "sending"):
                await self.settled(self.concrete(collection, values) + f"/{sid}.json")
        if sid is None:
            sid = await self.fresh_seed(collection, values)
        if sid is None:
            raise NoInstance(
                f"nothing in {collection} and no way to make one: the API creates none, so"
                " Walk.fresh_seed should write one as the engine does"
            )
        if not fresh:
            self.cache[where] = sid
        return sid

    async def settled(self, path: str) -> None:
        """Wait (5 s at most) until the resource at ``path`` is no longer on its way."""
        for _ in range(100):
            if (await self.request("get", path)).get("status") not in ("queued", "sending"):
                return
            await asyncio.sleep(0.05)

    async def first_listed(self, collection: str, values: dict[str, str]) -> str | None:
        if ("get", collection + ".json") not in self.served:
            return None
        body = await self.request("get", self.concrete(collection, values) + ".json")
        for value in body.values():
            if isinstance(value, list) and value:
                return value[0].get("sid") or value[0].get("call_sid")
        return None

    async def create(self, path: str, values: dict[str, str], *, fresh: bool = False) -> dict:
        params = await self.params(path, fresh=fresh)
        return await self.request("post", self.concrete(path, values), params)

    async def params(self, path: str, method: str = "post", *, fresh: bool = False) -> dict:
        """Valid request parameters for ``method path``: the required ones and extras.

        ``fresh``: each SID among them names a new instance, so a new mapping of a
        credential list to a domain maps a list not mapped there yet.
        """
        operation = SPEC["paths"]["/2010-04-01/Accounts/{AccountSid}" + path][method]
        body = operation.get("requestBody", {}).get("content", {})
        schema = body.get("application/x-www-form-urlencoded", {}).get("schema", {})
        params = {}
        for name in schema.get("required", []):
            params[name] = await self.value_for(name, schema["properties"][name], fresh=fresh)
        params |= EXTRA_PARAMS.get((method, path), {})
        if path == "/Messages.json":
            params["From"] = "{own}"
        return {name: self.fill(value) for name, value in params.items()}

    async def value_for(self, name: str, schema: dict, *, fresh: bool = False) -> str:
        schema = resolve(schema)
        pattern = schema.get("pattern", "")
        if pattern.startswith("^") and pattern[1:3] in self.prefixes:
            collection = local(self.prefixes[pattern[1:3]])
            return await self.instance(collection, {"AccountSid": self.account.sid}, fresh=fresh)
        if name in PARAM_VALUES:
            return PARAM_VALUES[name]
        if schema.get("format") == "uri":
            return HOOK
        if schema.get("format") == "phone-number":
            return self.new_number()
        if "enum" in schema:
            return str(schema["enum"][0])
        return "conformance"

    async def request(self, method: str, path: str, params: dict | None = None) -> dict:
        """``method path`` with the account's credentials; the body, or {} if none."""
        if not path.startswith("/2010-04-01/"):
            path = f"/2010-04-01/Accounts/{self.account.sid}{path}"
        response = await self.http.request(
            method.upper(),
            path,
            data=params if method == "post" else None,
            auth=(self.account.sid, self.account.auth_token),
        )
        if response.status_code >= 300:
            raise NoInstance(
                f"{method.upper()} {path} answered {response.status_code}: {response.text[:300]}"
            )
        return response.json() if response.content else {}

    # the operations

    async def call(self, method: str, path: str) -> Answer:
        values = await self.values_for(method, path)
        params = None
        if method == "post":
            params = await self.params(local(path), method) if "{AccountSid}" in path else {}
        response = await self.http.request(
            method.upper(),
            self.concrete(path, values),
            data=params,
            auth=(self.account.sid, self.account.auth_token),
        )
        operation = SPEC["paths"][path][method]
        status = str(response.status_code)
        where = f"{method.upper()} {local(path)}"
        if status not in operation["responses"]:
            listed = ", ".join(operation["responses"])
            return Answer(
                method,
                path,
                response.status_code,
                [f"{where}: status {status} (the spec has {listed}): {response.text[:300]}"],
            )
        content = operation["responses"][status].get("content", {})
        if "application/json" not in content:
            problems = [f"{where}: a body where the spec has none"] if response.content else []
            return Answer(method, path, response.status_code, problems)
        body = response.json()
        schema = content["application/json"]["schema"]
        problems = [p for p in mismatches(body, schema, where) if not allowed(p)]
        if method == "get":
            problems += await self.dead_links(body, where)
            problems += self.unlisted_subresources(path, body, where)
        return Answer(method, path, response.status_code, problems)

    def unlisted_subresources(self, path: str, body: Any, where: str) -> list[str]:
        """Twilio's subresources of this resource that the app serves and does not list."""
        known = SUBRESOURCES.get(local(path), {})
        listed = set(body.get("subresource_uris") or {})
        base = path.removesuffix(".json")
        return [
            f"{where}: subresource_uris.{name} missing, though the app serves {relative}"
            for name, relative in sorted(known.items())
            if name not in listed
            and any(r.template == template(f"{base}/{relative}") for r in self.routes)
        ]

    async def probe(self, method: str, path: str) -> int:
        """The status of ``method path`` with a well-formed SID of nobody's for each path
        parameter but the account, and no request parameters."""
        values = {}
        for parameter in SPEC["paths"][path][method].get("parameters", []):
            name = parameter["name"]
            if parameter["in"] != "path":
                continue
            if name == "AccountSid" or path == "/2010-04-01/Accounts/{Sid}.json":
                values[name] = self.account.sid
            else:
                pattern = parameter["schema"].get("pattern", "")
                prefix = pattern[1:3] if pattern.startswith("^") else "XX"
                values[name] = prefix + "0" * 32
        response = await self.http.request(
            method.upper(),
            self.concrete(path, values),
            data={} if method == "post" else None,
            auth=(self.account.sid, self.account.auth_token),
        )
        return response.status_code

    async def dead_links(self, body: Any, where: str) -> list[str]:
        """Each ``subresource_uris`` entry in ``body`` without a route (one per name).

        A GET answering 405 has a route: a call's ``Streams.json`` takes only POST.
        """
        dead = {}
        for name, uri in sorted(subresource_uris(body)):
            if uri not in self.links:
                auth = (self.account.sid, self.account.auth_token)
                self.links[uri] = (await self.http.get(uri, auth=auth)).status_code
            if self.links[uri] not in (200, 405):
                dead[name] = f"{where}: subresource_uris.{name} {uri} answers {self.links[uri]}"
        return list(dead.values())


class InstantValidations:
    """Validation calls the callee answers with the right code at once."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def start(self, account_sid: str, new: NewValidation) -> str:
        await self.store.caller_ids.verified(account_sid, new.phone_number, new.friendly_name)
        return new_sid("CA")


def order(operation: tuple[str, str]) -> tuple[int, int, str]:
    """Creates, then reads, then updates, then deletes (the deepest first)."""
    method, path = operation
    rank = {"post": 2 if is_instance(path) else 0, "get": 1, "delete": 3}[method]
    depth = path.count("/") if method == "delete" else -path.count("/")
    return rank, -depth, path


async def walk_spec(root: Path) -> Report:
    store = await Store.open(f"sqlite:///{root / 'callswitch.db'}")
    webhooks = WebhookClient()
    outbox = Outbox(store, webhooks, store.accounts.auth_token)
    billing = Billing(store, store.billing, outbox)
    carrier = FakeCarrier()
    messaging = Messaging(store, outbox, webhooks, billing=billing, carriers=[carrier])
    carrier.events = messaging.events
    live_calls = FakeLiveCalls(store=store)
    live_conferences = FakeLiveConferences()
    app = create_app(
        store,
        live_calls,
        live_conferences=live_conferences,
        recordings_dir=root / "recordings",
        ice_servers=IceServers(secret="conformance", host="127.0.0.1"),
        messaging=messaging,
        billing=billing,
        caller_id_validations=InstantValidations(store),
    )
    routes = app_routes(app)
    operations = in_scope_operations()
    how = {op: serving(routes, *op) for op in operations}
    report = Report(operations, [op for op in operations if how[op]])
    messaging.start()
    try:
        # An exception in the app answers 500, as under uvicorn, rather than ending the walk.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
            account = await store.accounts.create("conformance")
            walk = Walk(
                http,
                store,
                live_calls,
                live_conferences,
                billing,
                account,
                root / "recordings",
                routes,
            )
            walk.served = {(m, local(p)) for m, p in report.served}
            await walk.seed()
            for method, path in sorted(report.served, key=order):
                try:
                    answer = await walk.call(method, path)
                except NoInstance as why:
                    report.not_exercised[(method, path)] = str(why)
                    continue
                if how[(method, path)] == "covered" and answer.status in (404, 405):
                    report.served.remove((method, path))  # a route for other paths
                else:
                    report.answers.append(answer)
            for method, path in operations:
                report.probes[(method, path)] = await walk.probe(method, path)
    finally:
        await messaging.stop()
        await store.close()
    return report


# -- the tests ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    report = asyncio.run(walk_spec(tmp_path_factory.mktemp("conformance")))
    print(f"\n{report.summary()} in-scope operations of the 2010-04-01 spec")
    return report


def test_the_scope_is_the_voice_messaging_usage_and_sip_operations():
    assert len(in_scope_operations()) == IN_SCOPE_COUNT


def test_no_served_operation_answers_5xx(report):
    failed = [a for a in report.answers if a.status >= 500]
    assert not failed, report.text()


def test_no_operation_answers_5xx_to_sids_of_nobodys(report):
    failed = {op: status for op, status in report.probes.items() if status >= 500}
    assert not failed, failed


def test_every_served_operation_answers_as_the_spec_says(report):
    assert report.answers, report.summary()
    assert not [a for a in report.answers if a.problems], report.text()


def test_every_served_operation_is_exercised(report):
    assert not report.not_exercised, report.text()


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        print(asyncio.run(walk_spec(Path(directory))).text())
