"""The registrar (RFC 3261 §10.3) behind a socket-less user agent, with a fake clock."""

from __future__ import annotations

import asyncio
import email.utils
import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sip.auth import Authenticator, Challenge, authorize, ha1
from sip.headers import SipUri
from sip.message import Response
from sip.parser import parse_message
from sip.registrar import Account, Binding, Registrar
from sip.ua import UserAgent
from tests.sip.test_ua import Clock, FakeFlow

REALM = "callswitch"
SECRET = b"0123456789abcdef-registrar-tests"
PASSWORD = "secret"
NAT_SOURCE = ("203.0.113.7", 40000)

_branches = itertools.count(1)


def account(user: str = "alice", password: str = PASSWORD, *, sha256: bool = True) -> Account:
    return Account(
        ha1_md5=ha1(user, REALM, password, "MD5"),
        ha1_sha256=ha1(user, REALM, password, "SHA-256") if sha256 else None,
        owner=f"AC-{user}",
    )


def register(
    user: str = "alice",
    *,
    contacts: tuple[str, ...] = ("<sip:alice@10.0.0.1:5062>",),
    expires: str | None = None,
    call_id: str = "reg-1@10.0.0.1",
    cseq: int = 1,
    authorization: str | None = None,
    via_host: str = "10.0.0.1:5062",
    transport: str = "UDP",
    extra: str = "",
) -> bytes:
    lines = [
        "REGISTER sip:127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/{transport} {via_host};branch=z9hG4bK-r{next(_branches)};rport",
        "Max-Forwards: 70",
        f"From: <sip:{user}@127.0.0.1>;tag=f1",
        f"To: <sip:{user}@127.0.0.1>",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} REGISTER",
        "User-Agent: test-phone/1.0",
        *(f"Contact: {c}" for c in contacts),
    ]
    if expires is not None:
        lines.append(f"Expires: {expires}")
    if authorization is not None:
        lines.append(f"Authorization: {authorization}")
    head = "\r\n".join(lines) + "\r\n" + extra + "Content-Length: 0\r\n\r\n"
    return head.encode()


class Phone:
    """Drives REGISTERs the way a softphone does: ask, get challenged, answer."""

    def __init__(self, ua: UserAgent, registrar: Registrar, flow: FakeFlow) -> None:
        self.ua, self.registrar, self.flow = ua, registrar, flow
        self.cseq = 0

    async def send(self, data: bytes) -> Response:
        before = len(self.flow.sent)
        self.ua.receive(data, self.flow)
        while self.registrar._pending:
            await asyncio.gather(*self.registrar._pending)
        assert len(self.flow.sent) == before + 1, "expected exactly one response"
        response = parse_message(self.flow.sent[-1])
        assert isinstance(response, Response)
        return response

    async def register(
        self,
        user: str = "alice",
        password: str = PASSWORD,
        *,
        algorithm: str = "MD5",
        username: str | None = None,
        **fields,
    ) -> Response:
        self.cseq += 1
        challenged = await self.send(register(user, cseq=self.cseq, **fields))
        assert challenged.status == 401
        challenge = pick(challenged, algorithm)
        credentials = authorize(
            challenge,
            method="REGISTER",
            uri="sip:127.0.0.1",
            username=username or user,
            password=password,
        )
        self.cseq += 1
        return await self.send(
            register(user, cseq=self.cseq, authorization=str(credentials), **fields)
        )


def pick(response: Response, algorithm: str) -> Challenge:
    challenges = [Challenge.parse(v) for v in response.headers.get_lines("WWW-Authenticate")]
    [challenge] = [c for c in challenges if c.algorithm == algorithm]
    return challenge


def contact_lines(response: Response) -> list[str]:
    return response.headers.get_lines("Contact")


@pytest.fixture
def accounts() -> dict[str, Account]:
    return {"alice": account("alice"), "bob": account("bob")}


