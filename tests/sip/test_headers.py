"""Typed header values (sip/headers.py): URIs, name-addr, Via, CSeq, list splitting."""

from __future__ import annotations

import contextlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.errors import SipParseError
from sip.headers import CSeq, NameAddress, SipUri, Via, is_token, split_header_values

# --- split_header_values -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a", ["a"]),
        ("", []),
        ("  a ,b,  c  ", ["a", "b", "c"]),
        ("a,,b, ,", ["a", "b"]),
        ('"Doe, John" <sip:j@x>, <sip:k@y>', ['"Doe, John" <sip:j@x>', "<sip:k@y>"]),
        (r'"a \", b" <sip:x>, c', [r'"a \", b" <sip:x>', "c"]),
        ("<sip:a@x;p=1,2>;q=1, <sip:b@y>", ["<sip:a@x;p=1,2>;q=1", "<sip:b@y>"]),
        ('<sip:a@x>;m="INVITE,BYE", <sip:b@y>', ['<sip:a@x>;m="INVITE,BYE"', "<sip:b@y>"]),
        # An unclosed quote or bracket keeps the rest together, so that the
        # element parser sees the damage instead of a plausible split.
        ('"open, <sip:a@x>, <sip:b@y>', ['"open, <sip:a@x>, <sip:b@y>']),
        ("<sip:a@x, <sip:b@y>", ["<sip:a@x, <sip:b@y>"]),
        ("INVITE,ACK , BYE", ["INVITE", "ACK", "BYE"]),
    ],
)
def test_split_header_values(value, expected):
    assert split_header_values(value) == expected


_element = st.one_of(
    st.text(alphabet=string.ascii_letters + string.digits + " ;=:.", min_size=1, max_size=10),
    st.text(alphabet=string.ascii_letters + ', \\"', max_size=10).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    ),
    st.text(alphabet=string.ascii_letters + ",;:@", max_size=10).map(lambda s: f"<{s}>"),
)


@given(st.lists(st.lists(_element, min_size=1, max_size=3).map("".join), max_size=5))
def test_split_header_values_inverts_join(elements):
    elements = [e.strip() for e in elements if e.strip()]
    assert split_header_values(", ".join(elements)) == elements


@given(st.text())
def test_split_header_values_never_raises(text):
    for element in split_header_values(text):
        assert element == element.strip()
        assert element


# --- SipUri ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fields"),
    [
        ("sip:alice@example.com", dict(scheme="sip", user="alice", host="example.com")),
        (
            "sips:alice:secret@example.com:5061;transport=tcp;lr",
            dict(
                scheme="sips",
                user="alice",
                password="secret",
                host="example.com",
                port=5061,
                params={"transport": "tcp", "lr": None},
            ),
        ),
        ("sip:[2001:db8::10]:5070", dict(host="[2001:db8::10]", port=5070, user=None)),
        ("sip:192.0.2.1", dict(host="192.0.2.1", port=None)),
        (
            "sip:bob@example.com?subject=project%20x&priority=urgent",
            dict(headers={"subject": "project%20x", "priority": "urgent"}),
        ),
        # RFC 4475 "semiuri": ";" is legal in the user part.
        ("sip:user;par=u%40example.net@example.com", dict(user="user;par=u%40example.net")),
        # RFC 4475 "esc01": escapes are kept, not decoded.
        ("sip:sips%3Auser%40example.com@example.net", dict(user="sips%3Auser%40example.com")),
        ("sip:alice:@example.com", dict(user="alice", password="")),
        ("sip:+1-212-555-1212:1234@gateway.com;user=phone", dict(password="1234")),
        (
            "tel:+1-201-555-0123;phone-context=example.com",
            dict(
                scheme="tel",
                user="+1-201-555-0123",
                host="",
                params={"phone-context": "example.com"},
            ),
        ),
        ("urn:service:sos", dict(scheme="urn", opaque="service:sos", host="")),
        ("http://www.example.com", dict(scheme="http", opaque="//www.example.com")),
        ("sip:host_with_underscore.example.com", dict(host="host_with_underscore.example.com")),
    ],
)
def test_sip_uri_parse(text, fields):
    uri = SipUri.parse(text)
    for name, value in fields.items():
        assert getattr(uri, name) == value, name
    assert str(uri) == text


def test_sip_uri_scheme_is_lower_cased_and_param_names_too():
    uri = SipUri.parse("SIP:Alice@Example.COM;Transport=TCP")
    assert (uri.scheme, uri.user, uri.host, uri.params) == (
        "sip",
        "Alice",
        "Example.COM",
        {"transport": "TCP"},
    )
    assert str(uri) == "sip:Alice@Example.COM;transport=TCP"


