"""Whatever a client sends to the SIP credential, recording and conference resources,
the answer is never a 500, and errors keep Twilio's shape."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from control_api.sids import new_sid
from control_api.store import ConferenceRecord, ParticipantRecord
from tests.control_api.api.routing_server import FakeLiveConferences, serve_api
from tests.control_api.api.test_fuzz import FORM, VALUES, assert_answer, fuzz

NAMES = st.sampled_from(
    [
        "FriendlyName",
        "Username",
        "Password",
        "CallSid",
        "ConferenceSid",
        "DateCreated",
        "DateCreated<",
        "DateCreated>",
        "DateUpdated",
        "DateUpdated<",
        "DateUpdated>",
        "Status",
        "Muted",
        "Hold",
        "Coaching",
        "Page",
        "PageSize",
        "PageToken",
    ]
) | st.text(max_size=12)
PAIRS = st.lists(
    st.tuples(NAMES, VALUES | st.sampled_from(["true", "False", "in-progress"])), max_size=8
)


@pytest.fixture(scope="module")
def api(tmp_path_factory, store_url):
    root = tmp_path_factory.mktemp("routing-fuzz")
    with serve_api(
        store_url,
        live_conferences=FakeLiveConferences(),
        recordings_dir=root / "recordings",
    ) as running:
        yield running


@pytest.fixture
def room(api, account):
    """A conference of ``account`` with one participant: (conference SID, call SID)."""
    conference = api.run(
        api.store.conferences.insert(
            ConferenceRecord(sid=new_sid("CF"), account_sid=account.sid, friendly_name="fuzz")
        )
    )
    call = api.insert_call(account, status="in-progress")
    api.run(
        api.store.participants.insert(
            ParticipantRecord(
                conference_sid=conference.sid, call_sid=call.sid, account_sid=account.sid
            )
        )
    )
    return conference.sid, call.sid


def post_form(api, path, auth, pairs):
    return api.http.post(path, content=urlencode(pairs).encode(), headers=FORM, auth=auth)


@fuzz
@given(pairs=PAIRS)
@pytest.mark.parametrize(
    "resource",
    [
        "Recordings.json",
        "Conferences.json",
        "SIP/CredentialLists.json",
        "Conferences/{cf}/Participants.json",
        "Conferences/{cf}/Recordings.json",
    ],
)
def test_lists(api, account, auth, room, resource, pairs):
    path = f"/2010-04-01/Accounts/{account.sid}/" + resource.format(cf=room[0])
    assert_answer(api.http.get(path, params=pairs, auth=auth), {200, 400})


@fuzz
@given(pairs=PAIRS)
def test_conference_and_participant_updates(api, account, auth, room, pairs):
    base = f"/2010-04-01/Accounts/{account.sid}/Conferences/{room[0]}"
    assert_answer(post_form(api, f"{base}/Participants/{room[1]}.json", auth, pairs), {200, 400})
    assert_answer(post_form(api, f"{base}.json", auth, pairs), {200, 400})


@fuzz
@given(pairs=PAIRS)
def test_credential_list_and_credential_creation(api, account, auth, pairs):
    base = f"/2010-04-01/Accounts/{account.sid}/SIP/CredentialLists"
    created = post_form(api, f"{base}.json", auth, pairs)
    assert_answer(created, {201, 400})
    if created.status_code != 201:
        return
    credentials = created.json()["subresource_uris"]["credentials"]
    made = post_form(api, credentials, auth, pairs)
    assert_answer(made, {201, 400})
    assert api.http.delete(created.json()["uri"], auth=auth).status_code == 204
