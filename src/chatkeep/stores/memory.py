"""MemoryStore: everything in this process's dicts. For tests, `none`-mode conversations and
deployments without Redis; gone when the process ends. With a ByteBudget, what it holds is bounded:
a write that would pass the budget raises `StorageFull` before it changes anything."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from chatkeep.domain import (
    after_extend,
    after_finish,
    apply_patch,
    check_import,
    check_quota,
    check_reimport,
    errors,
    finished,
    fresh_conversation,
    is_expired,
    matches,
    page_bounds,
    plan_append,
    plan_extend,
    touched,
    trimmed,
)
from chatkeep.models import (
    AppendOutcome,
    Conversation,
    ConversationPage,
    ConversationQuery,
    ExpiredConversation,
    Message,
    MessagePage,
    MessageStatus,
    SearchPage,
    SearchQuery,
    Tenant,
    cursor_key,
    cursor_of,
    now_ms,
    sort_key,
)
from chatkeep.stores.base import Extension, Store, TenantStore
from chatkeep.stores.budget import ByteBudget, conversation_size, message_size
from chatkeep.stores.requests import Append, Create, Extend, Finish, Read, Ref, Update
from chatkeep.stores.scan import scan_search
from chatkeep.stores.url import StoreURL


@dataclass
class _Entry:
    conversation: Conversation
    # Messages by seq, contiguous from conversation.first_seq; trimmed ones leave only their id.
    messages: dict[int, Message] = field(default_factory=dict)
    seq_by_id: dict[str, int] = field(default_factory=dict)
    # Set once the sweeper removed the messages of this expired conversation (a tombstone).
    swept: bool = False
    # When each streaming message was last extended (seq -> ms).
    streaming: dict[int, int] = field(default_factory=dict)
    # What this entry counts against the budget (see stores/budget.py).
    size: int = 0


class MemoryStore(Store, TenantStore):
    """Every method runs without awaiting in between its reads and writes, so each is atomic on the
    event loop without locks."""

    def __init__(
        self,
        url: StoreURL | None = None,
        *,
        clock: Callable[[], int] = now_ms,
        budget: ByteBudget | None = None,
    ) -> None:
        self.url = url or StoreURL.parse("memory://")
        self._clock = clock
        # Unbounded unless given one; a budget may be shared by several stores of the process.
        self.budget = budget or ByteBudget()
        self._tenants: dict[str, Tenant] = {}
        self._entries: dict[tuple[str, str], _Entry] = {}

    async def connect(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    # -- tenants ----------------------------------------------------------------------------------

    async def create_tenant(self, tenant: Tenant) -> None:
        if tenant.id in self._tenants:
            raise errors.tenant_exists(tenant.id)
        self._tenants[tenant.id] = tenant

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return self._tenants.get(tenant_id)

    async def get_tenant_by_key_hash(self, key_hash: str) -> Tenant | None:
        return next((t for t in self._tenants.values() if t.api_key_hash == key_hash), None)

    async def list_tenants(self) -> list[Tenant]:
        return sorted(self._tenants.values(), key=lambda t: t.id)

    async def update_tenant(self, tenant: Tenant) -> None:
        if tenant.id not in self._tenants:
            raise errors.tenant_not_found(tenant.id)
        self._tenants[tenant.id] = tenant

    # -- conversations ----------------------------------------------------------------------------

    def _charge(self, entry: _Entry, delta: int) -> None:
        """Count `delta` bytes more for this entry; raises `StorageFull` (counting nothing) past the
        budget, so call it before changing anything."""
        self.budget.change(entry.conversation.tenant, delta)
        entry.size += delta

    def _drop(self, key: tuple[str, str]) -> None:
        entry = self._entries.pop(key)
        self._charge(entry, -entry.size)

    def _live(self, now: int) -> list[Conversation]:
        return [e.conversation for e in self._entries.values() if not is_expired(e.conversation, now)]

    def _entry(self, ref: Ref) -> _Entry:
        entry = self._entries.get(ref.key)
        if entry is None or not ref.scope.admits(entry.conversation.user, entry.conversation.workspace):
            raise errors.conversation_not_found(ref.conversation_id)
        if is_expired(entry.conversation, self._clock()):
            raise errors.conversation_expired(ref.conversation_id)
        return entry

    async def create(self, request: Create) -> Conversation:
        conversation = request.conversation
        now = self._clock()
        key = (conversation.tenant, conversation.id)
        old = self._entries.get(key)
        if old is not None and not is_expired(old.conversation, now):
            raise errors.conversation_exists(conversation.id)
        live = [c for c in self._live(now) if c.tenant == conversation.tenant]
        check_quota(
            len(live),
            sum(1 for c in live if c.user == conversation.user),
            request.max_per_tenant,
            request.max_per_user,
        )
        stored = fresh_conversation(conversation, now)
        entry = _Entry(stored)
        self._charge(entry, conversation_size(stored))
        if old is not None:
            self._drop(key)
        self._entries[key] = entry
        return stored

    async def get(self, ref: Ref) -> Conversation:
        return self._entry(ref).conversation

    async def list_conversations(self, query: ConversationQuery) -> ConversationPage:
        found = [c for c in self._live(self._clock()) if matches(c, query)]
        if query.after is not None:
            bound = cursor_key(query.after)
            found = [c for c in found if sort_key(c) < bound]
        found.sort(key=sort_key, reverse=True)
        page = found[: query.limit]
        more = len(found) > query.limit
        return ConversationPage(page, cursor_of(page[-1]) if more and page else None)

    async def count_conversations(self, tenant: str, user: str | None = None) -> int:
        return sum(
            1 for c in self._live(self._clock()) if c.tenant == tenant and (user is None or c.user == user)
        )

    async def update(self, request: Update) -> Conversation:
        entry = self._entry(request.ref)
        current = entry.conversation
        patched = apply_patch(current, request.patch, self._clock(), request.expected_version)
        self._charge(entry, conversation_size(patched) - conversation_size(current))
        entry.conversation = patched
        return entry.conversation

    async def touch(self, ref: Ref) -> Conversation:
        entry = self._entry(ref)
        entry.conversation = touched(entry.conversation, self._clock())
        return entry.conversation

    async def sweep_expired(self, *, limit: int = 500, keep_ms: int = 0) -> list[ExpiredConversation]:
        now = self._clock()
        for key, entry in list(self._entries.items()):
            expires_at = entry.conversation.expires_at
            if entry.swept and expires_at is not None and expires_at + keep_ms <= now:
                self._drop(key)
        swept: list[ExpiredConversation] = []
        for entry in self._entries.values():
            if len(swept) >= limit:
                break
            c = entry.conversation
            if entry.swept or c.expires_at is None or c.expires_at > now:
                continue
            entry.swept = True
            self._charge(entry, -sum(message_size(m) for m in entry.messages.values()))
            entry.messages.clear()
            entry.seq_by_id.clear()
            entry.streaming.clear()
            swept.append(ExpiredConversation(c.tenant, c.id, c.workspace, c.user, c.mode, c.expires_at))
        return swept

    async def delete(self, ref: Ref) -> Conversation:
        entry = self._entry(ref)
        self._drop(ref.key)
        return entry.conversation

    def _message(self, entry: _Entry, message_id: str) -> Message:
        seq = entry.seq_by_id.get(message_id)
        if seq is None or seq not in entry.messages or seq < entry.conversation.first_seq:
            raise errors.message_not_found(message_id)
        return entry.messages[seq]

    async def extend(self, request: Extend) -> Extension:
        entry = self._entry(request.ref)
        message = self._message(entry, request.message_id)
        at, suffix = plan_extend(message, request.text, request.offset, request.max_bytes)
        if suffix:
            now = self._clock()
            self._charge(entry, len(suffix.encode("utf-8", "surrogatepass")))
            message = replace(message, content=message.content + suffix)
            entry.messages[message.seq] = message
            entry.streaming[message.seq] = now
            entry.conversation = after_extend(entry.conversation, message, now)
        return Extension(entry.conversation, message, at, suffix)

    async def finish(self, request: Finish) -> Message:
        entry = self._entry(request.ref)
        before = self._message(entry, request.message_id)
        after = finished(before, request.status, request.usage)
        if after is None:
            return before
        entry.messages[after.seq] = after
        entry.streaming.pop(after.seq, None)
        entry.conversation = after_finish(entry.conversation, before, after, self._clock())
        return after

    async def interrupt_stale_streams(
        self, *, idle_ms: int, limit: int = 500
    ) -> list[tuple[Conversation, Message]]:
        now = self._clock()
        stale = [
            (entry, seq)
            for entry in self._entries.values()
            if not is_expired(entry.conversation, now)
            for seq, updated in entry.streaming.items()
            if updated <= now - idle_ms
        ][:limit]
        done = []
        for entry, seq in stale:
            message = await self.finish_message(
                entry.conversation.tenant,
                entry.conversation.id,
                entry.messages[seq].id,
                MessageStatus.INTERRUPTED,
            )
            done.append((entry.conversation, message))
        return done

    def restore(self, conversation: Conversation) -> None:
        """Hold a conversation exactly as another store last had it (counters included, messages
        not), so that appends here continue its seqs. Used by FallbackStore during an outage."""
        key = (conversation.tenant, conversation.id)
        if key in self._entries:
            self._drop(key)
        entry = _Entry(conversation)
        self._charge(entry, conversation_size(conversation))
        self._entries[key] = entry

    def forget(self, tenant: str, conversation_id: str) -> None:
        """Drop a conversation held with `restore` (or created here) without a trace."""
        self._entries.pop((tenant, conversation_id), None)

    def now(self) -> int:
        return self._clock()

    # -- messages ---------------------------------------------------------------------------------

    async def append(self, request: Append) -> AppendOutcome:
        entry = self._entry(request.ref)
        messages = request.messages
        existing = {m.id: entry.messages[entry.seq_by_id[m.id]] for m in messages if m.id in entry.seq_by_id}
        plan = plan_append(
            entry.conversation,
            existing,
            messages,
            self._clock(),
            max_messages=request.max_messages,
            policy=request.policy,
        )
        dropped = {}
        if plan.trim_below is not None:
            for seq in range(entry.conversation.first_seq, plan.trim_below):
                if seq in entry.messages:  # a restored conversation may not hold its older messages
                    dropped[seq] = trimmed(entry.messages[seq])
        freed = sum(message_size(entry.messages[s]) - message_size(m) for s, m in dropped.items())
        self._charge(entry, sum(message_size(m) for m in plan.inserts) - freed)
        if plan.trim_below is not None:
            entry.messages.update(dropped)
            for seq in range(entry.conversation.first_seq, plan.trim_below):
                entry.streaming.pop(seq, None)
        for message in plan.inserts:
            entry.messages[message.seq] = message
            entry.seq_by_id[message.id] = message.seq
            if message.status is MessageStatus.STREAMING:
                entry.streaming[message.seq] = message.created_at
        entry.conversation = plan.conversation
        return AppendOutcome(plan.conversation, plan.results)

    async def read(self, request: Read) -> MessagePage:
        conversation = request.conversation
        entry = self._entries.get((conversation.tenant, conversation.id))
        if entry is None or entry.swept or is_expired(conversation, self._clock()):
            return MessagePage([], has_more=False)
        seqs, has_more = page_bounds(entry.conversation, request.before, request.after, request.limit)
        return MessagePage([entry.messages[s] for s in seqs], has_more=has_more)

    async def search(self, query: SearchQuery) -> SearchPage:
        """A scan of every conversation in scope (see `stores/scan.py`), unbounded: what memory
        holds is bounded by its byte budget."""
        return await scan_search(self, query)

    async def import_conversation(self, conversation: Conversation, messages: Sequence[Message]) -> bool:
        now = self._clock()
        check_import(conversation, messages, now)
        key = (conversation.tenant, conversation.id)
        old = self._entries.get(key)
        if old is not None and not is_expired(old.conversation, now):
            seqs = range(old.conversation.first_seq, old.conversation.last_seq + 1)
            held = [old.messages[s] for s in seqs if s in old.messages]
            return check_reimport(old.conversation, held, conversation, messages)
        entry = _Entry(conversation, {m.seq: m for m in messages}, {m.id: m.seq for m in messages})
        entry.streaming = {m.seq: m.created_at for m in messages if m.status is MessageStatus.STREAMING}
        self._charge(entry, conversation_size(conversation) + sum(message_size(m) for m in messages))
        if old is not None:
            self._drop(key)
        self._entries[key] = entry
        return True
