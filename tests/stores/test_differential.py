"""Every backend against the memory store: one random sequence of calls run on both, with the same
results, the same errors and the same state at the end.

The memory store is the model: it executes the write rules of `chatkeep.domain` in plain Python
with no I/O in between. Hypothesis draws a sequence of calls over a few conversation and message
ids (so collisions, retries, conflicts and re-creates happen), runs each call on both stores and
compares the answers as it goes; once the sequence ends, it compares what both hold, field by field.

Both stores read one deterministic clock that only the test moves, so timestamps (created_at,
last_activity_at, expires_at) are compared exactly and TTL expiry happens between steps, not by the
wall clock. A Redis server expires keys by its own clock (PEXPIREAT), and the Redis store's sweep
relies on it; so the clock starts a day ahead of the wall clock (the server never expires a key by
itself during a test) and the test expires keys as the server would once its clock passed them.

Each test opens its stores once. An example starts on a tenant that holds nothing in either store
(a new one, or one an earlier example emptied), so examples share nothing; only sweeps and stale
stream checks reach every tenant, and only this tenant's part of their answers is compared.
`CHATKEEP_DIFFERENTIAL_EXAMPLES` asks for more examples than the default (a longer search); the run
is derandomized, so the same examples run every time. Sequences that once found a disagreement are
kept at the end of this module and replayed on every backend, whatever the search draws.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule, run_state_machine_as_test

from chatkeep.models import (
    ANYONE,
    TTL,
    Conversation,
    ConversationPatch,
    ConversationQuery,
    LimitPolicy,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Scope,
    Usage,
    now_ms,
)
from chatkeep.stores import Store, StoreURL
from tests.conftest import BACKENDS, open_backend, unique

EXAMPLES = int(os.environ.get("CHATKEEP_DIFFERENTIAL_EXAMPLES", "40"))
STEPS = 30
DAY_MS = 86_400_000

CONVERSATION_IDS = ["c0", "c1", "c2"]
MESSAGE_IDS = ["m0", "m1", "m2", "m3"]
USERS = ["u1", "u2"]
WORKSPACES = ["w1", "w2"]

# Most calls name a conversation that exists (created at the start), some one that may not.
conversation_ids = st.sampled_from(["c0", "c0", "c0", "c1", "c1", "c2"])
message_ids = st.sampled_from(MESSAGE_IDS)
# Mostly anyone; sometimes one user (the owner or another one), or a workspace.
scopes = st.sampled_from(
    [ANYONE, ANYONE, ANYONE, Scope(user="u1"), Scope(user="u2"), Scope(workspaces=frozenset({"w2"}))]
)
maybe_bool = st.sampled_from([None, True, False])


class Clock:
    """Epoch milliseconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = now_ms() // 1000 * 1000 + DAY_MS

    def __call__(self) -> int:
        return self.now


def new_message(mid: str, variant: int) -> NewMessage:
    """The message an id stands for (variant 0), a retry of it with other usage (1, still the same
    message), or another message under its id (2: other content, 3: other role)."""
    n = int(mid[1:])
    base = NewMessage(
        id=mid,
        role=Role.USER if n % 2 == 0 else Role.ASSISTANT,
        content=f"text of {mid}",
        parts=[{"type": "text", "n": n}] if n % 2 else None,
        metadata={"k": [n, "x"]} if n else None,
        usage=Usage(n + 1, 2 * n + 1),
    )
    if variant == 1:
        return dataclasses.replace(base, usage=Usage(9, 9))
    if variant == 2:
        return dataclasses.replace(base, content=base.content + "!")
    if variant == 3:
        return dataclasses.replace(base, role=Role.SYSTEM)
    return base


new_messages = st.builds(new_message, message_ids, st.sampled_from([0, 0, 0, 1, 2, 3]))