def test_sip_uri_host_port():
    assert SipUri.parse("sip:a@example.com:5080").host_port == "example.com:5080"
    assert SipUri.parse("sip:a@[::1]").host_port == "[::1]"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "*",
        "sip:",
        "sip:@example.com",
        "sip:alice@",
        "sip:alice@example.com:99999",
        "sip:alice@example.com:",
        " sip:alice@example.com",
        "sip:alice@example.com ",
        "sip:ali ce@example.com",
        "sip:alice@exa mple.com",
        "sip:alice@example.com;;lr",
        "sip:alice@example.com;lr=",
        "sip:alice@example.com?",
        "sip:alice@example.com?novalue",
        "sip:2001:db8::1",
        "sip:alice@[2001:db8::1",
        "<sip:alice@example.com>",
        "1sip:alice@example.com",
        "tel:",
        "tel:+1 555",
        "mailto:",
        "urn:a b",
        'urn:"x"',
    ],
)
def test_sip_uri_rejects(text):
    with pytest.raises(SipParseError):
        SipUri.parse(text)


_UNRESERVED = string.ascii_letters + string.digits + "-_.!~*'()"
_host = st.one_of(
    st.from_regex(r"[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,3}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_pchars = st.text(alphabet=_UNRESERVED + "%[]/:&+$", min_size=1, max_size=8)
_uri_params = st.dictionaries(
    st.text(
        alphabet=string.ascii_lowercase + string.digits + "-_.!~*'()%[]/:&+$",
        min_size=1,
        max_size=8,
    ),
    st.none() | _pchars,
    max_size=3,
)
_hchars = _UNRESERVED + "%[]/?:+$"
sip_uris = st.builds(
    SipUri,
    scheme=st.sampled_from(["sip", "sips"]),
    user=st.none() | st.text(alphabet=_UNRESERVED + "%&=+$,;?/", min_size=1, max_size=10),
    password=st.none() | st.text(alphabet=_UNRESERVED + "%&=+$,", max_size=6),
    host=_host,
    port=st.none() | st.integers(0, 65535),
    params=_uri_params,
    headers=st.dictionaries(
        st.text(alphabet=_hchars, min_size=1, max_size=6),
        st.text(alphabet=_hchars, max_size=6),
        max_size=2,
    ),
).filter(lambda u: u.user is not None or u.password is None)


@given(sip_uris)
def test_sip_uri_round_trip(uri):
    text = str(uri)
    assert SipUri.parse(text) == uri
    assert str(SipUri.parse(text)) == text


@given(st.text(max_size=60))
def test_sip_uri_parse_raises_only_parse_error(text):
    try:
        uri = SipUri.parse(text)
    except SipParseError:
        return
    assert SipUri.parse(str(uri)) == uri


# --- NameAddress -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        (
            '"Alice" <sip:alice@example.com>;tag=1928301774',
            "Alice",
            "sip:alice@example.com",
            {"tag": "1928301774"},
        ),
        ("<sip:alice@example.com>", None, "sip:alice@example.com", {}),
        ('"" <sip:a@x>', "", "sip:a@x", {}),
        # RFC 4475 "lwsdisp": no LWS between a token display name and "<".
        (
            "caller<sip:caller@example.com>;tag=323",
            "caller",
            "sip:caller@example.com",
            {"tag": "323"},
        ),
        ("Bob Smith  <sip:bob@x>", "Bob Smith", "sip:bob@x", {}),
        # addr-spec: parameters after the URI belong to the header (RFC 3261 §20.10).
        ("sip:alice@example.com;tag=88", None, "sip:alice@example.com", {"tag": "88"}),
        (
            "sip:+19725552222@gw1.example.net;unknownparam",
            None,
            "sip:+19725552222@gw1.example.net",
            {"unknownparam": None},
        ),
        # ... inside brackets they belong to the URI (RFC 4475 "cparam02").
        (
            "<sip:+19725552222@gw1.example.net;unknownparam>",
            None,
            "sip:+19725552222@gw1.example.net;unknownparam",
            {},
        ),
        (
            r'"J Rosenberg \\\""       <sip:jdrosen@example.com> ; tag = 98asjd8',
            'J Rosenberg \\"',
            "sip:jdrosen@example.com",
            {"tag": "98asjd8"},
        ),
        (
            '"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam = newvalue ; '
            "secondparam ; q = 0.33",
            'Quoted string ""',
            "sip:jdrosen@example.com",
            {"newparam": "newvalue", "secondparam": None, "q": "0.33"},
        ),
        (
            '<sip:a@x>;+sip.instance="<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>";expires=3600',
            None,
            "sip:a@x",
            {
                "+sip.instance": '"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>"',
                "expires": "3600",
            },
        ),
        (
            "<http://www.example.com>;tag=3234233",
            None,
            "http://www.example.com",
            {"tag": "3234233"},
        ),
        ("isbn:2983792873", None, "isbn:2983792873", {}),
        ("<tel:+15551234567>;tag=x", None, "tel:+15551234567", {"tag": "x"}),
    ],
)
def test_name_address_parse(text, display, uri, params):
    value = NameAddress.parse(text)
    assert value.display_name == display
    assert str(value.uri) == uri
    assert value.params == params
    assert NameAddress.parse(str(value)) == value