@pytest.fixture
def registrar(flow, clock, accounts) -> Registrar:
    ua = UserAgent(
        host="127.0.0.1", port=5060, clock=clock, flow_for=lambda transport, host, port: flow
    )

    async def lookup(username: str) -> Account | None:
        await asyncio.sleep(0)  # a real store answers later
        return accounts.get(username)

    authenticator = Authenticator(REALM, SECRET, nonce_ttl=300, clock=clock)
    return Registrar(ua, authenticator, lookup, wall_clock=lambda: 1_700_000_000.0)


@pytest.fixture
def phone(registrar, flow) -> Phone:
    return Phone(registrar.ua, registrar, flow)


@pytest.fixture
def flow() -> FakeFlow:
    return FakeFlow()


@pytest.fixture
def clock() -> Clock:
    clock = Clock()
    clock.now = 1000.0
    return clock


# -- authentication


async def test_unauthenticated_register_gets_sha256_then_md5_challenges(phone, registrar):
    response = await phone.send(register())
    assert response.status == 401
    assert response.to_tag
    values = response.headers.get_lines("WWW-Authenticate")
    challenges = [Challenge.parse(v) for v in values]
    assert [c.algorithm for c in challenges] == ["SHA-256", "MD5"]
    assert all(c.realm == REALM and c.qop == ("auth",) and not c.stale for c in challenges)
    assert challenges[0].nonce != challenges[1].nonce
    assert registrar.contacts("alice") == []
    assert "REGISTER" in registrar.ua.allow


async def test_challenge_algorithms_can_be_md5_only_for_old_clients(phone, registrar):
    # Debian's baresip 1.0 (libre 1.1) gives up with ENOSYS on any SHA-256 challenge.
    registrar.challenge_algorithms = ("MD5",)
    response = await phone.send(register())
    [value] = response.headers.get_lines("WWW-Authenticate")
    assert Challenge.parse(value).algorithm == "MD5"
    assert (await phone.register()).status == 200
    with pytest.raises(ValueError):
        Registrar(registrar.ua, registrar.authenticator, registrar.lookup, challenge_algorithms=())


async def test_md5_answer_registers_the_contact(phone, registrar, flow, clock):
    response = await phone.register()
    assert response.status == 200 and response.reason == "OK"
    assert contact_lines(response) == ["<sip:alice@10.0.0.1:5062>;expires=3600"]
    assert response.headers.get("Date") == "Tue, 14 Nov 2023 22:13:20 GMT"
    assert email.utils.parsedate_to_datetime(response.headers.get("Date")).year == 2023
    assert response.to_tag and response.headers.get("Server") == "callswitch"
    [binding] = registrar.contacts("alice")
    assert binding.aor == "alice" and binding.contact == "sip:alice@10.0.0.1:5062"
    assert binding.uri.host == "10.0.0.1" and binding.uri.port == 5062
    assert binding.expires_at == clock.now + 3600
    assert binding.owner == "AC-alice" and binding.user_agent == "test-phone/1.0"
    assert binding.flow is flow and binding.source == ("10.0.0.1", 5062)
    assert binding.transport == "UDP" and binding.call_id == "reg-1@10.0.0.1"
    assert binding.cseq == 2 and binding.q == 1.0


async def test_sha256_answer_registers_too(phone, registrar):
    response = await phone.register(algorithm="SHA-256")
    assert response.status == 200
    assert len(registrar.contacts("alice")) == 1


async def test_sha256_answer_without_a_stored_sha256_ha1_is_asked_for_md5(
    phone, registrar, accounts
):
    accounts["alice"] = account("alice", sha256=False)
    response = await phone.register(algorithm="SHA-256")
    assert response.status == 401
    algorithms = [
        Challenge.parse(v).algorithm for v in response.headers.get_lines("WWW-Authenticate")
    ]
    assert algorithms == ["MD5"]
    assert (await phone.register(algorithm="MD5")).status == 200


