"""The Lua scripts on a tenant's indexes (`{tenant}`): the owner map, the ordered lists (all, per
user, per user and workspace), the expiry index and the tombstones. See `scripts.py` for the
conversation scripts and the conventions both follow."""

from __future__ import annotations

from chatkeep.stores.redis.scripts import lua

_HELPERS = lua("tenant_helpers.lua")

INDEX_PUT = _HELPERS + lua("index_put.lua")

INDEX_RESERVE = _HELPERS + lua("index_reserve.lua")

INDEX_REMOVE = _HELPERS + lua("index_remove.lua")

INDEX_COUNT = _HELPERS + lua("index_count.lua")

INDEX_COUNTS = _HELPERS + lua("index_counts.lua")

GONE = _HELPERS + lua("gone.lua")

SWEEP_DUE = _HELPERS + lua("sweep_due.lua")

SWEEP_FINISH = _HELPERS + lua("sweep_finish.lua")

# On a standalone server only: its keys are in the conversation's slot and the tenant's (scripts.py).
COMMIT_LISTED = _HELPERS + lua("commit.lua") + lua("commit_listed.lua")
