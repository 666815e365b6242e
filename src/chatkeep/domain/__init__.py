"""The rules of every write, as pure functions over the models: what an append, a patch, a heartbeat,
a delta or a finish does, and the errors they raise. Every store executes these; a store decides only
how to make a write atomic (a lock, a transaction, a conditional commit), never what the write is."""

from chatkeep.domain.appends import (
    PREVIEW_CHARS,
    AppendPlan,
    check_appendable,
    check_batch,
    check_replay,
    plan_append,
    same_message,
    trimmed,
)
from chatkeep.domain.conversations import (
    apply_patch,
    check_quota,
    check_version,
    expiry,
    fold,
    fresh_conversation,
    is_expired,
    matches,
    page_bounds,
    touched,
)
from chatkeep.domain.errors import local_only
from chatkeep.domain.streaming import after_extend, after_finish, finished, plan_extend
from chatkeep.domain.transfer import check_import, check_reimport

__all__ = [
    "PREVIEW_CHARS",
    "AppendPlan",
    "after_extend",
    "after_finish",
    "apply_patch",
    "check_appendable",
    "check_batch",
    "check_import",
    "check_quota",
    "check_reimport",
    "check_replay",
    "check_version",
    "expiry",
    "finished",
    "fold",
    "fresh_conversation",
    "is_expired",
    "local_only",
    "matches",
    "page_bounds",
    "plan_append",
    "plan_extend",
    "same_message",
    "touched",
    "trimmed",
]
