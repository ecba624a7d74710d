"""What the two kinds of SIP list share: an account's named list of entries that SIP
domains map, under ``/SIP/<Kind>/{list_sid}`` with its entries under ``…/<Entries>``.

``CredentialLists`` hold ``Credentials`` (``sip_credentials.py``);
``IpAccessControlLists`` hold ``IpAddresses`` (``ip_access_control.py``). Both show a
list the same way, and both require a ``FriendlyName`` of at most a kind's length,
refusing anything with the kind's own error code.
"""

from __future__ import annotations

from dataclasses import dataclass

from control_api.api.accounts import account_uri
from control_api.api.params import snake_case
from control_api.errors import ApiError
from control_api.sids import rfc2822
from control_api.store import IpAccessControlList, SipCredentialList

__all__ = ["SipListKind"]

ACCOUNT = "/2010-04-01/Accounts/{account_sid}"


@dataclass(frozen=True, slots=True)
class SipListKind:
    """One kind of SIP list: its name in the path, its entries', the longest
    ``FriendlyName`` it takes and the code of its validation errors."""

    name: str
    entries: str
    max_name: int
    code: int

    @property
    def lists_path(self) -> str:
        return f"{ACCOUNT}/SIP/{self.name}.json"

    @property
    def list_path(self) -> str:
        return f"{ACCOUNT}/SIP/{self.name}/{{list_sid}}.json"

    @property
    def entries_path(self) -> str:
        return f"{ACCOUNT}/SIP/{self.name}/{{list_sid}}/{self.entries}.json"

    @property
    def entry_path(self) -> str:
        return f"{ACCOUNT}/SIP/{self.name}/{{list_sid}}/{self.entries}/{{sid}}.json"

    def base(self, account_sid: str, list_sid: str) -> str:
        """The list's URI without ``.json``."""
        return f"{account_uri(account_sid)}/SIP/{self.name}/{list_sid}"

    def entry_uri(self, account_sid: str, list_sid: str, sid: str) -> str:
        return f"{self.base(account_sid, list_sid)}/{self.entries}/{sid}.json"

    def list_json(self, sip_list: SipCredentialList | IpAccessControlList) -> dict:
        """A list as Twilio shows it."""
        base = self.base(sip_list.account_sid, sip_list.sid)
        return {
            "account_sid": sip_list.account_sid,
            "date_created": rfc2822(sip_list.date_created),
            "date_updated": rfc2822(sip_list.date_updated),
            "friendly_name": sip_list.friendly_name,
            "sid": sip_list.sid,
            "subresource_uris": {snake_case(self.entries): f"{base}/{self.entries}.json"},
            "uri": f"{base}.json",
        }

    def invalid(self, message: str) -> ApiError:
        """A 400 with the kind's code."""
        return ApiError.bad_parameter(message, self.code)

    def friendly_name(self, value: str | None) -> str:
        """A list's (or entry's) required ``FriendlyName``."""
        if not value:
            raise self.invalid("A FriendlyName is required")
        if len(value) > self.max_name:
            raise self.invalid(f"FriendlyName must have 1 to {self.max_name} characters")
        return value
