"""The Lua scripts of the Redis store.

Redis Cluster runs a script on one hash slot only, so there are two families (this module holds
the first, `tenant_scripts.py` the second and the one script that spans both):

- conversation scripts, on the keys of one conversation (`{tenant:conversation}`): the record hash
  `c`, the messages `m` (seq -> message) and the ids `i` (message id -> seq). They know no rule:
  READ takes a snapshot, the store plans the write with `chatkeep.domain`, and COMMIT applies the
  planned write set only if the conversation's revision is still the one read (a conditional
  commit; the store plans again on a lost race).
- tenant scripts, on the tenant's indexes (`{tenant}`): the owner map, the ordered lists (all, per
  user, per user and workspace), the expiry index and the tombstones.
- COMMIT_LISTED, on a standalone server only (its keys span both slots): COMMIT and then, if it
  committed, INDEX_PUT and the notes of streaming replies, in one round trip instead of several.

The record's `rev` field changes with every write (it starts at a random value, so a conversation
deleted and created again never repeats one); a snapshot's stamp is its `rev` and `created`.
"""

from __future__ import annotations

from importlib.resources import files


def lua(name: str) -> str:
    """The source of `lua/<name>`."""
    return (files(__package__) / "lua" / name).read_text(encoding="utf-8")


READ = lua("read.lua")

COMMIT = lua("commit.lua") + "return commit(KEYS[1], KEYS[2], KEYS[3])\n"

DROP = lua("drop.lua")
