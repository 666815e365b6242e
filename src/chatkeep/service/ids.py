"""Conversation ids a user token may choose: random UUIDs only.

A user token that could pick any id could learn that an id is taken by another user of its tenant
(the create answers 409 `conversation_exists`) and could squat the predictable ids of others. An
id that must be a random (version 4) UUID is neither: its owner is the only one who knows it, and a
clash with another user's id is as likely as guessing it. Tenant API keys see the whole tenant and
keep choosing any valid id.
"""

from __future__ import annotations

import re

from chatkeep.errors import InvalidInput

# A version 4 (random) UUID in its canonical form: lowercase, hyphenated, RFC 4122 variant.
RANDOM_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
RANDOM_ID_RE = re.compile(RANDOM_ID_PATTERN)


def check_random_id(value: str) -> str:
    """`value` if it is a version 4 UUID in its canonical form."""
    if not RANDOM_ID_RE.fullmatch(value):
        raise InvalidInput(
            "a user token may only choose a random conversation id: a version 4 UUID in lowercase "
            "(such as crypto.randomUUID() makes), or no id to let the server choose",
            code="id_not_random",
            field="id",
        )
    return value
