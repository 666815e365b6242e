"""Byte budgets for data held in this process's memory (`none` conversations, and `ephemeral` ones
when no Redis is configured): bounded per tenant and in all, so that one client cannot grow the
process without limit.

Sizes are estimates of what a conversation or message costs to hold: its text in UTF-8, its JSON
parts and metadata as encoded, and a fixed allowance for the objects around them. They are counted
the same way on every write and every removal, so the bytes held return to zero when all is gone.
"""

from __future__ import annotations

import json
from collections import defaultdict

from chatkeep.errors import StorageFull
from chatkeep.models import Conversation, Message

MESSAGE_OVERHEAD = 256
CONVERSATION_OVERHEAD = 1024  # the record, its preview and its indexes


def message_size(message: Message) -> int:
    size = MESSAGE_OVERHEAD + len(message.id) + len(message.content.encode("utf-8", "surrogatepass"))
    for extra in (message.parts, message.metadata):
        if extra is not None:
            size += len(json.dumps(extra, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return size


def conversation_size(conversation: Conversation) -> int:
    c = conversation
    text = c.id + c.workspace + c.user + c.title + "".join(c.tags)
    return CONVERSATION_OVERHEAD + len(text.encode("utf-8", "surrogatepass"))


class ByteBudget:
    """Bytes held, in all and by tenant, against two limits (None: unbounded). Several stores of one
    process may share a budget; the process limit then bounds them together."""

    def __init__(self, max_bytes: int | None = None, max_tenant_bytes: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_tenant_bytes = max_tenant_bytes
        self.held = 0
        self._by_tenant: defaultdict[str, int] = defaultdict(int)

    def held_by(self, tenant: str) -> int:
        return self._by_tenant.get(tenant, 0)

    def change(self, tenant: str, delta: int) -> None:
        """Count `delta` more bytes (or fewer, when negative) for `tenant`. Growth past a limit raises
        `StorageFull` (code `storage_full`) and counts nothing: the write must not happen."""
        if delta > 0:
            if self.max_tenant_bytes is not None and self.held_by(tenant) + delta > self.max_tenant_bytes:
                raise StorageFull(
                    f"this tenant holds {self.held_by(tenant)} bytes in memory; its budget is "
                    f"{self.max_tenant_bytes}: delete conversations, or use a durable mode",
                    code="storage_full",
                    limit=self.max_tenant_bytes,
                )
            if self.max_bytes is not None and self.held + delta > self.max_bytes:
                raise StorageFull(
                    f"the server's memory budget ({self.max_bytes} bytes) is used up; retry later, "
                    "or use a durable mode",
                    code="storage_full",
                    limit=self.max_bytes,
                )
        self.held += delta
        left = self._by_tenant[tenant] + delta
        if left > 0:
            self._by_tenant[tenant] = left
        else:
            self._by_tenant.pop(tenant, None)