def test_name_address_tag_and_str():
    value = NameAddress.parse("sip:alice@example.com;tag=abc")
    assert value.tag == "abc"
    assert str(value) == "<sip:alice@example.com>;tag=abc"
    assert NameAddress.parse("<sip:a@x>").tag is None
    assert str(NameAddress(None, SipUri.parse("sip:a@x"))) == "<sip:a@x>"
    named = NameAddress('say "hi" \\ \x07', SipUri.parse("sip:a@x"), {"tag": "1"})
    assert str(named) == r'"say \"hi\" \\ ' + "\\\x07" + '" <sip:a@x>;tag=1'


def test_name_address_str_cannot_inject_lines():
    value = NameAddress("evil\r\nVia: x", SipUri.parse("sip:a@x"))
    assert "\r" not in str(value) and "\n" not in str(value)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "*",
        # RFC 4475 "quotbal": unterminated quoted string.
        '"Mr. J. User <sip:j.user@example.com>',
        # RFC 4475 "badaspec": whitespace inside the brackets.
        '"Watson, Thomas" < sip:t.watson@example.org >',
        # RFC 4475 "baddn": "," in an unquoted display name.
        "Bell, Alexander <sip:a.g.bell@example.com>;tag=43",
        # RFC 4475 "regbadct": URI headers need brackets.
        "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
        "<sip:a@x",
        "<sip:a@x> trailing",
        "<sip:a@x>;",
        "<sip:a@x>;tag=",
        "<sip:a@x>;;tag=1",
        '"name" sip:a@x',
        "sip:a@x, sip:b@y",
        "<sip:a@x><sip:b@y>",
    ],
)
def test_name_address_rejects(text):
    with pytest.raises(SipParseError):
        NameAddress.parse(text)


_token = st.text(
    alphabet=string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=10
)
_header_params = st.dictionaries(
    _token.map(str.lower),
    st.none()
    | _token
    | st.text(alphabet=string.printable.replace("\r", "").replace("\n", ""), max_size=8).map(
        lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    ),
    max_size=3,
)
name_addresses = st.builds(
    NameAddress,
    display_name=st.none()
    | st.text(
        st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=15
    ),
    uri=sip_uris,
    params=_header_params,
)


@given(name_addresses)
def test_name_address_round_trip(value):
    assert NameAddress.parse(str(value)) == value


@given(st.text(max_size=80))
def test_name_address_parse_raises_only_parse_error(text):
    with contextlib.suppress(SipParseError):
        NameAddress.parse(text)