@dataclasses.dataclass(frozen=True)
class Raised:
    """An error as the comparison sees it: its class, code, text and details."""

    type: str
    code: str
    detail: str
    extra: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a call returned, or the error it raised."""

    value: Any = None
    raised: Raised | None = None

    @property
    def ok(self) -> bool:
        return self.raised is None


async def answer(call: Awaitable[Any]) -> Answer:
    try:
        return Answer(value=await call)
    except Exception as exc:  # any error is compared, not only chatkeep's own
        return Answer(
            raised=Raised(
                type(exc).__qualname__,
                str(getattr(exc, "code", "")),
                str(exc),
                dict(getattr(exc, "extra", {})),
            )
        )


def differences(expected: Any, actual: Any, path: str = "") -> Iterator[str]:
    """Where two answers differ, one line per differing field."""
    if dataclasses.is_dataclass(expected) and type(expected) is type(actual):
        for f in dataclasses.fields(expected):
            yield from differences(getattr(expected, f.name), getattr(actual, f.name), f"{path}.{f.name}")
    elif (
        isinstance(expected, list | tuple) and type(expected) is type(actual) and len(expected) == len(actual)
    ):
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            yield from differences(e, a, f"{path}[{i}]")
    elif isinstance(expected, dict) and isinstance(actual, dict) and expected.keys() == actual.keys():
        for key in expected:
            yield from differences(expected[key], actual[key], f"{path}[{key!r}]")
    elif expected != actual or type(expected) is not type(actual):
        yield f"  {path or 'answer'}: memory {expected!r}, this backend {actual!r}"


# KEYS: a conversation's three keys (one hash tag). ARGV: now. Deletes those whose expiry is due.
DROP_DUE = """
for _, key in ipairs(KEYS) do
  local at = redis.call('PEXPIRETIME', key)
  if at > 0 and at <= tonumber(ARGV[1]) then redis.call('DEL', key) end