async def test_guessing_locks_the_username_out_for_that_source(phone, registrar, clock):
    refused = []
    registrar._refused = lambda reason, source, **fields: refused.append((reason, source))
    for _ in range(9):
        response = await phone.register(password="wrong")
        assert response.status == 401 and len(response.headers.get_lines("WWW-Authenticate")) == 2
    tenth = await phone.register(password="wrong")
    assert tenth.status == 403 and not tenth.headers.get_lines("WWW-Authenticate")
    assert refused == [("auth.lockout", "10.0.0.1")]
    # Locked out: no fresh challenge, and even the right password is refused.
    for _ in range(3):
        response = await phone.send(register(cseq=100))
        assert response.status == 403 and not response.headers.get_lines("WWW-Authenticate")
    assert registrar.contacts("alice") == []
    # Another source is not locked out of alice, nor this source out of bob.
    elsewhere = Phone(registrar.ua, registrar, FakeFlow(("10.0.0.9", 5062)))
    assert (await elsewhere.register()).status == 200
    assert (await phone.register("bob")).status == 200
    # After the cooldown the count starts again and the right password works.
    clock.now += 60
    assert (await phone.register()).status == 200


async def test_a_success_clears_the_failure_count(phone, registrar):
    for _ in range(9):
        assert (await phone.register(password="wrong")).status == 401
    assert (await phone.register()).status == 200
    for _ in range(9):
        assert (await phone.register(password="wrong")).status == 401


async def test_an_unknown_username_is_locked_out_exactly_alike(phone, registrar):
    def answers(responses):
        return [
            (r.status, r.reason, r.headers.get_lines("WWW-Authenticate") != []) for r in responses
        ]

    known = [await phone.register("alice", password="wrong") for _ in range(10)]
    known.append(await phone.send(register("alice", cseq=100)))
    unknown = [await phone.register("mallory", password="wrong") for _ in range(10)]
    unknown.append(await phone.send(register("mallory", cseq=100)))
    assert answers(known) == answers(unknown)
    assert answers(known[9:]) == [(403, "Forbidden", False)] * 2


async def test_unauthenticated_registers_are_answered_without_a_transaction(phone, registrar):
    for n in range(50):
        response = await phone.send(register(call_id=f"flood-{n}"))
        assert response.status == 401
    assert len(registrar.ua.layer.server) == 0
    assert (await phone.register()).status == 200


async def test_a_replayed_register_with_another_contact_is_stale(phone, registrar):
    challenged = await phone.send(register(cseq=1))
    credentials = authorize(
        pick(challenged, "MD5"),
        method="REGISTER",
        uri="sip:127.0.0.1",
        username="alice",
        password=PASSWORD,
    )
    assert (await phone.send(register(cseq=2, authorization=str(credentials)))).status == 200
    replay = register(
        cseq=3,
        call_id="hijack@203.0.113.66",
        contacts=("<sip:alice@203.0.113.66:5060>",),
        authorization=str(credentials),
    )
    response = await phone.send(replay)
    assert response.status == 401
    assert all(Challenge.parse(v).stale for v in response.headers.get_lines("WWW-Authenticate"))
    assert [b.contact for b in registrar.contacts("alice")] == ["sip:alice@10.0.0.1:5062"]


async def test_two_accounts_with_one_username_register_apart(registrar, flow, accounts):
    mine = account("alice", "mine-password")
    theirs = Account(ha1("alice", REALM, "their-password", "MD5"), None, owner="AC-theirs")
    registrar.lookup = lambda username: [mine, theirs] if username == "alice" else None
    desk = Phone(registrar.ua, registrar, flow)
    other = Phone(registrar.ua, registrar, FakeFlow(("10.0.0.2", 5062)))
    assert (await desk.register(password="mine-password")).status == 200
    response = await other.register(
        password="their-password", contacts=("<sip:alice@10.0.0.2:5062>",), call_id="theirs"
    )
    assert response.status == 200
    # Each 200 lists that account's phones only.
    assert contact_lines(response) == ["<sip:alice@10.0.0.2:5062>;expires=3600"]
    [their_binding] = registrar.contacts("alice", "AC-theirs")
    assert their_binding.contact == "sip:alice@10.0.0.2:5062"
    [my_binding] = registrar.contacts("alice", "AC-alice")
    assert my_binding.contact == "sip:alice@10.0.0.1:5062"
    assert len(registrar.contacts("alice")) == 2
    assert registrar.contacts("alice", "AC-nobody") == []
    # A third password is wrong for both.
    assert (await desk.register(password="neither")).status == 401