# --- Via -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "transport", "host", "port", "params"),
    [
        (
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds",
            "UDP",
            "192.0.2.1",
            5060,
            {"branch": "z9hG4bK776asdhds"},
        ),
        (
            "SIP/2.0/tcp host.example.com;branch=z9hG4bK1;rport",
            "TCP",
            "host.example.com",
            None,
            {"branch": "z9hG4bK1", "rport": None},
        ),
        (
            "SIP/2.0/UDP [2001:db8::9]:5062;received=2001:db8::1;rport=5062;branch=z9hG4bKx",
            "UDP",
            "[2001:db8::9]",
            5062,
            {"received": "2001:db8::1", "rport": "5062", "branch": "z9hG4bKx"},
        ),
        # RFC 4475 "wsinv": LWS all over the place.
        (
            "SIP  /   2.0 /UDP 192.0.2.2;branch=390skdjuw",
            "UDP",
            "192.0.2.2",
            None,
            {"branch": "390skdjuw"},
        ),
        (
            "SIP  / 2.0  / TCP     spindle.example.com   ; branch  =   z9hG4bK9ikj8",
            "TCP",
            "spindle.example.com",
            None,
            {"branch": "z9hG4bK9ikj8"},
        ),
        (
            "SIP/2.0/UDP host : 5060 ;maddr=224.2.0.1;ttl=16",
            "UDP",
            "host",
            5060,
            {"maddr": "224.2.0.1", "ttl": "16"},
        ),
        # RFC 4475 "transports": unknown transports are still Vias.
        (
            "SIP/2.0/SCTP t2.example.com;branch=z9hG4bKklasjdhf",
            "SCTP",
            "t2.example.com",
            None,
            {"branch": "z9hG4bKklasjdhf"},
        ),
        (
            "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bKasudf",
            "WSS",
            "df7jal23ls0d.invalid",
            None,
            {"branch": "z9hG4bKasudf"},
        ),
        # RFC 4475 "intmeth": branch with every token character.
        (
            "SIP/2.0/TCP host1.example.com;branch=z9hG4bK-.!%66*_+`'~",
            "TCP",
            "host1.example.com",
            None,
            {"branch": "z9hG4bK-.!%66*_+`'~"},
        ),
    ],
)
def test_via_parse(text, transport, host, port, params):
    via = Via.parse(text)
    assert (via.transport, via.host, via.port, via.params) == (transport, host, port, params)
    assert via.branch == params.get("branch")
    assert Via.parse(str(via)) == via


def test_via_str_and_sent_by():
    via = Via("UDP", "10.0.0.1", 5062, {"branch": "z9hG4bKabc", "rport": None})
    assert str(via) == "SIP/2.0/UDP 10.0.0.1:5062;branch=z9hG4bKabc;rport"
    assert via.sent_by == "10.0.0.1:5062"
    assert Via("TLS", "[::1]").sent_by == "[::1]"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0/UDP ",
        "SIP/3.0/UDP host",
        "HTTP/2.0/UDP host",
        "SIP/2.0 host",
        "SIP/2.0/UDP host:70000",
        # RFC 4475 "badinv01": empty parameters.
        "SIP/2.0/UDP 192.0.2.15;;",
        "SIP/2.0/UDP host;branch=",
        "SIP/2.0/UDP host junk",
        "SIP/2.0/UDP host;branch=a b",
    ],
)
def test_via_rejects(text):
    with pytest.raises(SipParseError):
        Via.parse(text)


vias = st.builds(
    Via,
    transport=st.sampled_from(["UDP", "TCP", "TLS", "WS", "WSS", "SCTP"]),
    host=_host,
    port=st.none() | st.integers(0, 65535),
    params=st.fixed_dictionaries(
        {"branch": _token.map(lambda t: "z9hG4bK" + t)},
        optional={
            "rport": st.none() | st.integers(1, 65535).map(str),
            "received": st.ip_addresses().map(str),
            "ttl": st.integers(0, 255).map(str),
        },
    ),
)


@given(vias)
def test_via_round_trip(via):
    assert Via.parse(str(via)) == via


@given(st.text(max_size=60))
def test_via_parse_raises_only_parse_error(text):
    with contextlib.suppress(SipParseError):
        Via.parse(text)


# --- CSeq ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seq", "method"),
    [
        ("1 INVITE", 1, "INVITE"),
        ("0009   INVITE", 9, "INVITE"),
        ("4294967295 BYE", 4294967295, "BYE"),
        (
            "  139122385 !interesting-Method0123456789_*+`.%indeed'~ ",
            139122385,
            "!interesting-Method0123456789_*+`.%indeed'~",
        ),
    ],
)
def test_cseq_parse(text, seq, method):
    cseq = CSeq.parse(text)
    assert (cseq.seq, cseq.method) == (seq, method)
    assert str(cseq) == f"{seq} {method}"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "INVITE",
        "1",
        "1INVITE",
        "-1 INVITE",
        "4294967296 INVITE",
        # RFC 4475 "scalar02".
        "36893488147419103232 REGISTER",
        "1 INVITE BYE",
        "1 INV@TE",
        "²3 INVITE",
        "1.5 INVITE",
    ],
)
def test_cseq_rejects(text):
    with pytest.raises(SipParseError):
        CSeq.parse(text)


@given(st.integers(0, 2**32 - 1), _token)
def test_cseq_round_trip(seq, method):
    assert CSeq.parse(str(CSeq(seq, method))) == CSeq(seq, method)


def test_is_token():
    assert is_token("INVITE")
    assert is_token("!interesting-Method0123456789_*+`.%indeed'~")
    assert not is_token("")
    assert not is_token("IN VITE")
    assert not is_token("A:B")
