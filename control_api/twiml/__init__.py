"""TwiML: parse voice and messaging documents into typed verbs (see ``parser``, ``verbs``).

The package's surface is its two modules' surfaces: each module's ``__all__`` is the
one list of what it exports.
"""

from control_api.twiml import parser, verbs
from control_api.twiml.parser import *  # noqa: F403
from control_api.twiml.verbs import *  # noqa: F403

__all__ = [*parser.__all__, *verbs.__all__]