async def test_contacts_per_address_of_record_are_bounded(phone, registrar):
    from sip.registrar import MAX_CONTACTS_PER_AOR

    many = tuple(f"<sip:alice@10.0.1.{n}:5060>" for n in range(MAX_CONTACTS_PER_AOR + 1))
    assert (await phone.register(contacts=many)).status == 403
    assert registrar.contacts("alice") == []
    assert (await phone.register(contacts=many[:-1])).status == 200


async def test_unknown_user_looks_like_a_wrong_password(phone):
    response = await phone.register("mallory")
    assert response.status == 401


async def test_credentials_for_another_user_are_forbidden(phone, registrar):
    response = await phone.register("alice", username="bob")
    assert response.status == 403
    assert registrar.contacts("alice") == [] and registrar.contacts("bob") == []


async def test_stale_nonce_is_challenged_with_stale_true(phone, clock):
    challenged = await phone.send(register(cseq=1))
    credentials = authorize(
        pick(challenged, "MD5"),
        method="REGISTER",
        uri="sip:127.0.0.1",
        username="alice",
        password=PASSWORD,
    )
    clock.now += 301
    response = await phone.send(register(cseq=2, authorization=str(credentials)))
    assert response.status == 401
    assert all(Challenge.parse(v).stale for v in response.headers.get_lines("WWW-Authenticate"))


async def test_foreign_nonce_is_challenged_afresh(phone):
    other = Authenticator(REALM, b"another secret of sixteen+ bytes")
    credentials = authorize(
        other.challenge(), method="REGISTER", uri="sip:127.0.0.1", username="alice", password="x"
    )
    response = await phone.send(register(authorization=str(credentials)))
    assert response.status == 401
    assert not any(Challenge.parse(v).stale for v in response.headers.get_lines("WWW-Authenticate"))


async def test_unknown_authorization_scheme_is_challenged(phone):
    # RFC 4475 §3.1.2.9 "regaut01"
    response = await phone.send(register(authorization="NoOneKnowsThisScheme opaque-data=here"))
    assert response.status == 401


async def test_malformed_digest_authorization_is_400(phone):
    response = await phone.send(register(authorization='Digest username="alice", realm='))
    assert response.status == 400


async def test_failing_lookup_answers_500(registrar, phone):
    async def broken(username: str) -> Account | None:
        raise RuntimeError("store down")

    registrar.lookup = broken
    challenged = await phone.send(register(cseq=1))
    credentials = authorize(
        pick(challenged, "MD5"),
        method="REGISTER",
        uri="sip:127.0.0.1",
        username="alice",
        password=PASSWORD,
    )
    response = await phone.send(register(cseq=2, authorization=str(credentials)))
    assert response.status == 500


async def test_plain_function_lookup_answers_at_once(registrar, phone, accounts):
    registrar.lookup = accounts.get
    assert (await phone.register()).status == 200


async def test_by_domain_the_lookup_is_told_the_request_uri_host(registrar, phone, accounts):
    asked = []

    def lookup(username: str, host: str) -> Account | None:
        asked.append((username, host))
        return accounts.get(username) if host == "127.0.0.1" else None

    registrar.lookup = lookup
    registrar.by_domain = True
    assert (await phone.register()).status == 200
    assert asked == [("alice", "127.0.0.1")]


# -- expiry


async def test_expires_header_is_clamped_to_max(phone):
    response = await phone.register(expires="7200")
    assert contact_lines(response) == ["<sip:alice@10.0.0.1:5062>;expires=3600"]


