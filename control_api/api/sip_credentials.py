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

from functools import partial

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from control_api.api.accounts import account_uri
from control_api.api.auth import PathAccount
from control_api.api.paging import page_response
from control_api.api.params import form_params
from control_api.api.resource import deleted, found, path_sid
from control_api.api.state import store_of
from control_api.errors import CREDENTIAL_LIST_INVALID, ApiError
from control_api.sids import rfc2822
from control_api.store import (
    MAX_FRIENDLY_NAME,
    Account,
    CredentialListNameTaken,
    NoSuchCredentialList,
    SipCredential,
    SipCredentialList,
    UsernameTaken,
    check_sip_password,
    check_sip_username,
)

__all__ = ["credential_json", "credential_list_json", "router"]

router = APIRouter()

LISTS = "/2010-04-01/Accounts/{account_sid}/SIP/CredentialLists.json"
LIST = "/2010-04-01/Accounts/{account_sid}/SIP/CredentialLists/{list_sid}.json"
CREDENTIALS = "/2010-04-01/Accounts/{account_sid}/SIP/CredentialLists/{list_sid}/Credentials.json"
CREDENTIAL = (
    "/2010-04-01/Accounts/{account_sid}/SIP/CredentialLists/{list_sid}/Credentials/{sid}.json"
)


def _list_base(account_sid: str, list_sid: str) -> str:
    return f"{account_uri(account_sid)}/SIP/CredentialLists/{list_sid}"


def credential_list_json(credential_list: SipCredentialList) -> dict:
    base = _list_base(credential_list.account_sid, credential_list.sid)
    return {
        "account_sid": credential_list.account_sid,
        "date_created": rfc2822(credential_list.date_created),
        "date_updated": rfc2822(credential_list.date_updated),
        "friendly_name": credential_list.friendly_name,
        "sid": credential_list.sid,
        "subresource_uris": {"credentials": f"{base}/Credentials.json"},
        "uri": f"{base}.json",
    }


def credential_json(credential: SipCredential) -> dict:
    base = _list_base(credential.account_sid, credential.credential_list_sid)
    return {
        "account_sid": credential.account_sid,
        "credential_list_sid": credential.credential_list_sid,
        "date_created": rfc2822(credential.date_created),
        "date_updated": rfc2822(credential.date_updated),
        "sid": credential.sid,
        "uri": f"{base}/Credentials/{credential.sid}.json",
        "username": credential.username,
    }


def _invalid(message: str) -> ApiError:
    return ApiError.bad_parameter(message, CREDENTIAL_LIST_INVALID)


def _friendly_name(value: str | None) -> str:
    if not value:
        raise _invalid("A FriendlyName is required")
    if len(value) > MAX_FRIENDLY_NAME:
        raise _invalid(f"FriendlyName must have 1 to {MAX_FRIENDLY_NAME} characters")
    return value


def _password(value: str | None) -> str:
    if not value:
        raise _invalid("A Password is required")
    try:
        return check_sip_password(value)
    except ValueError as exc:
        raise _invalid(str(exc)) from None


async def _existing_list(request: Request, account: Account, list_sid: str) -> SipCredentialList:
    path_sid(request, list_sid, "CL")
    return found(request, await store_of(request).credential_lists.get(account.sid, list_sid))


async def _existing_credential(
    request: Request, account: Account, list_sid: str, sid: str
) -> SipCredential:
    path_sid(request, list_sid, "CL")
    path_sid(request, sid, "CR")
    credentials = store_of(request).sip_credentials
    return found(request, await credentials.get(account.sid, list_sid, sid))


# Credential lists


@router.post(LISTS)
async def create_credential_list(request: Request, account: PathAccount) -> Response:
    params = await form_params(request)
    name = _friendly_name(params.get("FriendlyName"))
    try:
        created = await store_of(request).credential_lists.create(account.sid, name)
    except CredentialListNameTaken:
        raise _invalid(f"A credential list named {name} exists already") from None
    return JSONResponse(credential_list_json(created), status_code=201)


@router.get(LISTS)
async def list_credential_lists(request: Request, account: PathAccount) -> Response:
    lists = partial(store_of(request).credential_lists.page, account.sid)
    return await page_response(request, "credential_lists", lists, credential_list_json)


@router.get(LIST)
async def fetch_credential_list(request: Request, list_sid: str, account: PathAccount) -> Response:
    return JSONResponse(credential_list_json(await _existing_list(request, account, list_sid)))


@router.post(LIST)
async def update_credential_list(request: Request, list_sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    await _existing_list(request, account, list_sid)
    name = _friendly_name(params.get("FriendlyName"))
    try:
        updated = await store_of(request).credential_lists.update(account.sid, list_sid, name)
    except CredentialListNameTaken:
        raise _invalid(f"A credential list named {name} exists already") from None
    return JSONResponse(credential_list_json(found(request, updated)))  # None: deleted meanwhile


@router.delete(LIST)
async def delete_credential_list(request: Request, list_sid: str, account: PathAccount) -> Response:
    path_sid(request, list_sid, "CL")
    return deleted(request, await store_of(request).credential_lists.delete(account.sid, list_sid))


# Credentials


@router.post(CREDENTIALS)
async def create_credential(request: Request, list_sid: str, account: PathAccount) -> Response:
    params = await form_params(request)
    await _existing_list(request, account, list_sid)
    username = params.get("Username")
    if not username:
        raise _invalid("A Username is required")
    try:
        check_sip_username(username)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    password = _password(params.get("Password"))
    try:
        created = await store_of(request).sip_credentials.create(
            account.sid, list_sid, username, password
        )
    except UsernameTaken:
        raise _invalid(f"The SIP username {username} is already in use") from None
    except NoSuchCredentialList:  # deleted meanwhile
        raise ApiError.not_found(request.url.path) from None
    return JSONResponse(credential_json(created), status_code=201)


@router.get(CREDENTIALS)
async def list_credentials(request: Request, list_sid: str, account: PathAccount) -> Response:
    credentials = store_of(request).sip_credentials

    async def fetch(**window: int) -> list[SipCredential]:
        await _existing_list(request, account, list_sid)  # after the query's 400s
        return await credentials.page(account.sid, list_sid, **window)

    return await page_response(request, "credentials", fetch, credential_json)


@router.get(CREDENTIAL)
async def fetch_credential(
    request: Request, list_sid: str, sid: str, account: PathAccount
) -> Response:
    return JSONResponse(
        credential_json(await _existing_credential(request, account, list_sid, sid))
    )


@router.post(CREDENTIAL)
async def update_credential(
    request: Request, list_sid: str, sid: str, account: PathAccount
) -> Response:
    """Only the password can change; without ``Password`` the credential is returned as is."""
    params = await form_params(request)
    credential = await _existing_credential(request, account, list_sid, sid)
    if "Password" in params:
        password = _password(params.get("Password"))
        credentials = store_of(request).sip_credentials
        updated = await credentials.update(account.sid, list_sid, sid, password)
        credential = found(request, updated)  # None: deleted meanwhile
    return JSONResponse(credential_json(credential))


@router.delete(CREDENTIAL)
async def delete_credential(
    request: Request, list_sid: str, sid: str, account: PathAccount
) -> Response:
    path_sid(request, list_sid, "CL")
    path_sid(request, sid, "CR")
    credentials = store_of(request).sip_credentials
    return deleted(request, await credentials.delete(account.sid, list_sid, sid))