end
"""


class ServerClock:
    """What a Redis server does when its clock reaches the test's: drops the keys whose expiry
    (PEXPIREAT, set by the store from the test's clock) is due. The store's own reads already
    compare expiries with the test's clock; its sweep takes a conversation whose keys are gone.

    At the very millisecond of an expiry a server drops nothing (a key lives while now <= its
    expiry) while the store reads the conversation as expired (`expires_at <= now`, see
    `chatkeep.domain.is_expired`). In a deployment the two are different machines' clocks, whose
    skew is larger than that millisecond; this takes the server's clock to be the store's, and a
    key to be gone when the store reads it as expired."""

    def __init__(self, url: StoreURL) -> None:
        # Keys as documented in `chatkeep.stores.redis.store`: PREFIX:{TENANT:CONVERSATION}:c|m|i
        self.prefix = url.options.get("prefix", "ck")
        plain = url.without_options()
        self.client: aioredis.Redis | aioredis.RedisCluster = (
            aioredis.RedisCluster.from_url(plain.replace("redis+cluster://", "redis://", 1))
            if url.scheme == "redis+cluster"
            else aioredis.Redis.from_url(plain)
        )

    async def reach(self, tenant: str, now: int) -> None:
        for cid in CONVERSATION_IDS:
            keys = [f"{self.prefix}:{{{tenant}:{cid}}}:{suffix}" for suffix in "cmi"]
            await self.client.eval(DROP_DUE, len(keys), *keys, now)  # type: ignore[misc]

    async def close(self) -> None:
        await self.client.aclose()


class Stores:
    """The model and the backend under test, open on one private event loop for a whole test."""

    def __init__(self, backend: str, tmp_dir: str) -> None:
        self.backend = backend
        self.clock = Clock()
        self.loop = asyncio.new_event_loop()
        self._opened: list[Any] = []
        self.server: ServerClock | None = None
        # Tenants an example left empty in both stores, for the next example to use.
        self.clean_tenants: list[str] = []
        try:
            self.model = self._open("memory", tmp_dir)
            self.other = self._open(backend, tmp_dir)
            self.server = ServerClock(self.other.url) if backend.startswith("redis") else None
        except BaseException:
            self.close()
            raise

    def _open(self, name: str, tmp_dir: str) -> Store:
        opening = open_backend(name, tmp_dir, clock=self.clock)
        self._opened.append(opening)
        store: Store = self.run(opening.__anext__())
        return store

    def run(self, call: Awaitable[Any]) -> Any:
        return self.loop.run_until_complete(call)

    def advance(self, tenant: str, ms: int) -> None:
        self.clock.now += ms
        if self.server is not None:
            self.run(self.server.reach(tenant, self.clock.now))

    def tenant(self) -> str:
        return self.clean_tenants.pop() if self.clean_tenants else unique("t")

    def give_back(self, tenant: str, expiring: bool) -> None:
        """Empty a tenant in both stores so that another example can use it.

        A sweep reaches every tenant that ever held an expiring conversation (the Redis store
        remembers them all), and shrinking a failure runs thousands of examples: with a fresh
        tenant for each, every sweep would cost more than the one before. A tenant that cannot be
        emptied (a store disagrees on how) is not used again. `expiring`: whether the example gave
        any conversation an expiry (else no sweep is needed)."""
        for store in (self.model, self.other):
            for cid in CONVERSATION_IDS:
                self.run(answer(store.delete_conversation(tenant, cid)))
        if expiring:
            # Past every expiry and tombstone: a first sweep removes what expired, a second forgets it.
            self.advance(tenant, 60_000)
            for store in (self.model, self.other):
                for _ in range(2):
                    self.run(answer(store.sweep_expired(limit=100_000, keep_ms=0)))
        for store in (self.model, self.other):
            for cid in CONVERSATION_IDS:
                left = self.run(answer(store.get_conversation(tenant, cid)))
                if left.ok or left.raised is None or left.raised.type != "NotFound":
                    return
        self.clean_tenants.append(tenant)

    def close(self) -> None:
        if self.server is not None:
            self.run(self.server.close())
        for opening in reversed(self._opened):
            self.run(opening.aclose())
        self.run(self.loop.shutdown_asyncgens())
        self.loop.close()


class Differential(RuleBasedStateMachine):
    """Calls on one tenant's conversations, each run on the model and on the backend under test."""

    stores: Stores

    def __init__(self) -> None:
        super().__init__()
        self.tenant = self.stores.tenant()
        self.limit: int | None = None
        self.policy = LimitPolicy.REJECT
        self.failed = False
        self.expiring = False  # whether a conversation was given an expiry
        # Each store's last answer to a lookup of each conversation, to read it once it is gone.
        self.seen: dict[str, dict[Store, Conversation]] = {}

    # -- running one call on both stores --------------------------------------------------------

    def both(self, what: str, call: Callable[[Store], Awaitable[Any]]) -> tuple[Answer, Answer]:
        """Run `call` on the model, then on the backend; fail unless both answered alike."""
        expected = self.stores.run(answer(call(self.stores.model)))
        actual = self.stores.run(answer(call(self.stores.other)))
        if expected != actual:
            self.failed = True
            lines = list(differences(expected, actual))
            raise AssertionError(
                f"{self.stores.backend} disagrees with memory on {what}:\n"
                + "\n".join(lines or [f"  memory {expected!r}", f"  backend {actual!r}"])
            )
        return expected, actual

    def same(self, what: str, call: Callable[[Store], Awaitable[Any]]) -> Any:
        """`both`, for a call whose answers are compared whole; the model's answer."""
        return self.both(what, call)[0].value

    # -- rules ----------------------------------------------------------------------------------

    @initialize(
        limit=st.sampled_from([1, 2, 3]),
        policy=st.sampled_from([LimitPolicy.REJECT, LimitPolicy.TRIM]),
    )
    def choose_message_limit(self, limit: int, policy: LimitPolicy) -> None:
        """What the service would pass with every append, fixed for a tenant."""
        self.limit, self.policy = limit, policy

    @initialize(user=st.sampled_from(USERS), ttl_ms=st.sampled_from([None, 3000]))
    def start_with_two_conversations(self, user: str, ttl_ms: int | None) -> None:
        """c0 and c1 exist at first, so most calls reach one; c1 may expire, or be another user's."""
        self.expiring |= ttl_ms is not None
        for cid, owner, ttl in (("c0", "u1", None), ("c1", user, ttl_ms)):
            given = Conversation(self.tenant, cid, "w1", owner, Mode.DURABLE, ttl_ms=ttl)
            self.same(f"create_conversation({cid})", lambda s, c=given: s.create_conversation(c))

    @rule(ms=st.sampled_from([1, 5, 400, 1000, 2500]))
    def time_passes(self, ms: int) -> None:
        self.stores.advance(self.tenant, ms)

    @rule(
        cid=conversation_ids,
        user=st.sampled_from(USERS),
        workspace=st.sampled_from(WORKSPACES),
        mode=st.sampled_from([Mode.DURABLE, Mode.DURABLE, Mode.EPHEMERAL, Mode.LOCAL]),
        ttl_ms=st.sampled_from([None, None, 1000, 3000]),
        title=st.sampled_from(["", "Plans", "old plans", "Straße"]),
        tags=st.sampled_from([(), ("a",), ("a", "b")]),
        flags=st.tuples(st.booleans(), st.booleans()),
        max_per_tenant=st.sampled_from([None, None, 1, 2]),
        max_per_user=st.sampled_from([None, None, 1]),
    )
    def create(
        self,
        cid: str,
        user: str,
        workspace: str,
        mode: Mode,
        ttl_ms: int | None,
        title: str,
        tags: tuple[str, ...],
        flags: tuple[bool, bool],
        max_per_tenant: int | None,
        max_per_user: int | None,
    ) -> None:
        self.expiring |= ttl_ms is not None
        given = Conversation(
            tenant=self.tenant,
            id=cid,
            workspace=workspace,
            user=user,
            mode=mode,
            title=title,
            tags=tags,
            starred=flags[0],
            pinned=flags[1],
            ttl_ms=ttl_ms,
            message_count=7,  # server fields a create ignores
            version=4,
        )
        self.same(
            f"create_conversation({cid})",
            lambda s: s.create_conversation(given, max_per_tenant=max_per_tenant, max_per_user=max_per_user),
        )

    @rule(cid=conversation_ids, scope=scopes)
    def get(self, cid: str, scope: Scope) -> None:
        self.same(f"get_conversation({cid})", lambda s: s.get_conversation(self.tenant, cid, scope))

    @rule(cid=conversation_ids, scope=scopes, messages=st.lists(new_messages, min_size=1, max_size=3))
    def append_one_by_one(self, cid: str, scope: Scope, messages: list[NewMessage]) -> None:
        """A few turns of a chat, each message appended by its own call."""
        for message in messages:
            self.append(cid, scope, [message])

    @rule(cid=conversation_ids, scope=scopes, batch=st.lists(new_messages, min_size=2, max_size=4))
    def append_batch(self, cid: str, scope: Scope, batch: list[NewMessage]) -> None:
        self.append(cid, scope, batch)

    def append(self, cid: str, scope: Scope, batch: list[NewMessage]) -> None:
        self.same(
            f"append_messages({cid}, {[m.id for m in batch]})",
            lambda s: s.append_messages(
                self.tenant, cid, batch, max_messages=self.limit, policy=self.policy, scope=scope
            ),
        )

    @rule(cid=conversation_ids, mid=message_ids, opening=st.sampled_from(["", "He"]), scope=scopes)
    def open_stream(self, cid: str, mid: str, opening: str, scope: Scope) -> None:
        new = NewMessage(id=mid, role=Role.ASSISTANT, content=opening, status=MessageStatus.STREAMING)
        self.append(cid, scope, [new])

    @rule(
        cid=conversation_ids,
        mid=message_ids,
        text=st.sampled_from(["llo", "lo", "x", "é"]),
        offset=st.sampled_from([None, None, 0, 2, 3]),
        max_bytes=st.sampled_from([None, None, 6]),
        scope=scopes,
    )
    def extend(
        self, cid: str, mid: str, text: str, offset: int | None, max_bytes: int | None, scope: Scope
    ) -> None:
        self.same(
            f"extend_message({cid}, {mid}, {text!r}, offset={offset})",
            lambda s: s.extend_message(
                self.tenant, cid, mid, text, offset=offset, max_bytes=max_bytes, scope=scope
            ),
        )

    @rule(
        cid=conversation_ids,
        mid=message_ids,
        status=st.sampled_from([MessageStatus.COMPLETE, MessageStatus.INTERRUPTED]),
        usage=st.sampled_from([None, Usage(2, 3)]),
        scope=scopes,
    )
    def finish(self, cid: str, mid: str, status: MessageStatus, usage: Usage | None, scope: Scope) -> None:
        self.same(
            f"finish_message({cid}, {mid}, {status.value})",
            lambda s: s.finish_message(self.tenant, cid, mid, status, usage=usage, scope=scope),
        )

    @rule(
        cid=conversation_ids,
        title=st.sampled_from([None, "Plans B", "PLANS"]),
        starred=maybe_bool,
        pinned=maybe_bool,
        archived=maybe_bool,
        tags=st.sampled_from([None, (), ("b",)]),
        ttl=st.sampled_from([None, None, TTL(None), TTL(1000)]),
        version=st.sampled_from(["any", "right", "stale"]),
        scope=scopes,
    )
    def patch(
        self,
        cid: str,
        title: str | None,
        starred: bool | None,
        pinned: bool | None,
        archived: bool | None,
        tags: tuple[str, ...] | None,
        ttl: TTL | None,
        version: str,
        scope: Scope,
    ) -> None:
        change = ConversationPatch(title, starred, pinned, archived, tags, ttl)
        self.expiring |= ttl is not None and ttl.ms is not None
        expected_version = None
        if version != "any":
            current = self.stores.run(answer(self.stores.model.get_conversation(self.tenant, cid)))
            right = current.value.version if current.ok else 1
            expected_version = right if version == "right" else right - 1
        self.same(
            f"update_conversation({cid}, {change}, expected_version={expected_version})",
            lambda s: s.update_conversation(
                self.tenant, cid, change, expected_version=expected_version, scope=scope
            ),
        )

    @rule(cid=conversation_ids, scope=scopes)
    def touch(self, cid: str, scope: Scope) -> None:
        self.same(f"touch_conversation({cid})", lambda s: s.touch_conversation(self.tenant, cid, scope))

    @rule(cid=conversation_ids, scope=scopes)
    def delete(self, cid: str, scope: Scope) -> None:
        self.same(f"delete_conversation({cid})", lambda s: s.delete_conversation(self.tenant, cid, scope))

    @rule(
        cid=conversation_ids,
        before=st.sampled_from([None, None, 1, 2, 3, 5, 8]),
        after=st.sampled_from([None, None, 0, 1, 2, 4, 7]),
        limit=st.sampled_from([1, 2, 3, 50]),
    )
    def read(self, cid: str, before: int | None, after: int | None, limit: int) -> None:
        self.read_page(cid, before=before, after=after, limit=limit)

    def read_page(self, cid: str, **page: int | None) -> None:
        """A page read by each store with the conversation as it returned it (as the contract asks);
        of a conversation gone or out of reach, the empty page of a stale copy."""
        model, other = self.both(f"get_conversation({cid})", lambda s: s.get_conversation(self.tenant, cid))
        if model.ok:
            self.seen[cid] = {self.stores.model: model.value, self.stores.other: other.value}
        mine = self.seen.get(cid)
        if mine is None:
            return
        self.same(
            f"read_messages({cid}, {page})",
            lambda s: s.read_messages(mine[s], **page),  # type: ignore[arg-type]
        )

    @rule(
        user=st.sampled_from([None, None, "u1", "u2"]),
        workspace=st.sampled_from([None, None, "w1"]),
        allowed=st.sampled_from([None, None, frozenset({"w2"})]),
        starred=maybe_bool,
        pinned=maybe_bool,
        archived=maybe_bool,
        tag=st.sampled_from([None, None, "a", "b"]),
        text=st.sampled_from([None, None, "plans", "STRASSE"]),
        limit=st.sampled_from([1, 2, 5]),
    )
    def list_pages(
        self,
        user: str | None,
        workspace: str | None,
        allowed: frozenset[str] | None,
        starred: bool | None,
        pinned: bool | None,
        archived: bool | None,
        tag: str | None,
        text: str | None,
        limit: int,
    ) -> None:
        """Every page of one listing, each page asked with the cursor the one before gave."""
        query = ConversationQuery(
            tenant=self.tenant,
            user=user,
            allowed_workspaces=allowed,
            workspace=workspace,
            starred=starred,
            pinned=pinned,
            archived=archived,
            tag=tag,
            text=text,
            limit=limit,
        )
        for _ in range(len(CONVERSATION_IDS) + 1):
            page = self.same(f"list_conversations({query})", lambda s, q=query: s.list_conversations(q))
            if page.next_cursor is None:
                break
            query = dataclasses.replace(query, after=page.next_cursor)

    @rule(user=st.sampled_from([None, "u1", "u2"]))
    def count(self, user: str | None) -> None:
        self.same(f"count_conversations({user})", lambda s: s.count_conversations(self.tenant, user))

    @rule(keep_ms=st.sampled_from([0, 2000]))
    def sweep(self, keep_ms: int) -> None:
        """Sweeping reaches every tenant; only this one's conversations are compared."""

        async def mine(s: Store) -> list[Any]:
            swept = await s.sweep_expired(limit=100_000, keep_ms=keep_ms)
            return sorted((e for e in swept if e.tenant == self.tenant), key=lambda e: e.id)

        self.same(f"sweep_expired(keep_ms={keep_ms})", mine)

    @rule(idle_ms=st.sampled_from([0, 1000]))
    def interrupt_stale(self, idle_ms: int) -> None:
        async def mine(s: Store) -> list[Any]:
            stale = await s.interrupt_stale_streams(idle_ms=idle_ms, limit=100_000)
            return sorted(
                (pair for pair in stale if pair[0].tenant == self.tenant), key=lambda p: (p[0].id, p[1].seq)
            )

        self.same(f"interrupt_stale_streams(idle_ms={idle_ms})", mine)

    # -- the end of an example ------------------------------------------------------------------

    def teardown(self) -> None:
        """What both hold at the end: each conversation, all its retained messages, the listing and
        the counts. Skipped after a step already failed, so that failure is the one reported."""
        try:
            if self.failed:
                return
            for cid in CONVERSATION_IDS:
                self.read_page(cid, limit=1000)
            self.same("final list", lambda s: s.list_conversations(ConversationQuery(self.tenant, limit=100)))
            for user in (None, *USERS):
                self.same(f"final count({user})", lambda s, u=user: s.count_conversations(self.tenant, u))
        finally:
            self.stores.give_back(self.tenant, self.expiring)


OTHER_BACKENDS = [name for name in BACKENDS if name != "memory"]


@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_backend_answers_as_the_memory_store(backend: str, tmp_path: Any) -> None:
    stores = Stores(backend, str(tmp_path))
    try:
        run_state_machine_as_test(
            type("Differential", (Differential,), {"stores": stores}),
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                derandomize=True,
                database=None,
                deadline=None,
                # No explain phase: it reruns the failure once per step, which costs more than
                # the shrinking here and adds little to a sequence of calls already minimal.
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        stores.close()


# -- sequences that once found a disagreement, replayed on every backend whatever the search draws --


def late_retry_of_a_trimmed_message(m: Differential) -> None:
    """The trim policy dropped m0; a late retry of it (any retry matches a trimmed message, see
    `same_message`) answers what is kept of it: its role, time and usage (`trimmed`)."""
    m.choose_message_limit(limit=2, policy=LimitPolicy.TRIM)
    m.start_with_two_conversations(user="u1", ttl_ms=None)
    m.append_one_by_one(cid="c0", scope=ANYONE, messages=[new_message(mid, 0) for mid in ("m0", "m2", "m1")])
    m.append_one_by_one(cid="c0", scope=ANYONE, messages=[new_message("m0", 3)])


def finishing_a_trimmed_message(m: Differential) -> None:
    """The trim policy dropped m0: it is no longer retained, so finishing it finds no message."""
    m.choose_message_limit(limit=1, policy=LimitPolicy.TRIM)
    m.start_with_two_conversations(user="u1", ttl_ms=None)
    m.append_one_by_one(cid="c0", scope=ANYONE, messages=[new_message("m0", 0), new_message("m1", 0)])
    m.finish(cid="c0", mid="m0", scope=ANYONE, status=MessageStatus.COMPLETE, usage=None)


def conflicting_batch_for_a_missing_conversation(m: Differential) -> None:
    """A batch naming one id twice with different messages, for a conversation that is not there."""
    m.choose_message_limit(limit=3, policy=LimitPolicy.REJECT)
    m.start_with_two_conversations(user="u1", ttl_ms=None)
    m.append_batch(cid="c2", scope=ANYONE, batch=[new_message("m0", 0), new_message("m0", 2)])


def conflicting_batch_out_of_scope(m: Differential) -> None:
    """The same batch, for a conversation of another user (reported as missing)."""
    m.choose_message_limit(limit=3, policy=LimitPolicy.REJECT)
    m.start_with_two_conversations(user="u1", ttl_ms=None)
    m.append_batch(cid="c0", scope=Scope(user="u2"), batch=[new_message("m0", 0), new_message("m0", 2)])


def conflicting_batch_for_a_local_conversation(m: Differential) -> None:
    """The same batch, for a conversation whose messages stay in the browser."""
    m.choose_message_limit(limit=3, policy=LimitPolicy.REJECT)
    m.start_with_two_conversations(user="u1", ttl_ms=None)
    m.create(
        cid="c2",
        user="u1",
        workspace="w1",
        mode=Mode.LOCAL,
        ttl_ms=None,
        title="",
        tags=(),
        flags=(False, False),
        max_per_tenant=None,
        max_per_user=None,
    )
    m.append_batch(cid="c2", scope=ANYONE, batch=[new_message("m0", 0), new_message("m0", 2)])


def reading_an_expired_conversation(m: Differential) -> None:
    """Messages read, with the conversation as it was, once its expiry passed and before a sweep.
    The contract: an expired conversation behaves as gone for every call but lookups, and a page
    of a gone one is empty (`Store`, `Store.read_messages`)."""
    m.choose_message_limit(limit=3, policy=LimitPolicy.REJECT)
    m.start_with_two_conversations(user="u1", ttl_ms=3000)
    m.append_one_by_one(cid="c1", scope=ANYONE, messages=[new_message("m0", 0)])
    m.read(cid="c1", before=None, after=None, limit=50)
    m.time_passes(ms=2500)
    m.time_passes(ms=1000)
    m.read(cid="c1", before=None, after=None, limit=50)


SEQUENCES = [
    late_retry_of_a_trimmed_message,
    finishing_a_trimmed_message,
    reading_an_expired_conversation,
    conflicting_batch_for_a_missing_conversation,
    conflicting_batch_out_of_scope,
    conflicting_batch_for_a_local_conversation,
]


@pytest.mark.parametrize("sequence", SEQUENCES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("backend", OTHER_BACKENDS)
def test_recorded_sequence(backend: str, sequence: Callable[[Differential], None], tmp_path: Any) -> None:
    stores = Stores(backend, str(tmp_path))
    try:
        machine = type("Differential", (Differential,), {"stores": stores})()
        try:
            sequence(machine)
        finally:
            machine.teardown()
    finally:
        stores.close()