async def test_contact_expires_param_wins_over_header(phone):
    response = await phone.register(
        contacts=("<sip:alice@10.0.0.1:5062>;expires=120",), expires="600"
    )
    assert contact_lines(response) == ["<sip:alice@10.0.0.1:5062>;expires=120"]


async def test_huge_expires_is_clamped(phone):
    response = await phone.register(expires="99999999999999999999")
    assert contact_lines(response) == ["<sip:alice@10.0.0.1:5062>;expires=3600"]


async def test_too_brief_interval_is_423_with_min_expires(phone, registrar):
    response = await phone.register(expires="30")
    assert response.status == 423 and response.reason == "Interval Too Brief"
    assert response.headers.get("Min-Expires") == "60"
    assert registrar.contacts("alice") == []
    response = await phone.register(contacts=("<sip:alice@10.0.0.1:5062>;expires=59",))
    assert response.status == 423


async def test_bad_expires_is_400(phone):
    assert (await phone.register(expires="soon")).status == 400
    response = await phone.register(contacts=("<sip:alice@10.0.0.1:5062>;expires=-1",))
    assert response.status == 400


async def test_expires_zero_removes_one_binding(phone, registrar):
    await phone.register(contacts=("<sip:alice@10.0.0.1:5062>", "<sip:alice@10.0.0.2:5062>"))
    response = await phone.register(contacts=("<sip:alice@10.0.0.1:5062>;expires=0",))
    assert response.status == 200
    assert contact_lines(response) == ["<sip:alice@10.0.0.2:5062>;expires=3600"]
    assert [b.contact for b in registrar.contacts("alice")] == ["sip:alice@10.0.0.2:5062"]


async def test_bindings_expire_over_time(phone, registrar, clock):
    changes: list[tuple[str, list[Binding]]] = []
    registrar.on_change = lambda aor, bindings: changes.append((aor, bindings))
    await phone.register(expires="120")
    assert [aor for aor, _ in changes] == ["alice"]
    clock.now += 60
    [binding] = registrar.contacts("alice")
    assert binding.expires_in(clock.now) == 60
    response = await phone.register(contacts=())  # a query shows the time left
    assert contact_lines(response) == ["<sip:alice@10.0.0.1:5062>;expires=60"]
    clock.now += 60
    assert registrar.contacts("alice") == []
    assert changes[-1] == ("alice", [])


async def test_expire_purges_for_housekeeping(phone, registrar, clock):
    await phone.register(expires="120")
    await phone.register("bob", contacts=("<sip:bob@10.0.0.1:5062>",), call_id="reg-b")
    changes: list[str] = []
    registrar.on_change = lambda aor, bindings: changes.append(aor)
    assert registrar.expire(clock.now + 119) == 0
    assert registrar.expire(clock.now + 120) == 1
    assert changes == ["alice"]
    assert registrar.expire(clock.now + 3600) == 1 and changes == ["alice", "bob"]


# -- Contact: * and several contacts


async def test_wildcard_with_expires_zero_removes_everything(phone, registrar):
    await phone.register(contacts=("<sip:alice@10.0.0.1:5062>", "<sip:alice@10.0.0.2:5062>"))
    changes: list[list[Binding]] = []
    registrar.on_change = lambda aor, bindings: changes.append(bindings)
    response = await phone.register(contacts=("*",), expires="0")
    assert response.status == 200 and contact_lines(response) == []
    assert registrar.contacts("alice") == [] and changes == [[]]


@pytest.mark.parametrize(
    ("contacts", "expires"),
    [(("*",), None), (("*",), "60"), (("*", "<sip:alice@10.0.0.1>"), "0")],
)
async def test_bad_wildcard_is_400(phone, registrar, contacts, expires):
    await phone.register()
    response = await phone.register(contacts=contacts, expires=expires)
    assert response.status == 400
    assert len(registrar.contacts("alice")) == 1


