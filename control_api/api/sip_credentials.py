"""SIP CredentialLists and their Credentials: the usernames that may register.

``/SIP/CredentialLists.json`` creates (``FriendlyName``) and lists the account's lists;
``/SIP/CredentialLists/{CL}.json`` fetches, renames and deletes one (with its
credentials). ``.../{CL}/Credentials.json`` creates (``Username``, ``Password``) and
lists credentials; ``.../Credentials/{CR}.json`` fetches, changes the password of and
deletes one. The password is never stored or shown: only its digest HA1s (RFC 7616
§3.4.2) for the realm ``SIP_REALM``. Usernames are unique within the account only: two
accounts may each have an ``alice`` (the registrar tells them apart by whose digest verifies),
so no answer shows or reserves another account's usernames.

Every validation failure is Twilio's 21240, "Credential List Validation Error".
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from control_api.api.params import Params
from control_api.api.sip_lists import Entries, SipListKind
from control_api.api.state import store_of
from control_api.errors import CREDENTIAL_LIST_INVALID
from control_api.store import (
    MAX_FRIENDLY_NAME,
    CredentialListNameTaken,
    NoSuchCredentialList,
    SipCredential,
    UsernameTaken,
    check_sip_password,
    check_sip_username,
)

__all__ = ["credential_json", "credential_list_json", "router"]

router = APIRouter()

KIND = SipListKind(
    "CredentialLists",
    "Credentials",
    ("CL", "CR"),
    MAX_FRIENDLY_NAME,
    CREDENTIAL_LIST_INVALID,
    taken=(CredentialListNameTaken,),
)
credential_list_json = KIND.list_json
_invalid = KIND.invalid


def credential_json(credential: SipCredential) -> dict:
    return KIND.entry_json(credential, credential.credential_list_sid, username=credential.username)


def _password(value: str | None) -> str:
    if not value:
        raise _invalid("A Password is required")
    try:
        return check_sip_password(value)
    except ValueError as exc:
        raise _invalid(str(exc)) from None


async def _new_credential(
    request: Request, account_sid: str, list_sid: str, params: Params
) -> SipCredential | None:
    username = params.get("Username")
    if not username:
        raise _invalid("A Username is required")
    try:
        check_sip_username(username)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    password = _password(params.get("Password"))
    credentials = store_of(request).sip_credentials
    try:
        return await credentials.create(account_sid, list_sid, username, password)
    except UsernameTaken:
        raise _invalid(f"The SIP username {username} is already in use") from None
    except NoSuchCredentialList:  # deleted meanwhile
        return None


async def _changed_credential(
    request: Request, credential: SipCredential, params: Params
) -> SipCredential | None:
    """Only the password can change; without ``Password`` the credential is as it was."""
    if "Password" not in params:
        return credential
    password = _password(params.get("Password"))
    credentials = store_of(request).sip_credentials
    list_sid, sid = credential.credential_list_sid, credential.sid
    return await credentials.update(credential.account_sid, list_sid, sid, password)


CREDENTIALS = Entries(
    lambda r: store_of(r).sip_credentials, credential_json, _new_credential, _changed_credential
)
KIND.add_routes(router, lambda r: store_of(r).credential_lists, CREDENTIALS)
