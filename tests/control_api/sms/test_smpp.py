"""SMPP 3.4 PDUs and the ESME session, without sockets (fed bytes and time)."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_api.sms.smpp import (
    BIND_TRANSCEIVER,
    DELIVER_SM,
    ENQUIRE_LINK,
    GENERIC_NACK,
    RESPONSE,
    SUBMIT_SM,
    UNBIND,
    Bound,
    ConnectionLost,
    DeliverSm,
    EsmeConnection,
    Pdu,
    SmppError,
    SubmitResult,
    WindowFull,
    decode_short_message,
    parse_pdu,
    parse_receipt,
    relative_validity,
    split_parts,
)

# A bind_transceiver as the spec lays it out (§4.1.5), written by hand.
BIND = (
    b"\x00\x00\x00\x2a\x00\x00\x00\x09\x00\x00\x00\x00\x00\x00\x00\x01"
    b"esme\x00secret\x00cs\x00\x34\x00\x00\x00"
)


def test_bind_transceiver_bytes_match_the_spec_layout():
    pdu = Pdu(
        BIND_TRANSCEIVER,
        1,
        fields={
            "system_id": "esme",
            "password": "secret",
            "system_type": "cs",
            "interface_version": 0x34,
        },
    )
    assert pdu.serialize() == BIND[:3] + bytes([len(BIND)]) + BIND[4:]
    parsed = parse_pdu(pdu.serialize())
    assert parsed.fields["system_id"] == "esme" and parsed.fields["interface_version"] == 0x34


def test_submit_sm_round_trip_with_tlv():
    pdu = Pdu(
        SUBMIT_SM,
        7,
        fields={
            "source_addr": "+14155550100",
            "destination_addr": "+15550001111",
            "esm_class": 0x40,
            "registered_delivery": 1,
            "data_coding": 8,
            "short_message": b"\x05\x00\x03\x01\x02\x01hi",
            "validity_period": relative_validity(600),
        },
        tlvs={0x0204: b"\x00\x01"},
    )
    parsed = parse_pdu(pdu.serialize())
    assert parsed.fields["destination_addr"] == "+15550001111"
    assert parsed.fields["short_message"] == b"\x05\x00\x03\x01\x02\x01hi"
    assert parsed.fields["validity_period"] == "000000001000000R"
    assert parsed.tlvs == {0x0204: b"\x00\x01"}


def test_error_response_has_no_body():
    raw = Pdu(SUBMIT_SM | RESPONSE, 3, 0x58).serialize()
    assert len(raw) == 16
    assert parse_pdu(raw).status == 0x58


@pytest.mark.parametrize(
    "raw",
    [
        b"\x00\x00\x00\x10",
        struct.pack(">IIII", 20, SUBMIT_SM, 0, 1),
        struct.pack(">IIII", 16, 0x12345, 0, 1),
        struct.pack(">IIII", 16 + 3, BIND_TRANSCEIVER, 0, 1) + b"abc",
    ],
)
def test_malformed_pdus_raise_smpp_error(raw):
    with pytest.raises(SmppError):
        parse_pdu(raw)


@given(st.binary(max_size=300))
def test_parse_never_raises_anything_else(data):
    with contextlib.suppress(SmppError):
        parse_pdu(data)


@given(
    st.text(max_size=5),
    st.text(alphabet=st.characters(max_codepoint=255), max_size=20),
    st.binary(max_size=254),
    st.integers(0, 255),
)
def test_submit_sm_fields_round_trip(service, addr, message, esm):
    addr = addr.replace("\x00", "")
    service = service.encode("latin-1", "ignore").decode("latin-1").replace("\x00", "")
    pdu = Pdu(
        SUBMIT_SM,
        1,
        fields={
            "service_type": service,
            "source_addr": addr,
            "esm_class": esm,
            "short_message": message,
        },
    )
    parsed = parse_pdu(pdu.serialize())
    assert parsed.fields["source_addr"] == addr
    assert parsed.fields["short_message"] == message
    assert parsed.fields["esm_class"] == esm


def test_long_message_splits_into_udh_parts():
    coding, parts = split_parts("x" * 400, 0x2A)
    assert coding == 0 and len(parts) == 3
    assert [p[:6] for p in parts] == [bytes((5, 0, 3, 0x2A, 3, n)) for n in (1, 2, 3)]
    assert [len(p) - 6 for p in parts] == [153, 153, 94]
    text, concat = decode_short_message(
        Pdu(DELIVER_SM, 1, fields={"esm_class": 0x40, "short_message": parts[1], "data_coding": 0})
    )
    assert text == "x" * 153 and (concat.reference, concat.total, concat.number) == (0x2A, 3, 2)
    coding, parts = split_parts("😀" * 40, 1)
    assert coding == 8 and len(parts) == 2


def test_receipt_text_and_tlvs():
    text = (
        b"id:abc123 sub:001 dlvrd:001 submit date:2612031200 done date:2612031201"
        b" stat:DELIVRD err:000 text:hi"
    )
    receipt = parse_receipt(Pdu(DELIVER_SM, 1, fields={"esm_class": 4, "short_message": text}))
    assert (receipt.message_id, receipt.delivered, receipt.err) == ("abc123", True, "000")
    undeliv = parse_receipt(
        Pdu(
            DELIVER_SM,
            1,
            fields={"esm_class": 4, "short_message": b"stat:UNDELIV"},
            tlvs={0x001E: b"xyz\x00", 0x0427: b"\x05"},
        )
    )
    assert (undeliv.message_id, undeliv.delivered, undeliv.final) == ("xyz", False, True)
    assert (
        parse_receipt(Pdu(DELIVER_SM, 1, fields={"esm_class": 0, "short_message": b"hi"})) is None
    )


def _bound(window=2) -> EsmeConnection:
    esme = EsmeConnection("esme", "secret", window=window, enquire_interval=30, response_timeout=5)
    esme.bind(0.0)
    bind = parse_pdu(esme.data_to_send())
    assert bind.command_id == BIND_TRANSCEIVER
    esme.receive_data(
        Pdu(BIND_TRANSCEIVER | RESPONSE, bind.sequence, fields={"system_id": "smsc"}).serialize(),
        0.1,
    )
    assert esme.events() == [Bound("smsc")]
    return esme


def test_session_submits_within_the_window_and_gets_ids():
    esme = _bound(window=2)
    first = esme.submit(1.0, destination_addr="1", short_message=b"a")
    esme.submit(1.0, destination_addr="2", short_message=b"b")
    with pytest.raises(WindowFull):
        esme.submit(1.0, destination_addr="3", short_message=b"c")
    esme.data_to_send()
    # responses may arrive split across reads
    answer = Pdu(SUBMIT_SM | RESPONSE, first, fields={"message_id": "m1"}).serialize()
    esme.receive_data(answer[:5], 1.1)
    assert esme.events() == []
    esme.receive_data(answer[5:], 1.2)
    assert esme.events() == [SubmitResult(first, 0, "m1")]
    assert esme.can_submit


def test_session_answers_deliver_sm_enquire_link_and_nacks_garbage():
    esme = _bound()
    deliver = Pdu(
        DELIVER_SM, 99, fields={"source_addr": "1", "destination_addr": "2", "short_message": b"hi"}
    )
    esme.receive_data(deliver.serialize() + Pdu(ENQUIRE_LINK, 100).serialize(), 2.0)
    events = esme.events()
    assert isinstance(events[0], DeliverSm) and events[0].pdu.fields["short_message"] == b"hi"
    out = esme.data_to_send()
    first = parse_pdu(out[: int.from_bytes(out[:4], "big")])
    second = parse_pdu(out[int.from_bytes(out[:4], "big") :])
    assert (first.command_id, first.sequence) == (DELIVER_SM | RESPONSE, 99)
    assert (second.command_id, second.sequence) == (ENQUIRE_LINK | RESPONSE, 100)
    esme.receive_data(struct.pack(">IIII", 16, 0x77, 0, 5), 2.1)
    nack = parse_pdu(esme.data_to_send())
    assert (nack.command_id, nack.sequence, nack.status) == (GENERIC_NACK, 5, 3)


def test_enquire_link_when_idle_and_loss_on_no_answer():
    esme = _bound()
    sequence = esme.submit(1.0, destination_addr="1", short_message=b"a")
    esme.data_to_send()
    assert esme.next_deadline() == 6.0  # the submit's response timeout
    esme.handle_timer(6.0)
    events = esme.events()
    assert SubmitResult(sequence, 8, "") in events
    assert isinstance(events[-1], ConnectionLost)
    idle = _bound()
    assert idle.next_deadline() == pytest.approx(30.1)
    idle.handle_timer(30.1)
    assert parse_pdu(idle.data_to_send()).command_id == ENQUIRE_LINK


def test_smsc_unbind_closes():
    esme = _bound()
    esme.receive_data(Pdu(UNBIND, 4).serialize(), 3.0)
    assert parse_pdu(esme.data_to_send()).command_id == UNBIND | RESPONSE
    assert isinstance(esme.events()[-1], ConnectionLost)
    assert esme.state == "closed"


@given(st.binary(max_size=400))
def test_session_survives_any_bytes(data):
    esme = _bound()
    esme.receive_data(data, 5.0)
    esme.events()
    esme.data_to_send()