async def test_two_contacts_for_one_aor(phone, registrar, clock):
    await phone.register(contacts=("<sip:alice@10.0.0.1:5062>",), call_id="desk")
    clock.now += 10
    response = await phone.register(contacts=("<sip:alice@10.0.0.9:5070>",), call_id="mobile")
    assert contact_lines(response) == [
        "<sip:alice@10.0.0.9:5070>;expires=3600",
        "<sip:alice@10.0.0.1:5062>;expires=3590",
    ]
    assert [b.call_id for b in registrar.contacts("alice")] == ["mobile", "desk"]


async def test_higher_q_rings_first(phone, registrar, clock):
    await phone.register(
        contacts=("<sip:alice@10.0.0.1:5062>;q=0.9", "<sip:alice@10.0.0.2:5062>;q=0.1")
    )
    clock.now += 5
    response = await phone.register(contacts=("<sip:alice@10.0.0.3:5062>;q=0.5",), call_id="x")
    assert [b.q for b in registrar.contacts("alice")] == [0.9, 0.5, 0.1]
    assert contact_lines(response)[0] == "<sip:alice@10.0.0.1:5062>;expires=3595;q=0.9"


async def test_refresh_updates_the_same_binding(phone, registrar, clock):
    await phone.register()
    clock.now += 100
    response = await phone.register()
    assert contact_lines(response) == ["<sip:alice@10.0.0.1:5062>;expires=3600"]
    [binding] = registrar.contacts("alice")
    assert binding.updated_at == clock.now


async def test_query_register_lists_bindings_without_changing_them(phone, registrar):
    await phone.register()
    changes: list[str] = []
    registrar.on_change = lambda aor, bindings: changes.append(aor)
    response = await phone.register(contacts=())
    assert response.status == 200
    assert contact_lines(response) == ["<sip:alice@10.0.0.1:5062>;expires=3600"]
    assert changes == [] and len(registrar.contacts("alice")) == 1


async def test_query_with_no_bindings_is_200_without_contacts(phone):
    response = await phone.register(contacts=())
    assert response.status == 200 and contact_lines(response) == []


@pytest.mark.parametrize(
    "contact", ['"unterminated <sip:alice@10.0.0.1>', "<sip:alice@>", "<tel:+15551234>", "<<>>"]
)
async def test_unparseable_contact_is_400(phone, registrar, contact):
    response = await phone.register(contacts=(contact,))
    assert response.status == 400
    assert registrar.contacts("alice") == []


async def test_bad_q_is_400(phone):
    response = await phone.register(contacts=("<sip:alice@10.0.0.1>;q=2",))
    assert response.status == 400


async def test_one_bad_contact_commits_nothing(phone, registrar):
    response = await phone.register(contacts=("<sip:alice@10.0.0.1:5062>", "<sip:alice@x>;q=z"))
    assert response.status == 400 and registrar.contacts("alice") == []


async def test_out_of_order_cseq_is_refused(phone, registrar):
    await phone.register(expires="600")
    # phone.cseq is now 2: a REGISTER of the same Call-ID with CSeq 2 again is old news
    credentials_response = await phone.send(register(cseq=2))
    challenge = pick(credentials_response, "MD5")
    credentials = authorize(
        challenge, method="REGISTER", uri="sip:127.0.0.1", username="alice", password=PASSWORD
    )
    response = await phone.send(register(cseq=2, authorization=str(credentials), expires="0"))
    assert response.status == 500
    assert len(registrar.contacts("alice")) == 1


async def test_same_instance_from_a_new_address_replaces_the_binding(phone, registrar):
    instance = '+sip.instance="<urn:uuid:00000000-0000-1000-8000-000a95a0e128>";reg-id=1'
    await phone.register(contacts=(f"<sip:alice@10.0.0.1:5062>;{instance}",), call_id="a")
    response = await phone.register(
        contacts=(f"<sip:alice@10.0.0.7:5062>;{instance}",), call_id="b"
    )
    assert contact_lines(response) == [
        "<sip:alice@10.0.0.7:5062>;expires=3600;"
        '+sip.instance="<urn:uuid:00000000-0000-1000-8000-000a95a0e128>";reg-id=1'
    ]
    [binding] = registrar.contacts("alice")
    assert binding.instance == "<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"
    assert binding.reg_id == 1


