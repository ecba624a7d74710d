"""The digest realm of SIP credentials, shared by the store and the registrar.

A stored HA1 is H(username:realm:password) (RFC 7616 §3.4.2), so the realm the registrar
challenges with must be the one the HA1s were computed for: change it and every stored
credential stops matching.
"""

__all__ = ["SIP_REALM"]

SIP_REALM = "callswitch"
