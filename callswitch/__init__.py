"""callswitch: self-hosted, Twilio-compatible programmable voice."""

__version__ = "0.1.0"