async def test_unsupported_require_is_420(phone):
    response = await phone.send(register(extra="Require: gruu\r\n"))
    assert response.status == 420 and response.headers.get("Unsupported") == "gruu"


async def test_options_to_a_registered_user_still_gets_200(phone, registrar, flow):
    await phone.register()
    options = (
        register(contacts=())
        .replace(b"REGISTER sip:127.0.0.1", b"OPTIONS sip:alice@127.0.0.1")
        .replace(b" REGISTER\r\n", b" OPTIONS\r\n")
    )
    response = await phone.send(options)
    assert response.status == 200 and "REGISTER" in response.headers.get("Allow")


# -- how to reach the phone


async def test_target_behind_a_nat_is_the_packet_source(clock, accounts):
    flow = FakeFlow(remote=NAT_SOURCE)
    ua = UserAgent(host="127.0.0.1", port=5060, clock=clock, flow_for=lambda *a: flow)
    registrar = Registrar(ua, Authenticator(REALM, SECRET, clock=clock), accounts.get)
    phone = Phone(ua, registrar, flow)
    response = await phone.register(contacts=("<sip:alice@192.168.1.5:5060>",))
    assert contact_lines(response) == ["<sip:alice@192.168.1.5:5060>;expires=3600"]
    [binding] = registrar.contacts("alice")
    assert binding.source == NAT_SOURCE
    assert binding.target() == ("UDP", "203.0.113.7", 40000, flow)


async def test_target_without_nat_is_the_contact(phone, registrar):
    await phone.register(contacts=("<sip:alice@10.0.0.1:5062>",))
    [binding] = registrar.contacts("alice")
    assert binding.target() == ("UDP", "10.0.0.1", 5062, None)


async def test_target_contact_without_port_means_5060(registrar, clock):
    binding = Binding(
        aor="alice",
        contact="sip:alice@10.0.0.1",
        uri=SipUri.parse("sip:alice@10.0.0.1"),
        expires_at=clock.now + 60,
        source=("10.0.0.1", 5060),
    )
    assert binding.target() == ("UDP", "10.0.0.1", 5060, None)


class FakeTcpFlow(FakeFlow):
    transport = "TCP"
    reliable = True

    def __init__(self, remote) -> None:
        super().__init__(remote)
        self.is_open = True


async def test_target_over_tcp_reuses_the_connection_while_open(clock, accounts):
    flow = FakeTcpFlow(remote=("10.0.0.1", 51234))
    ua = UserAgent(host="127.0.0.1", port=5060, clock=clock, flow_for=lambda *a: None)
    registrar = Registrar(ua, Authenticator(REALM, SECRET, clock=clock), accounts.get)
    phone = Phone(ua, registrar, flow)
    contact = "<sip:alice@10.0.0.1:5062;transport=tcp>"
    response = await phone.register(contacts=(contact,), transport="TCP")
    assert response.status == 200
    [binding] = registrar.contacts("alice")
    assert binding.transport == "TCP"
    assert binding.target() == ("TCP", "10.0.0.1", 51234, flow)
    flow.is_open = False
    # the connection is gone and the Contact is not where it came from: a new
    # connection to the source is the best guess
    assert binding.target() == ("TCP", "10.0.0.1", 51234, None)


async def test_target_over_closed_tcp_with_matching_contact_uses_the_contact(clock, accounts):
    flow = FakeTcpFlow(remote=("10.0.0.1", 5062))
    ua = UserAgent(host="127.0.0.1", port=5060, clock=clock, flow_for=lambda *a: None)
    registrar = Registrar(ua, Authenticator(REALM, SECRET, clock=clock), accounts.get)
    phone = Phone(ua, registrar, flow)
    await phone.register(contacts=("<sip:alice@10.0.0.1:5062;transport=tcp>",), transport="TCP")
    [binding] = registrar.contacts("alice")
    flow.is_open = False
    assert binding.target() == ("TCP", "10.0.0.1", 5062, None)


