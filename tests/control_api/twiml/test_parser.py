"""TwiML parser (control_api/twiml/parser.py): official builders, errors, hostile input."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from control_api.twiml import (
    DOCUMENT_PARSE_FAILURE,
    MAX_DEPTH,
    MAX_DOCUMENT_SIZE,
    SCHEMA_VALIDATION_WARNING,
    Client,
    Conference,
    Connect,
    Dial,
    Enqueue,
    Gather,
    Hangup,
    Leave,
    Message,
    Number,
    Pause,
    Play,
    Queue,
    Record,
    Redirect,
    Refer,
    Reject,
    Response,
    Say,
    Sip,
    Start,
    Stop,
    Stream,
    TwimlError,
    parse_messaging_twiml,
    parse_voice_twiml,
)


def only_verb(response: VoiceResponse):
    """The single verb of a builder-made document, checking nothing was ignored."""
    parsed = parse_voice_twiml(str(response))
    assert parsed.warnings == ()
    (verb,) = parsed.verbs
    return verb


def error_code(document: str | bytes) -> int:
    with pytest.raises(TwimlError) as info:
        parse_voice_twiml(document)
    return info.value.code


def doc(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


# --- documents made by the official builders ------------------------------------


def test_empty_response():
    assert parse_voice_twiml(str(VoiceResponse())) == Response(verbs=(), warnings=())


def test_say_defaults():
    response = VoiceResponse()
    response.say("Hello, world")
    assert only_verb(response) == Say("Hello, world", voice="man", language="en-US", loop=1)


def test_say_attributes():
    response = VoiceResponse()
    response.say("Bonjour", voice="Polly.Celine", language="fr-FR", loop=0)
    assert only_verb(response) == Say("Bonjour", voice="Polly.Celine", language="fr-FR", loop=0)


def test_say_ssml_children_keep_text_in_order():
    response = VoiceResponse()
    say = response.say("Your code is")
    say.break_(strength="x-weak", time="100ms")
    say.say_as("1234", interpret_as="digits")
    say.prosody("slowly", rate="slow")
    say.emphasis("now", level="strong")
    say.p("A paragraph.")
    say.s("A sentence.")
    say.phoneme("tomato", alphabet="x-sampa", ph="t@'meItoU")
    say.sub("W3C", alias="World Wide Web Consortium")
    say.w("read", role="amazon:VBD")
    say.lang("Bonjour", xml_lang="fr-FR")
    assert only_verb(response).text == (
        "Your code is 1234 slowly now A paragraph. A sentence. tomato W3C read Bonjour"
    )


def test_say_nested_ssml_and_whitespace_collapsed():
    document = doc(
        "<Say voice='alice'>\n   Hello\n  <prosody rate='slow'>dear <emphasis>friend"
        "</emphasis></prosody>\n<break/>  goodbye  </Say>"
    )
    assert parse_voice_twiml(document).verbs == (Say("Hello dear friend goodbye", voice="alice"),)


def test_play_url_with_defaults():
    response = VoiceResponse()
    response.play("https://api.twilio.com/cowbell.mp3")
    assert only_verb(response) == Play(
        url="https://api.twilio.com/cowbell.mp3", loop=1, digits=None
    )


def test_play_loop_and_digits():
    response = VoiceResponse()
    response.play("https://example.com/a.wav", loop=10)
    response.play(digits="www3")
    assert parse_voice_twiml(str(response)).verbs == (
        Play(url="https://example.com/a.wav", loop=10),
        Play(url=None, digits="www3"),
    )


def test_pause():
    response = VoiceResponse()
    response.pause()
    response.pause(length=10)
    assert parse_voice_twiml(str(response)).verbs == (Pause(length=1), Pause(length=10))


def test_gather_defaults():
    response = VoiceResponse()
    response.gather()
    gather = only_verb(response)
    assert gather == Gather()
    assert gather.input == ("dtmf",)
    assert gather.method == "POST"
    assert gather.timeout == 5
    assert gather.finish_on_key == "#"
    assert gather.num_digits is None
    assert gather.action is None
    assert gather.action_on_empty_result is False
    assert gather.language == "en-US"


def test_gather_attributes_and_nested_prompts():
    response = VoiceResponse()
    gather = response.gather(
        input="dtmf speech",
        action="/menu",
        method="get",
        timeout=3,
        finish_on_key="",
        num_digits=4,
        action_on_empty_result=True,
        speech_timeout="auto",
        language="es-MX",
        hints="sales, support",
        partial_result_callback="/partial",
        partial_result_callback_method="GET",
        barge_in=False,
        profanity_filter=False,
        speech_model="phone_call",
        enhanced=True,
        max_speech_time=30,
    )
    gather.say("Press one", voice="alice")
    gather.play("https://example.com/beep.wav")
    gather.pause(length=2)
    assert only_verb(response) == Gather(
        children=(
            Say("Press one", voice="alice"),
            Play(url="https://example.com/beep.wav"),
            Pause(length=2),
        ),
        input=("dtmf", "speech"),
        action="/menu",
        method="GET",
        timeout=3,
        finish_on_key="",
        num_digits=4,
        action_on_empty_result=True,
        speech_timeout="auto",
        language="es-MX",
        hints="sales, support",
        partial_result_callback="/partial",
        partial_result_callback_method="GET",
        barge_in=False,
        profanity_filter=False,
        speech_model="phone_call",
        enhanced=True,
        max_speech_time=30,
    )


def test_gather_numeric_speech_timeout():
    response = VoiceResponse()
    response.gather(input="speech", speech_timeout=2)
    assert only_verb(response) == Gather(input=("speech",), speech_timeout="2")


def test_dial_number_text_with_defaults():
    response = VoiceResponse()
    response.dial("415-123-4567")
    dial = only_verb(response)
    assert dial == Dial(nouns=(), number_text="415-123-4567")
    assert (dial.method, dial.timeout, dial.time_limit) == ("POST", 30, 14400)
    assert dial.record == "do-not-record"
    assert dial.hangup_on_star is False
    assert dial.answer_on_bridge is False
    assert dial.caller_id is None


def test_dial_attributes():
    response = VoiceResponse()
    response.dial(
        "+15551230000",
        action="/after-dial",
        method="GET",
        timeout=20,
        hangup_on_star=True,
        time_limit=600,
        caller_id="+15550001111",
        record="record-from-answer-dual",
        trim="trim-silence",
        recording_status_callback="/rec",
        recording_status_callback_method="GET",
        recording_status_callback_event="in-progress completed",
        answer_on_bridge=True,
        ring_tone="uk",
        recording_track="inbound",
        sequential=True,
        refer_url="/refer",
        refer_method="GET",
    )
    assert only_verb(response) == Dial(
        number_text="+15551230000",
        action="/after-dial",
        method="GET",
        timeout=20,
        hangup_on_star=True,
        time_limit=600,
        caller_id="+15550001111",
        record="record-from-answer-dual",
        trim="trim-silence",
        recording_status_callback="/rec",
        recording_status_callback_method="GET",
        recording_status_callback_event=("in-progress", "completed"),
        answer_on_bridge=True,
        ring_tone="uk",
        recording_track="inbound",
        sequential=True,
        refer_url="/refer",
        refer_method="GET",
    )


def test_dial_legacy_record_true():
    assert parse_voice_twiml(doc('<Dial record="true">+1555</Dial>')).verbs[0].record == (
        "record-from-answer"
    )


def test_dial_numbers_sip_and_clients_ring_together():
    response = VoiceResponse()
    dial = response.dial()
    dial.number(
        "+15551234567",
        send_digits="wwww1928",
        url="/screen",
        method="GET",
        status_callback="/status",
        status_callback_event="initiated ringing answered completed",
        status_callback_method="GET",
    )
    dial.sip("sip:alice@example.com;transport=tcp", username="admin", password="1234")
    dial.client("bob")
    client = dial.client(url="/whisper")
    client.identity("carol")
    client.parameter(name="FirstName", value="Carol")
    client.parameter(name="Empty")
    assert only_verb(response) == Dial(
        nouns=(
            Number(
                "+15551234567",
                send_digits="wwww1928",
                url="/screen",
                method="GET",
                status_callback="/status",
                status_callback_event=("initiated", "ringing", "answered", "completed"),
                status_callback_method="GET",
            ),
            Sip("sip:alice@example.com;transport=tcp", username="admin", password="1234"),
            Client("bob"),
            Client("carol", parameters=(("FirstName", "Carol"), ("Empty", "")), url="/whisper"),
        ),
        number_text=None,
    )


def test_dial_noun_defaults():
    response = VoiceResponse()
    response.dial().number("+15551234567")
    (number,) = only_verb(response).nouns
    assert number.method == "POST"
    assert number.status_callback_event == ("completed",)
    assert number.send_digits is None


def test_dial_conference_defaults():
    response = VoiceResponse()
    response.dial().conference("Room 1234")
    conference = only_verb(response).nouns[0]
    assert conference == Conference("Room 1234")
    assert conference.muted is False
    assert conference.beep == "true"
    assert conference.start_conference_on_enter is True
    assert conference.end_conference_on_exit is False
    assert conference.wait_url is None
    assert conference.wait_method == "POST"
    assert conference.max_participants == 250


def test_dial_conference_attributes():
    response = VoiceResponse()
    response.dial().conference(
        "moderated",
        muted=True,
        beep="onExit",
        start_conference_on_enter=False,
        end_conference_on_exit=True,
        wait_url="",
        wait_method="GET",
        max_participants=10,
        record="record-from-start",
        trim="do-not-trim",
        status_callback="/conf",
        status_callback_event="start end join leave mute hold speaker",
        status_callback_method="GET",
        participant_label="agent",
    )
    assert only_verb(response).nouns == (
        Conference(
            "moderated",
            muted=True,
            beep="onExit",
            start_conference_on_enter=False,
            end_conference_on_exit=True,
            wait_url="",
            wait_method="GET",
            max_participants=10,
            record="record-from-start",
            trim="do-not-trim",
            status_callback="/conf",
            status_callback_event=("start", "end", "join", "leave", "mute", "hold", "speaker"),
            status_callback_method="GET",
            participant_label="agent",
        ),
    )


def test_dial_queue():
    response = VoiceResponse()
    response.dial().queue("support", url="/about-to-connect", method="GET")
    assert only_verb(response).nouns == (Queue("support", url="/about-to-connect", method="GET"),)


def test_record_defaults():
    response = VoiceResponse()
    response.record()
    record = only_verb(response)
    assert record == Record()
    assert (record.timeout, record.finish_on_key, record.max_length) == (5, "1234567890*#", 3600)
    assert record.play_beep is True
    assert record.trim == "trim-silence"
    assert record.method == "POST"
    assert record.transcribe is False


def test_record_attributes():
    response = VoiceResponse()
    response.record(
        action="/handle",
        method="GET",
        timeout=0,
        finish_on_key="*",
        max_length=20,
        play_beep=False,
        trim="do-not-trim",
        recording_status_callback="/rs",
        recording_status_callback_method="GET",
        recording_status_callback_event="in-progress completed absent",
        transcribe=True,
        transcribe_callback="/tx",
    )
    assert only_verb(response) == Record(
        action="/handle",
        method="GET",
        timeout=0,
        finish_on_key="*",
        max_length=20,
        play_beep=False,
        trim="do-not-trim",
        recording_status_callback="/rs",
        recording_status_callback_method="GET",
        recording_status_callback_event=("in-progress", "completed", "absent"),
        transcribe=True,
        transcribe_callback="/tx",
    )


def test_hangup_reject_redirect():
    response = VoiceResponse()
    response.hangup()
    response.reject()
    response.reject(reason="busy")
    response.redirect("https://example.com/next")
    response.redirect("/next", method="GET")
    assert parse_voice_twiml(str(response)).verbs == (
        Hangup(),
        Reject(reason="rejected"),
        Reject(reason="busy"),
        Redirect("https://example.com/next", method="POST"),
        Redirect("/next", method="GET"),
    )


def test_refer():
    response = VoiceResponse()
    response.refer(action="/refer-done", method="GET").sip("sip:alice@example.com")
    assert only_verb(response) == Refer(
        sip=Sip("sip:alice@example.com"), action="/refer-done", method="GET"
    )


def test_connect_stream_with_parameters():
    response = VoiceResponse()
    stream = response.connect(action="/after").stream(
        url="wss://agent.example.com/media",
        name="agent",
        status_callback="/stream-status",
        status_callback_method="GET",
    )
    stream.parameter(name="caller", value="+15551234567")
    stream.parameter(name="lang", value="en")
    assert only_verb(response) == Connect(
        stream=Stream(
            url="wss://agent.example.com/media",
            name="agent",
            track="inbound_track",
            status_callback="/stream-status",
            status_callback_method="GET",
            parameters=(("caller", "+15551234567"), ("lang", "en")),
        ),
        action="/after",
        method="POST",
    )


def test_start_and_stop_stream():
    response = VoiceResponse()
    response.start().stream(url="ws://recorder.local:8080/", name="fork", track="both_tracks")
    response.stop().stream(name="fork")
    assert parse_voice_twiml(str(response)).verbs == (
        Start(Stream(url="ws://recorder.local:8080/", name="fork", track="both_tracks")),
        Stop(Stream(url=None, name="fork")),
    )


def test_stream_defaults():
    response = VoiceResponse()
    response.start().stream(url="wss://x.example/")
    stream = only_verb(response).stream
    assert stream.track == "inbound_track"
    assert stream.status_callback_method == "POST"
    assert stream.parameters == ()
    assert stream.name is None


def test_enqueue_and_leave():
    response = VoiceResponse()
    response.enqueue("support", action="/left", wait_url="/hold", wait_url_method="GET")
    response.leave()
    assert parse_voice_twiml(str(response)).verbs == (
        Enqueue("support", action="/left", wait_url="/hold", wait_url_method="GET"),
        Leave(),
    )


def test_program_keeps_verb_order():
    response = VoiceResponse()
    response.say("one")
    response.pause(length=2)
    response.play("https://example.com/two.mp3")
    response.hangup()
    assert parse_voice_twiml(str(response)).verbs == (
        Say("one"),
        Pause(2),
        Play("https://example.com/two.mp3"),
        Hangup(),
    )


def test_bytes_and_text_documents_agree():
    response = VoiceResponse()
    response.say("Grüß Gott, señor")
    text = str(response)
    assert parse_voice_twiml(text) == parse_voice_twiml(text.encode("utf-8"))
    assert parse_voice_twiml(text).verbs == (Say("Grüß Gott, señor"),)


def test_bytes_follow_declared_encoding():
    document = '<?xml version="1.0" encoding="ISO-8859-1"?><Response><Say>Olá</Say></Response>'
    assert parse_voice_twiml(document.encode("latin-1")).verbs == (Say("Olá"),)


def test_text_ignores_declared_encoding():
    document = '<?xml version="1.0" encoding="ISO-8859-1"?><Response><Say>Olá</Say></Response>'
    assert parse_voice_twiml(document).verbs == (Say("Olá"),)


def test_text_content_is_stripped():
    document = doc("<Play>\n   https://example.com/a.mp3  \n</Play><Redirect> /x </Redirect>")
    assert parse_voice_twiml(document).verbs == (Play("https://example.com/a.mp3"), Redirect("/x"))


def test_method_is_case_insensitive():
    assert parse_voice_twiml(doc('<Redirect method="get">/x</Redirect>')).verbs == (
        Redirect("/x", method="GET"),
    )


def test_comments_and_processing_instructions_are_ignored():
    document = doc("<!-- hello --><?php echo 1 ?><Say>hi<!-- inner --> there</Say>")
    assert parse_voice_twiml(document).verbs == (Say("hi there"),)


# --- warnings -------------------------------------------------------------------


def test_unknown_attribute_names_are_warnings():
    response = VoiceResponse()
    response.say("hi", flavour="vanilla")
    response.gather(debug=True)
    parsed = parse_voice_twiml(str(response))
    assert parsed.verbs == (Say("hi"), Gather())
    assert len(parsed.warnings) == 2
    assert "flavour" in parsed.warnings[0]
    assert "Say" in parsed.warnings[0]
    assert "debug" in parsed.warnings[1]


def test_attribute_names_are_case_sensitive():
    parsed = parse_voice_twiml(doc('<Gather Timeout="10" numdigits="3"/>'))
    assert parsed.verbs == (Gather(timeout=5, num_digits=None),)
    assert len(parsed.warnings) == 2
    assert "'Timeout'" in parsed.warnings[0]


def test_namespace_declarations_are_not_warnings():
    parsed = parse_voice_twiml('<Response xmlns="urn:x"><Hangup/></Response>')
    assert parsed == Response(verbs=(Hangup(),), warnings=())


# --- errors ---------------------------------------------------------------------

PARSE_FAILURES = {
    "empty": "",
    "whitespace": "   \n",
    "not xml": "Hello, this is plain text",
    "unclosed": "<Response><Say>hi</Response>",
    "wrong root": "<Reply><Say>hi</Say></Reply>",
    "lower-case root": "<response/>",
    "html": "<html><body>Error 500</body></html>",
    "two roots": "<Response/><Response/>",
    "bad entity": "<Response><Say>&nbsp;</Say></Response>",
    "doctype": '<!DOCTYPE Response SYSTEM "http://evil.example/r.dtd"><Response/>',
    "entity declaration": '<!DOCTYPE r [<!ENTITY x "y">]><Response>&x;</Response>',
    "billion laughs": (
        '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + "".join(
            f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
            for i in range(1, 10)
        )
        + "]><Response><Say>&lol9;</Say></Response>"
    ),
    "external entity": (
        '<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Response>&xxe;</Response>'
    ),
}


@pytest.mark.parametrize("document", PARSE_FAILURES.values(), ids=PARSE_FAILURES.keys())
def test_parse_failures(document):
    assert error_code(document) == DOCUMENT_PARSE_FAILURE


@pytest.mark.parametrize(
    "document",
    [
        b"",
        b"\xff\xfe\xfd",
        b"<Response><Say>\xff</Say></Response>",
        b"\x00<Response/>",
        b'<?xml version="1.0" encoding="x-no-such"?><Response/>',
        b'<?xml version="1.0" encoding="shift_jis"?><Response/>',
    ],
)
def test_parse_failures_in_bytes(document):
    assert error_code(document) == DOCUMENT_PARSE_FAILURE


def test_unencodable_text_is_a_parse_failure():
    assert error_code("<Response><Say>\ud800</Say></Response>") == DOCUMENT_PARSE_FAILURE


def test_not_text_or_bytes_is_a_parse_failure():
    assert error_code(12345) == DOCUMENT_PARSE_FAILURE  # type: ignore[arg-type]


def test_document_size_is_capped():
    filler = "x" * (MAX_DOCUMENT_SIZE - len(doc("<Say></Say>")))
    at_limit = doc(f"<Say>{filler}</Say>")
    assert len(at_limit.encode()) == MAX_DOCUMENT_SIZE
    assert parse_voice_twiml(at_limit).verbs[0].text == filler
    assert error_code(doc(f"<Say>{filler}x</Say>")) == DOCUMENT_PARSE_FAILURE
    assert error_code(doc(f"<Say>{filler}x</Say>").encode()) == DOCUMENT_PARSE_FAILURE


def test_depth_is_capped():
    def nested(depth: int) -> str:
        # Response and Say are two levels; prosody fills the rest.
        inner = depth - 2
        return doc("<Say>" + "<prosody>" * inner + "deep" + "</prosody>" * inner + "</Say>")

    assert parse_voice_twiml(nested(MAX_DEPTH)).verbs == (Say("deep"),)
    assert error_code(nested(MAX_DEPTH + 1)) == DOCUMENT_PARSE_FAILURE


def test_very_deep_nesting_is_a_parse_failure_not_a_crash():
    # Deep enough to overflow a recursive walk, small enough to pass the size cap.
    document = doc("<Say>" + "<s>" * 9000 + "</s>" * 9000 + "</Say>")
    assert len(document) <= MAX_DOCUMENT_SIZE
    assert error_code(document) == DOCUMENT_PARSE_FAILURE


SCHEMA_ERRORS = {
    "unknown verb": "<Dance/>",
    "unsupported twilio verb": "<Pay/>",
    "lower-case verb": "<say>hi</say>",
    "text in Response": "Hello",
    "Dial inside Gather": "<Gather><Dial>+1555</Dial></Gather>",
    "Record inside Gather": "<Gather><Record/></Gather>",
    "Gather inside Gather": "<Gather><Gather/></Gather>",
    "text in Gather": "<Gather>press 1</Gather>",
    "Say inside Dial": "<Dial><Say>hi</Say></Dial>",
    "Number outside Dial": "<Number>+1555</Number>",
    "Stream outside Start": "<Stream url='wss://x'/>",
    "unknown SSML": "<Say>hi <script>x</script></Say>",
    "Say inside Play": "<Play><Say>x</Say></Play>",
    "Redirect without URL": "<Redirect/>",
    "Redirect with blank URL": "<Redirect>   </Redirect>",
    "Play without URL or digits": "<Play/>",
    "Play loop only": "<Play loop='2'></Play>",
    "Dial with nothing": "<Dial/>",
    "Dial text and nouns": "<Dial>+1555<Number>+1666</Number></Dial>",
    "Conference with others": "<Dial><Conference>r</Conference><Number>+1</Number></Dial>",
    "Number without number": "<Dial><Number/></Dial>",
    "Sip not sip URI": "<Dial><Sip>http://x</Sip></Dial>",
    "Client without identity": "<Dial><Client><Parameter name='a' value='b'/></Client></Dial>",
    "Client two identities": "<Dial><Client>a<Identity>b</Identity></Client></Dial>",
    "Conference without name": "<Dial><Conference/></Dial>",
    "Queue without name": "<Dial><Queue/></Dial>",
    "Stream without url": "<Start><Stream name='x'/></Start>",
    "Connect Stream without url": "<Connect><Stream/></Connect>",
    "Stream http url": "<Start><Stream url='https://x'/></Start>",
    "Start without Stream": "<Start/>",
    "Start two Streams": "<Start><Stream url='wss://a'/><Stream url='wss://b'/></Start>",
    "Connect Room": "<Connect><Room>r</Room></Connect>",
    "Connect outbound track": "<Connect><Stream url='wss://x' track='outbound_track'/></Connect>",
    "Stop without name": "<Stop><Stream/></Stop>",
    "Parameter without name": (
        "<Start><Stream url='wss://x'><Parameter value='v'/></Stream></Start>"
    ),
    "Refer without Sip": "<Refer/>",
    "Refer with Number": "<Refer><Number>+1</Number></Refer>",
    "Enqueue without name": "<Enqueue/>",
    "text in Hangup": "<Hangup>now</Hangup>",
    "child in Pause": "<Pause><Say>x</Say></Pause>",
    "non-numeric timeout": "<Gather timeout='five'/>",
    "fractional timeout": "<Gather timeout='2.5'/>",
    "zero Gather timeout": "<Gather timeout='0'/>",
    "negative Dial timeout": "<Dial timeout='-1'>+1</Dial>",
    "huge timeout": "<Dial timeout='99999999999999999999'>+1</Dial>",
    "negative Say loop": "<Say loop='-1'>x</Say>",
    "negative Play loop": "<Play loop='-2'>https://x/a.mp3</Play>",
    "numDigits zero": "<Gather numDigits='0'/>",
    "numDigits text": "<Gather numDigits='all'/>",
    "zero Pause": "<Pause length='0'/>",
    "method PUT": "<Redirect method='PUT'>/x</Redirect>",
    "method empty": "<Gather method=''/>",
    "bad track": "<Start><Stream url='wss://x' track='inbound'/></Start>",
    "bad reason": "<Reject reason='declined'/>",
    "bad boolean": "<Gather actionOnEmptyResult='yes'/>",
    "bad hangupOnStar": "<Dial hangupOnStar='1'>+1</Dial>",
    "bad playBeep": "<Record playBeep='maybe'/>",
    "bad input": "<Gather input='dtmf voice'/>",
    "empty input": "<Gather input=' '/>",
    "two finish keys": "<Gather finishOnKey='#*'/>",
    "letter finish key": "<Gather finishOnKey='a'/>",
    "bad Record finishOnKey": "<Record finishOnKey='12x'/>",
    "bad speechTimeout": "<Gather speechTimeout='soon'/>",
    "bad digits": "<Play digits='12x'/>",
    "empty digits": "<Play digits=''/>",
    "bad sendDigits": "<Dial><Number sendDigits='1 2'>+1</Number></Dial>",
    "bad Dial record": "<Dial record='always'>+1</Dial>",
    "bad beep": "<Dial><Conference beep='loud'>r</Conference></Dial>",
    "too many participants": "<Dial><Conference maxParticipants='251'>r</Conference></Dial>",
    "bad status event": "<Dial><Number statusCallbackEvent='ringing hungup'>+1</Number></Dial>",
    "bad timeLimit": "<Dial timeLimit='0'>+1</Dial>",
}


@pytest.mark.parametrize("body", SCHEMA_ERRORS.values(), ids=SCHEMA_ERRORS.keys())
def test_schema_errors(body):
    assert error_code(doc(body)) == SCHEMA_VALIDATION_WARNING


def test_error_carries_code_title_and_detail():
    with pytest.raises(TwimlError) as info:
        parse_voice_twiml(doc("<Gather><Dial>+1555</Dial></Gather>"))
    error = info.value
    assert isinstance(error, ValueError)
    assert error.code == 12200
    assert error.message == "Schema validation warning"
    assert "<Dial>" in error.detail
    assert "<Gather>" in error.detail
    assert str(error).startswith("12200 Schema validation warning")


def test_parse_failure_title():
    with pytest.raises(TwimlError) as info:
        parse_voice_twiml("<Response>")
    assert (info.value.code, info.value.message) == (12100, "Document parse failure")


def test_attribute_error_names_the_attribute():
    with pytest.raises(TwimlError) as info:
        parse_voice_twiml(doc("<Gather timeout='five'/>"))
    assert "timeout" in info.value.detail
    assert "'five'" in info.value.detail


# --- messaging ------------------------------------------------------------------


def test_message_with_text_body():
    response = MessagingResponse()
    response.message("Store hours are 9-5", to="+15551234567", from_="+15557654321")
    assert parse_messaging_twiml(str(response)) == (
        Message(
            body="Store hours are 9-5",
            to="+15551234567",
            from_="+15557654321",
            action=None,
            method="POST",
            media=(),
        ),
    )


def test_message_with_body_and_media_children():
    response = MessagingResponse()
    message = response.message(action="/sms-status", method="GET", status_callback="/cb")
    message.body("Here is a picture")
    message.media("https://example.com/a.jpg")
    message.media("https://example.com/b.png")
    assert parse_messaging_twiml(str(response)) == (
        Message(
            body="Here is a picture",
            action="/sms-status",
            method="GET",
            media=("https://example.com/a.jpg", "https://example.com/b.png"),
            status_callback="/cb",
        ),
    )


def test_message_media_only_and_redirect():
    response = MessagingResponse()
    response.message().media("https://example.com/a.jpg")
    response.redirect("https://example.com/next", method="GET")
    assert parse_messaging_twiml(str(response)) == (
        Message(body="", media=("https://example.com/a.jpg",)),
        Redirect("https://example.com/next", method="GET"),
    )


def test_message_keeps_inner_newlines():
    assert parse_messaging_twiml(doc("<Message>\n  line one\nline two  \n</Message>")) == (
        Message(body="line one\nline two"),
    )


def test_empty_messaging_response():
    assert parse_messaging_twiml(str(MessagingResponse())) == ()


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ("<Reply/>", DOCUMENT_PARSE_FAILURE),
        ("<Response><Message>", DOCUMENT_PARSE_FAILURE),
        (doc("<Message/>"), SCHEMA_VALIDATION_WARNING),
        (doc("<Message><Media/></Message>"), SCHEMA_VALIDATION_WARNING),
        (doc("<Message><Say>x</Say></Message>"), SCHEMA_VALIDATION_WARNING),
        (doc("<Say>voice verb</Say>"), SCHEMA_VALIDATION_WARNING),
        (doc("<Message method='PATCH'>x</Message>"), SCHEMA_VALIDATION_WARNING),
        (doc("<Redirect/>"), SCHEMA_VALIDATION_WARNING),
    ],
)
def test_messaging_errors(document, code):
    with pytest.raises(TwimlError) as info:
        parse_messaging_twiml(document)
    assert info.value.code == code


# --- hostile input --------------------------------------------------------------


def full_program() -> str:
    response = VoiceResponse()
    gather = response.gather(input="dtmf speech", action="/g", num_digits=2, timeout=4)
    gather.say("Press or say", voice="alice", loop=2).emphasis("one")
    gather.play("https://example.com/a.mp3", loop=0)
    gather.pause(length=1)
    dial = response.dial(caller_id="+15550000000", record="record-from-answer")
    dial.number("+15551234567", send_digits="1w2")
    dial.sip("sip:bob@example.com")
    client = dial.client()
    client.identity("carol")
    client.parameter(name="k", value="v")
    response.dial().conference("room", beep="onEnter", max_participants=5)
    response.record(max_length=30, finish_on_key="#")
    stream = response.connect().stream(url="wss://example.com/s")
    stream.parameter(name="a", value="b")
    response.start().stream(url="wss://example.com/f", track="both_tracks", name="f")
    response.stop().stream(name="f")
    response.refer().sip("sip:transfer@example.com")
    response.enqueue("q")
    response.redirect("/next", method="GET")
    response.reject(reason="busy")
    response.hangup()
    return str(response)


def full_messages() -> str:
    response = MessagingResponse()
    response.message("hi", to="+1", from_="+2")
    message = response.message()
    message.body("b")
    message.media("https://example.com/m.jpg")
    response.redirect("/r")
    return str(response)


SEEDS = [full_program(), full_messages(), doc("<Say>x</Say><Pause length='3'/>")]


def test_seed_documents_parse():
    assert len(parse_voice_twiml(SEEDS[0]).verbs) == 12
    assert len(parse_messaging_twiml(SEEDS[1])) == 3


def parse_both(document: str | bytes) -> None:
    for parse in (parse_voice_twiml, parse_messaging_twiml):
        try:
            parse(document)
        except TwimlError as error:
            assert error.code in (DOCUMENT_PARSE_FAILURE, SCHEMA_VALIDATION_WARNING)


@given(st.text(max_size=400))
def test_random_text_parses_or_raises_twiml_error(text):
    parse_both(text)


@given(st.binary(max_size=400))
def test_random_bytes_parse_or_raise_twiml_error(data):
    parse_both(data)


XML_PIECES = st.sampled_from(
    [
        "<",
        ">",
        "/>",
        "</",
        '"',
        "'",
        "&",
        "&amp;",
        "&#0;",
        "&#x41;",
        "=",
        " ",
        "-1",
        "0",
        "99999999999",
        "true",
        "GET",
        "<Say>",
        "</Say>",
        "<Dial>",
        "<Gather>",
        "<Stream url='wss://x'/>",
        "<!DOCTYPE a>",
        "<![CDATA[x]]>",
        "<?pi x?>",
        "<!--c-->",
        "\x00",
        "\ud800",
        "é",
        "xmlns='u'",
        "a:b",
    ]
)


@st.composite
def mutated(draw):
    seed = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(seed)))
        end = draw(st.integers(position, min(len(seed), position + 20)))
        replacement = draw(st.one_of(XML_PIECES, st.text(max_size=5)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "duplicate"]))
        if action == "insert":
            seed = seed[:position] + replacement + seed[position:]
        elif action == "delete":
            seed = seed[:position] + seed[end:]
        elif action == "replace":
            seed = seed[:position] + replacement + seed[end:]
        else:
            seed = seed[:position] + seed[position:end] * 2 + seed[end:]
    return seed


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_documents_parse_or_raise_twiml_error(document):
    parse_both(document)
    try:
        encoded = document.encode("utf-8")
    except UnicodeEncodeError:
        return
    parse_both(encoded)


ATTRIBUTE_VALUES = st.one_of(
    st.sampled_from(["", " ", "0", "1", "-1", "true", "false", "GET", "auto", "#", "wss://x"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=10),
)
ELEMENTS = st.sampled_from(
    ["Say", "Play", "Pause", "Gather", "Dial", "Record", "Reject", "Redirect", "Enqueue", "Number"]
)
ATTRIBUTE_NAMES = st.sampled_from(
    [
        "loop",
        "length",
        "timeout",
        "numDigits",
        "finishOnKey",
        "method",
        "input",
        "digits",
        "reason",
        "record",
        "hangupOnStar",
        "speechTimeout",
        "maxLength",
        "sendDigits",
        "beep",
    ]
)


@given(ELEMENTS, st.dictionaries(ATTRIBUTE_NAMES, ATTRIBUTE_VALUES, max_size=4))
def test_random_attribute_values_parse_or_raise_schema_error(name, attributes):
    response = VoiceResponse()
    if name == "Number":
        node = response.dial().number("+15551234567")
    else:
        node = response.add_child(name, None if name == "Pause" else "https://example.com/x")
    node.attrs.update(attributes)
    try:
        parse_voice_twiml(str(response))
    except TwimlError as error:
        assert error.code == SCHEMA_VALIDATION_WARNING


@given(
    st.text(
        st.characters(blacklist_categories=("Cs", "Cc", "Cn")),
        min_size=1,
        max_size=60,
    ).filter(lambda s: s.split()),
    st.text(st.characters(whitelist_categories=("L", "N")), min_size=1, max_size=20),
    st.integers(0, 1000),
)
def test_say_round_trips_through_the_builder(text, voice, loop):
    response = VoiceResponse()
    response.say(text, voice=voice, loop=loop)
    assert parse_voice_twiml(str(response)).verbs == (
        Say(" ".join(text.split()), voice=voice, loop=loop),
    )