def test_expiry_settings_are_checked(registrar):
    with pytest.raises(ValueError):
        Registrar(registrar.ua, registrar.authenticator, registrar.lookup, min_expires=0)
    with pytest.raises(ValueError):
        Registrar(
            registrar.ua, registrar.authenticator, registrar.lookup, min_expires=600, max_expires=60
        )


# -- fuzzing: whatever a phone puts in Contact, Expires or Authorization


_PIECES = [
    "<sip:alice@10.0.0.1:5062>",
    "sip:alice@10.0.0.1",
    "*",
    ";expires=",
    ";q=",
    ";+sip.instance=",
    ";reg-id=",
    '"<urn:uuid:1>"',
    "0",
    "60",
    "30",
    "4294967296",
    "-1",
    "0.5",
    ",",
    "<",
    ">",
    '"',
    ";",
    " ",
    "@",
    "%",
    "[::1]",
    "tel:+1",
    'Digest username="alice"',
    'Digest username="bob", realm="callswitch", nonce="x", uri="sip:127.0.0.1", response="0"',
    ', qop=auth, nc=00000001, cnonce="c"',
    "algorithm=SHA-256",
    "Basic YWxpY2U6c2VjcmV0",
]
_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=12
)
_VALUE = st.lists(st.one_of(st.sampled_from(_PIECES), _TEXT), max_size=6).map("".join)


def _fuzz_registrar() -> tuple[Registrar, FakeFlow]:
    flow = FakeFlow()
    clock = Clock()
    ua = UserAgent(host="127.0.0.1", port=5060, clock=clock, flow_for=lambda *a: flow)
    accounts = {"alice": account("alice")}
    registrar = Registrar(ua, Authenticator(REALM, SECRET, clock=clock), accounts.get)
    return registrar, flow


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    contacts=st.lists(
        st.one_of(
            st.sampled_from(
                [
                    "<sip:alice@10.0.0.1:5062>",
                    "<sip:alice@10.0.0.2>;expires=30",
                    "<sip:alice@10.0.0.3>;expires=0;q=0.2",
                    "*",
                ]
            ),
            _VALUE,
        ),
        max_size=3,
    ),
    expires=st.one_of(st.none(), st.sampled_from(["0", "30", "600", "99999"]), _VALUE),
    auth=st.sampled_from(["none", "valid", "sha256", "random"]),
    random_auth=_VALUE,
    refresh=st.booleans(),
)
def test_mutated_registers_never_raise(contacts, expires, auth, random_auth, refresh):
    registrar, flow = _fuzz_registrar()
    authenticator = registrar.authenticator
    algorithm = "SHA-256" if auth == "sha256" else "MD5"
    credentials = str(
        authorize(
            authenticator.challenge(algorithm=algorithm),
            method="REGISTER",
            uri="sip:127.0.0.1",
            username="alice",
            password=PASSWORD,
        )
    )
    authorization = {"none": None, "random": random_auth}.get(auth, credentials)
    if refresh:  # a binding exists already, so removals and ordering have work to do
        registrar.ua.receive(register(authorization=credentials, cseq=1), flow)
        assert flow.statuses() == [200]
        flow.sent.clear()
    data = register(contacts=tuple(contacts), expires=expires, authorization=authorization, cseq=2)
    registrar.ua.receive(data, flow)
    statuses = flow.statuses()
    assert len(statuses) == 1, statuses
    assert statuses[0] in (200, 400, 401, 403, 423)
    if auth == "none" or (auth == "random" and statuses[0] != 400):
        assert statuses[0] in (400, 401, 403)
    for binding in registrar.contacts("alice"):
        assert binding.target()[1]
