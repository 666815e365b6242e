"""The Store conformance suite: every promise of `chatkeep.stores.base.Store`, run on every backend.

Tests take `store: Store` and never branch on the backend type.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from chatkeep.errors import Conflict, Expired, NotFound, QuotaExceeded, TooLarge, VersionMismatch
from chatkeep.models import (
    TTL,
    Conversation,
    ConversationPatch,
    ConversationQuery,
    ExpiredConversation,
    LimitPolicy,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Scope,
    Usage,
    sort_key,
)
from chatkeep.stores import Store
from tests.conftest import unique


def conv(
    tenant: str, cid: str | None = None, *, user: str = "u1", workspace: str = "w1", **kw: object
) -> Conversation:
    return Conversation(
        tenant=tenant,
        id=cid or unique("c"),
        workspace=workspace,
        user=user,
        mode=Mode.DURABLE,
        **kw,  # type: ignore[arg-type]
    )


def msg(mid: str, content: str = "", role: Role = Role.USER, **kw: object) -> NewMessage:
    return NewMessage(id=mid, role=role, content=content or f"text of {mid}", **kw)  # type: ignore[arg-type]


async def tick() -> None:
    """Let the millisecond clock move, so activity timestamps differ."""
    await asyncio.sleep(0.003)


# -- conversations ----------------------------------------------------------------------------------


async def test_create_sets_server_fields_and_get_returns_it(store: Store, tenant: str) -> None:
    given = conv(tenant, title="Plans", tags=("a", "b"), message_count=99, last_seq=7, version=5)
    stored = await store.create_conversation(given)
    assert stored.created_at > 0 and stored.last_activity_at == stored.created_at
    assert (stored.message_count, stored.last_seq, stored.version) == (0, 0, 1)
    assert (stored.title, stored.tags, stored.mode) == ("Plans", ("a", "b"), Mode.DURABLE)
    assert stored.expires_at is None
    assert await store.get_conversation(tenant, given.id) == stored


async def test_create_refuses_a_live_duplicate_id_but_other_tenants_may_use_it(
    store: Store, tenant: str
) -> None:
    first = await store.create_conversation(conv(tenant, "same-id", title="first"))
    with pytest.raises(Conflict) as err:
        await store.create_conversation(conv(tenant, "same-id", title="second"))
    assert err.value.code == "conversation_exists"
    assert (await store.get_conversation(tenant, "same-id")).title == "first"

    other = unique("t")
    theirs = await store.create_conversation(conv(other, "same-id", title="theirs"))
    assert theirs.tenant == other
    assert await store.get_conversation(tenant, "same-id") == first


async def test_create_generated_stores_like_create_and_checks_limits(store: Store, tenant: str) -> None:
    stored = await store.create_generated(conv(tenant, title="generated"), max_per_user=2)
    assert (stored.title, stored.version, stored.last_seq) == ("generated", 1, 0)
    assert await store.get_conversation(tenant, stored.id) == stored
    await store.create_generated(conv(tenant), max_per_user=2)
    with pytest.raises(QuotaExceeded):
        await store.create_generated(conv(tenant), max_per_user=2)
    with pytest.raises(Conflict):
        await store.create_generated(conv(tenant, stored.id))


async def test_get_of_unknown_or_other_tenants_conversation_is_not_found(store: Store, tenant: str) -> None:
    mine = await store.create_conversation(conv(tenant))
    with pytest.raises(NotFound) as err:
        await store.get_conversation(tenant, unique("c"))
    assert err.value.code == "not_found"
    with pytest.raises(NotFound):
        await store.get_conversation(unique("t"), mine.id)


async def test_list_orders_pinned_first_then_newest_activity_then_id(store: Store, tenant: str) -> None:
    created = []
    for i in range(5):
        created.append(await store.create_conversation(conv(tenant, f"c{i}")))
        await tick()
    await store.update_conversation(tenant, "c1", ConversationPatch(pinned=True))
    await store.append_messages(tenant, "c0", [msg("m")])  # c0 becomes the most recently active

    page = await store.list_conversations(ConversationQuery(tenant=tenant, limit=10))
    assert [c.id for c in page.items] == ["c1", "c0", "c4", "c3", "c2"]
    assert page.next_cursor is None
    assert page.items == sorted(page.items, key=sort_key, reverse=True)


async def test_list_pages_with_a_cursor_visit_each_conversation_once(store: Store, tenant: str) -> None:
    ids = {(await store.create_conversation(conv(tenant))).id for _ in range(23)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await store.list_conversations(ConversationQuery(tenant=tenant, limit=10, after=cursor))
        pages += 1
        seen += [c.id for c in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == len(ids) == len(set(seen))
    assert set(seen) == ids
    everything = await store.list_conversations(ConversationQuery(tenant=tenant, limit=100))
    assert [c.id for c in everything.items] == seen


async def test_list_filters(store: Store, tenant: str) -> None:
    await store.create_conversation(conv(tenant, "plain", title="Weekly plans"))
    await store.create_conversation(conv(tenant, "starred", title="100% sure", starred=True, tags=("work",)))
    await store.create_conversation(
        conv(tenant, "archived", title="Old_stuff", archived=True, tags=("work", "x"))
    )
    await store.create_conversation(conv(tenant, "pinned", title="PLANS for Straße", pinned=True))
    await store.create_conversation(conv(tenant, "other-ws", workspace="w2", title="plans"))
    await store.create_conversation(conv(tenant, "other-user", user="u2", title="plans"))

    async def ids(**filters: object) -> set[str]:
        page = await store.list_conversations(ConversationQuery(tenant=tenant, limit=50, **filters))  # type: ignore[arg-type]
        return {c.id for c in page.items}

    assert await ids() == {"plain", "starred", "archived", "pinned", "other-ws", "other-user"}
    assert await ids(user="u1", workspace="w1") == {"plain", "starred", "archived", "pinned"}
    assert await ids(user="u1", allowed_workspaces=frozenset({"w2"})) == {"other-ws"}
    assert await ids(user="u1", allowed_workspaces=frozenset()) == set()
    assert await ids(starred=True) == {"starred"}
    assert await ids(pinned=True) == {"pinned"}
    assert await ids(pinned=False, archived=False, user="u1") == {"plain", "starred", "other-ws"}
    assert await ids(archived=True) == {"archived"}
    assert await ids(tag="work") == {"starred", "archived"}
    assert await ids(tag="x") == {"archived"}
    assert await ids(tag="nope") == set()
    assert await ids(text="plans", user="u1", workspace="w1") == {"plain", "pinned"}
    assert await ids(text="STRASSE") == {"pinned"}  # case-insensitive, Unicode case folding
    assert await ids(text="%") == {"starred"}  # LIKE wildcards are literal text
    assert await ids(text="d_s") == {"archived"}
    assert await ids(text="_") == {"archived"}
    assert (await store.list_conversations(ConversationQuery(tenant=unique("t")))).items == []


async def test_count_counts_live_conversations_per_tenant_and_user(store: Store, tenant: str) -> None:
    for user in ("u1", "u1", "u2"):
        await store.create_conversation(conv(tenant, user=user))
    assert await store.count_conversations(tenant) == 3
    assert await store.count_conversations(tenant, "u1") == 2
    assert await store.count_conversations(tenant, "u3") == 0
    assert await store.count_conversations(unique("t")) == 0


async def test_update_applies_patch_and_bumps_version(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, tags=("a",)))
    await tick()
    updated = await store.update_conversation(
        tenant, c.id, ConversationPatch(title="Renamed", starred=True, tags=("b", "c")), expected_version=1
    )
    assert (updated.title, updated.starred, updated.tags, updated.version) == ("Renamed", True, ("b", "c"), 2)
    assert updated.last_activity_at == c.last_activity_at
    assert await store.get_conversation(tenant, c.id) == updated
    assert {
        x.id for x in (await store.list_conversations(ConversationQuery(tenant=tenant, tag="c"))).items
    } == {c.id}
    assert (await store.list_conversations(ConversationQuery(tenant=tenant, tag="a"))).items == []

    again = await store.update_conversation(tenant, c.id, ConversationPatch(archived=True))
    assert again.version == 3 and again.archived and again.title == "Renamed"


async def test_update_with_a_stale_version_changes_nothing(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, title="original"))
    await store.update_conversation(tenant, c.id, ConversationPatch(starred=True), expected_version=1)
    with pytest.raises(VersionMismatch) as err:
        await store.update_conversation(
            tenant, c.id, ConversationPatch(title="lost update"), expected_version=1
        )
    assert err.value.current_version == 2
    current = await store.get_conversation(tenant, c.id)
    assert (current.title, current.version) == ("original", 2)


async def test_update_and_delete_of_unknown_or_foreign_conversation_is_not_found(
    store: Store, tenant: str
) -> None:
    c = await store.create_conversation(conv(tenant))
    other = unique("t")
    with pytest.raises(NotFound):
        await store.update_conversation(other, c.id, ConversationPatch(title="hijack"))
    with pytest.raises(NotFound):
        await store.delete_conversation(other, c.id)
    with pytest.raises(NotFound):
        await store.update_conversation(tenant, unique("c"), ConversationPatch(title="x"))
    with pytest.raises(NotFound):
        await store.delete_conversation(tenant, unique("c"))
    assert (await store.get_conversation(tenant, c.id)).title == ""


async def test_delete_removes_conversation_and_messages(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, tags=("t",)))
    await store.append_messages(tenant, c.id, [msg("a"), msg("b")])
    before = await store.get_conversation(tenant, c.id)
    deleted = await store.delete_conversation(tenant, c.id)
    assert deleted == before
    with pytest.raises(NotFound):
        await store.get_conversation(tenant, c.id)
    assert (await store.read_messages(before)).messages == []
    assert (await store.list_conversations(ConversationQuery(tenant=tenant, tag="t"))).items == []
    # The id is free again, and the new conversation starts empty.
    fresh = await store.create_conversation(conv(tenant, c.id))
    assert fresh.last_seq == 0
    assert (await store.read_messages(fresh)).messages == []
    outcome = await store.append_messages(tenant, c.id, [msg("a")])
    assert outcome.results[0].created and outcome.results[0].message.seq == 1


# -- messages ---------------------------------------------------------------------------------------


async def test_append_one_assigns_seq_and_updates_the_conversation(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    await tick()
    outcome = await store.append_messages(
        tenant,
        c.id,
        [msg("m1", "Hello there", metadata={"k": [1, "x"]}, parts=[{"type": "text"}], usage=Usage(3, 4))],
    )
    (result,) = outcome.results
    assert result.created
    m = result.message
    assert (m.id, m.seq, m.role, m.content, m.conversation_id) == ("m1", 1, Role.USER, "Hello there", c.id)
    assert m.metadata == {"k": [1, "x"]} and m.parts == [{"type": "text"}] and m.usage == Usage(3, 4)
    assert m.created_at >= c.created_at and m.status is MessageStatus.COMPLETE
    after = outcome.conversation
    assert (after.last_seq, after.message_count, after.preview, after.usage) == (
        1,
        1,
        "Hello there",
        Usage(3, 4),
    )
    assert after.last_activity_at > c.last_activity_at
    assert after.version == c.version  # appends are not metadata changes
    assert await store.get_conversation(tenant, c.id) == after


async def test_append_batch_is_ordered_and_totals_usage(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    batch = [msg(f"m{i}", usage=Usage(i, 2 * i)) for i in range(1, 6)]
    outcome = await store.append_messages(tenant, c.id, batch)
    assert [r.message.seq for r in outcome.results] == [1, 2, 3, 4, 5]
    assert [r.message.id for r in outcome.results] == [f"m{i}" for i in range(1, 6)]
    assert outcome.conversation.usage == Usage(15, 30)
    assert outcome.conversation.preview == "text of m5"
    page = await store.read_messages(outcome.conversation)
    assert [m.id for m in page.messages] == [f"m{i}" for i in range(1, 6)]


# Quotes, backslashes, control characters, separators, accents (precomposed and combining), CJK,
# an emoji and text that looks like JSON: each is stored and read back as it was given.
TRICKY = 'a "quote" and \\ back\tslash\nline \x01\x1f\u2028 \u00e9e\u0301 \u65e5\u672c \U0001f600 {"k": [1]}'


async def test_text_of_every_kind_is_stored_and_read_back_exactly(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, title=TRICKY, tags=(TRICKY, "\U0001f600")))
    renamed = await store.update_conversation(tenant, c.id, ConversationPatch(title=TRICKY + "!"))
    metadata = {TRICKY: [TRICKY, 2**62, -1.5, None, True], "nested": {"k": TRICKY}}
    parts = [{"type": "text", "text": TRICKY}]
    outcome = await store.append_messages(tenant, c.id, [msg("m1", TRICKY, metadata=metadata, parts=parts)])
    stored = outcome.results[0].message
    assert (stored.content, stored.metadata, stored.parts) == (TRICKY, metadata, parts)
    current = await store.get_conversation(tenant, c.id)
    assert current == outcome.conversation
    assert (current.title, current.tags) == (renamed.title, (TRICKY, "\U0001f600"))
    assert (await store.read_messages(current)).messages == [stored]


async def test_preview_is_truncated(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    outcome = await store.append_messages(tenant, c.id, [msg("long", "x" * 1000)])
    assert 0 < len(outcome.conversation.preview) < 1000


async def test_append_with_a_known_id_returns_the_stored_message_unchanged(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    first = (await store.append_messages(tenant, c.id, [msg("m1", "original")])).results[0].message
    for _ in range(10):
        outcome = await store.append_messages(tenant, c.id, [msg("m1", "original")])
        assert outcome.results[0].created is False
        assert outcome.results[0].message == first
    current = await store.get_conversation(tenant, c.id)
    assert (current.last_seq, current.message_count) == (1, 1)
    assert [m.content for m in (await store.read_messages(current)).messages] == ["original"]


async def test_a_known_id_with_other_content_is_a_conflict_that_stores_nothing(
    store: Store, tenant: str
) -> None:
    c = await store.create_conversation(conv(tenant))
    parts = [{"type": "text", "text": "hi"}, 3, 1.5, None]
    stored = await store.append_messages(
        tenant, c.id, [msg("m1", "original", parts=parts, metadata={"k": [1, "v"]})]
    )
    first = stored.results[0].message
    same = msg("m1", "original", parts=parts, metadata={"k": [1, "v"]})
    differing = [
        dataclasses.replace(same, content="other text"),
        dataclasses.replace(same, role=Role.ASSISTANT),
        dataclasses.replace(same, parts=None),
        dataclasses.replace(same, parts=[*parts, 4]),
        dataclasses.replace(same, metadata={"k": [1, "w"]}),
        dataclasses.replace(same, metadata=None),
    ]
    for other in differing:
        for batch in ([other], [msg("fresh-1"), other], [other, msg("fresh-2")]):
            with pytest.raises(Conflict) as err:
                await store.append_messages(tenant, c.id, batch)
            assert err.value.code == "message_id_conflict"
            assert err.value.extra["message"] == first
    current = await store.get_conversation(tenant, c.id)
    assert current == stored.conversation  # nothing stored, not even activity
    assert [m.id for m in (await store.read_messages(current)).messages] == ["m1"]
    replay = await store.append_messages(tenant, c.id, [msg("fresh-3"), same])
    assert [(r.message.id, r.created) for r in replay.results] == [("fresh-3", True), ("m1", False)]
    assert replay.results[1].message == first


async def test_one_id_twice_in_a_batch_with_different_content_is_a_conflict(
    store: Store, tenant: str
) -> None:
    c = await store.create_conversation(conv(tenant))
    with pytest.raises(Conflict) as err:
        await store.append_messages(tenant, c.id, [msg("x", "one"), msg("y"), msg("x", "two")])
    assert err.value.code == "message_id_conflict"
    assert (await store.get_conversation(tenant, c.id)).last_seq == 0


async def test_a_retried_stream_opening_replays_after_the_reply_grew(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    opening = NewMessage(id="r", role=Role.ASSISTANT, content="He", status=MessageStatus.STREAMING)
    await store.append_messages(tenant, c.id, [opening])
    await store.extend_message(tenant, c.id, "r", "llo")
    replay = await store.append_messages(tenant, c.id, [opening])
    assert replay.results[0].created is False and replay.results[0].message.content == "Hello"
    with pytest.raises(Conflict) as err:
        await store.append_messages(tenant, c.id, [dataclasses.replace(opening, content="Hi")])
    assert err.value.code == "message_id_conflict"


async def test_batch_mixing_known_new_and_repeated_ids(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    await store.append_messages(tenant, c.id, [msg("a")])
    outcome = await store.append_messages(tenant, c.id, [msg("b"), msg("a"), msg("c"), msg("b")])
    assert [(r.message.id, r.message.seq, r.created) for r in outcome.results] == [
        ("b", 2, True),
        ("a", 1, False),
        ("c", 3, True),
        ("b", 2, False),
    ]
    assert outcome.conversation.message_count == 3


async def test_a_replay_changes_nothing_not_even_activity(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    first = await store.append_messages(tenant, c.id, [msg("a")])
    await tick()
    replay = await store.append_messages(tenant, c.id, [msg("a")])
    assert replay.conversation == first.conversation == await store.get_conversation(tenant, c.id)


async def test_append_to_unknown_or_foreign_conversation_is_not_found(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    with pytest.raises(NotFound):
        await store.append_messages(unique("t"), c.id, [msg("x")])
    with pytest.raises(NotFound):
        await store.append_messages(tenant, unique("c"), [msg("x")])
    assert (await store.get_conversation(tenant, c.id)).last_seq == 0


async def test_fifty_concurrent_appenders_get_gapless_unique_seqs(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    outcomes = await asyncio.gather(*(store.append_messages(tenant, c.id, [msg(f"m{i}")]) for i in range(50)))
    seqs = sorted(o.results[0].message.seq for o in outcomes)
    assert seqs == list(range(1, 51))
    current = await store.get_conversation(tenant, c.id)
    assert (current.last_seq, current.message_count) == (50, 50)
    stored = (await store.read_messages(current, limit=100)).messages
    assert [m.seq for m in stored] == list(range(1, 51))
    assert {m.id for m in stored} == {f"m{i}" for i in range(50)}


async def test_concurrent_appends_of_one_id_store_it_once(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    outcomes = await asyncio.gather(*(store.append_messages(tenant, c.id, [msg("same")]) for _ in range(20)))
    assert sum(o.results[0].created for o in outcomes) == 1
    assert {o.results[0].message.seq for o in outcomes} == {1}
    assert (await store.get_conversation(tenant, c.id)).message_count == 1


async def test_message_limit_reject_is_all_or_nothing(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    await store.append_messages(tenant, c.id, [msg("a"), msg("b")], max_messages=3)
    with pytest.raises(QuotaExceeded) as err:
        await store.append_messages(tenant, c.id, [msg("c"), msg("d")], max_messages=3)
    assert err.value.code == "message_limit"
    current = await store.get_conversation(tenant, c.id)
    assert (current.last_seq, current.message_count) == (2, 2)
    # A replay of a stored id is not a new message, so it passes even at the limit.
    await store.append_messages(tenant, c.id, [msg("c")], max_messages=3)
    replay = await store.append_messages(tenant, c.id, [msg("a"), msg("c")], max_messages=3)
    assert [r.created for r in replay.results] == [False, False]


async def test_message_limit_trim_drops_the_oldest_and_never_reuses_seqs(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    for i in range(1, 6):
        await store.append_messages(tenant, c.id, [msg(f"m{i}")], max_messages=3, policy=LimitPolicy.TRIM)
    outcome = await store.append_messages(
        tenant, c.id, [msg("m6"), msg("m7")], max_messages=3, policy=LimitPolicy.TRIM
    )
    assert [r.message.seq for r in outcome.results] == [6, 7]
    current = outcome.conversation
    assert (current.last_seq, current.message_count, current.first_seq) == (7, 3, 5)
    page = await store.read_messages(current)
    assert [m.seq for m in page.messages] == [5, 6, 7] and page.has_more is False
    assert (await store.read_messages(current, after=0, limit=2)).messages[0].seq == 5

    # A late retry of a trimmed message is recognised, not stored again.
    retry = await store.append_messages(tenant, c.id, [msg("m1")], max_messages=3, policy=LimitPolicy.TRIM)
    assert retry.results[0].created is False
    assert retry.results[0].message.seq == 1
    assert retry.results[0].message.status is MessageStatus.TRIMMED
    assert (await store.get_conversation(tenant, c.id)).last_seq == 7


async def test_a_trimmed_message_keeps_its_id_seq_role_time_and_usage(store: Store, tenant: str) -> None:
    """What a retry of a trimmed message answers is what the first append stored, less its text."""
    c = await store.create_conversation(conv(tenant))
    first = await store.append_messages(
        tenant, c.id, [msg("a0", role=Role.ASSISTANT, usage=Usage(3, 4), metadata={"k": 1})],
        max_messages=2, policy=LimitPolicy.TRIM,
    )  # fmt: skip
    original = first.results[0].message
    await tick()
    for mid in ("a1", "a2"):
        await store.append_messages(tenant, c.id, [msg(mid)], max_messages=2, policy=LimitPolicy.TRIM)
    await tick()
    # A retry of a trimmed id matches whatever it sends: only the stub is left to compare with.
    retry = await store.append_messages(
        tenant, c.id, [msg("a0", "other text", role=Role.USER)], max_messages=2, policy=LimitPolicy.TRIM
    )
    stub = retry.results[0].message
    assert retry.results[0].created is False
    assert (stub.id, stub.seq, stub.role, stub.created_at, stub.usage) == (
        "a0", 1, Role.ASSISTANT, original.created_at, Usage(3, 4)
    )  # fmt: skip
    assert (stub.status, stub.content, stub.parts, stub.metadata) == (MessageStatus.TRIMMED, "", None, None)
    assert retry.conversation.usage == Usage(3, 4)


async def test_a_batch_larger_than_the_limit_is_refused_even_when_trimming(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    with pytest.raises(QuotaExceeded):
        await store.append_messages(
            tenant, c.id, [msg(f"m{i}") for i in range(4)], max_messages=3, policy=LimitPolicy.TRIM
        )
    assert (await store.get_conversation(tenant, c.id)).last_seq == 0


async def test_pages_by_seq_in_both_directions(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    await store.append_messages(tenant, c.id, [msg(f"m{i}") for i in range(1, 26)])
    current = await store.get_conversation(tenant, c.id)

    async def seqs(**kw: int) -> tuple[list[int], bool]:
        page = await store.read_messages(current, **kw)
        return [m.seq for m in page.messages], page.has_more

    assert await seqs(limit=10) == (list(range(16, 26)), True)
    assert await seqs(before=16, limit=10) == (list(range(6, 16)), True)
    assert await seqs(before=6, limit=10) == ([1, 2, 3, 4, 5], False)
    assert await seqs(before=1, limit=10) == ([], False)
    assert await seqs(after=0, limit=10) == (list(range(1, 11)), True)
    assert await seqs(after=20, limit=10) == ([21, 22, 23, 24, 25], False)
    assert await seqs(after=25, limit=10) == ([], False)
    assert await seqs(after=15, limit=10) == (list(range(16, 26)), False)
    assert await seqs(limit=25) == (list(range(1, 26)), False)
    assert await seqs(before=1000, limit=3) == ([23, 24, 25], True)
    assert await seqs(after=5, before=9, limit=10) == ([6, 7, 8], False)
    assert await seqs(after=5, before=20, limit=3) == ([6, 7, 8], True)
    assert await seqs(after=5, before=6, limit=3) == ([], False)
    assert await seqs(after=20, before=5, limit=3) == ([], False)


async def test_reading_an_empty_conversation(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    for kw in ({}, {"before": 5}, {"after": 0}):
        page = await store.read_messages(c, **kw)
        assert page.messages == [] and page.has_more is False


# -- limits -----------------------------------------------------------------------------------------


async def test_conversation_limits_per_user_and_per_tenant(store: Store, tenant: str) -> None:
    await store.create_conversation(conv(tenant, user="u1"), max_per_user=2)
    await store.create_conversation(conv(tenant, user="u1"), max_per_user=2)
    with pytest.raises(QuotaExceeded) as err:
        await store.create_conversation(conv(tenant, user="u1"), max_per_user=2)
    assert err.value.code == "conversation_limit"
    await store.create_conversation(conv(tenant, user="u2"), max_per_user=2, max_per_tenant=3)
    with pytest.raises(QuotaExceeded):
        await store.create_conversation(conv(tenant, user="u3"), max_per_user=2, max_per_tenant=3)
    assert await store.count_conversations(tenant) == 3
    # Deleting frees room.
    first = (await store.list_conversations(ConversationQuery(tenant=tenant, user="u1"))).items[0]
    await store.delete_conversation(tenant, first.id)
    await store.create_conversation(conv(tenant, user="u1"), max_per_user=2, max_per_tenant=3)


async def test_concurrent_creates_never_overshoot_a_limit(store: Store, tenant: str) -> None:
    results = await asyncio.gather(
        *(store.create_conversation(conv(tenant), max_per_user=5) for _ in range(20)), return_exceptions=True
    )
    assert sum(isinstance(r, Conversation) for r in results) == 5
    assert all(isinstance(r, (Conversation, QuotaExceeded)) for r in results)
    assert await store.count_conversations(tenant, "u1") == 5


# -- expiry -----------------------------------------------------------------------------------------


async def test_a_conversation_expires_ttl_after_its_last_write(store: Store, tenant: str) -> None:
    # Margins of 400 ms or more around every expiry, so a loaded machine cannot flip an outcome.
    c = await store.create_conversation(conv(tenant, ttl_ms=1000))
    assert c.expires_at == c.created_at + 1000
    await asyncio.sleep(0.6)
    outcome = await store.append_messages(tenant, c.id, [msg("keepalive")])  # a write slides the window
    assert outcome.conversation.expires_at == outcome.conversation.last_activity_at + 1000
    await asyncio.sleep(0.5)  # past the first expiry, 0.5 s before the slid one
    assert (await store.get_conversation(tenant, c.id)).message_count == 1
    await asyncio.sleep(0.9)
    with pytest.raises(Expired) as err:
        await store.get_conversation(tenant, c.id)
    assert err.value.code == "expired"
    with pytest.raises(Expired):
        await store.append_messages(tenant, c.id, [msg("late")])
    with pytest.raises(Expired):
        await store.update_conversation(tenant, c.id, ConversationPatch(title="late"))
    assert (await store.list_conversations(ConversationQuery(tenant=tenant))).items == []
    assert await store.count_conversations(tenant) == 0


async def test_an_expired_id_can_be_created_afresh(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, ttl_ms=600))  # room for the append on a busy machine
    await store.append_messages(tenant, c.id, [msg("old")])
    await asyncio.sleep(0.7)
    fresh = await store.create_conversation(conv(tenant, c.id), max_per_user=1)
    assert (fresh.last_seq, fresh.expires_at) == (0, None)
    assert (await store.read_messages(fresh)).messages == []
    outcome = await store.append_messages(tenant, c.id, [msg("old")])
    assert outcome.results[0].created and outcome.results[0].message.seq == 1


# -- scope ------------------------------------------------------------------------------------------


async def test_calls_outside_their_scope_find_nothing_and_change_nothing(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, user="alice", workspace="w1", title="hers"))
    await store.append_messages(tenant, c.id, [msg("a")])
    before = await store.get_conversation(tenant, c.id)
    outsiders = [
        Scope(user="bob"),
        Scope(user="alice", workspaces=frozenset({"w2"})),
        Scope(workspaces=frozenset()),
    ]
    for scope in outsiders:
        with pytest.raises(NotFound) as err:
            await store.get_conversation(tenant, c.id, scope)
        assert type(err.value) is NotFound
        with pytest.raises(NotFound):
            await store.update_conversation(tenant, c.id, ConversationPatch(title="x"), scope=scope)
        with pytest.raises(NotFound):
            await store.append_messages(tenant, c.id, [msg("b")], scope=scope)
        with pytest.raises(NotFound):
            await store.delete_conversation(tenant, c.id, scope)
    assert await store.get_conversation(tenant, c.id) == before
    for insider in (
        Scope(user="alice"),
        Scope(workspaces=frozenset({"w1"})),
        Scope(user="alice", workspaces=frozenset({"w1", "w9"})),
    ):
        assert await store.get_conversation(tenant, c.id, insider) == before
    outcome = await store.append_messages(tenant, c.id, [msg("b")], scope=Scope(user="alice"))
    assert outcome.results[0].created
    assert (await store.delete_conversation(tenant, c.id, Scope(user="alice"))).id == c.id


async def test_expiry_is_told_only_within_the_scope(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, user="alice", ttl_ms=50))
    await asyncio.sleep(0.1)
    with pytest.raises(Expired):
        await store.get_conversation(tenant, c.id, Scope(user="alice"))
    with pytest.raises(NotFound) as err:
        await store.get_conversation(tenant, c.id, Scope(user="bob"))
    assert type(err.value) is NotFound


async def test_a_local_conversation_keeps_no_messages(store: Store, tenant: str) -> None:
    c = await store.create_conversation(dataclasses.replace(conv(tenant), mode=Mode.LOCAL))
    with pytest.raises(Conflict) as err:
        await store.append_messages(tenant, c.id, [msg("a")])
    assert err.value.code == "local_only"
    assert (await store.get_conversation(tenant, c.id)).message_count == 0


# -- heartbeats, sweeping, tombstones ---------------------------------------------------------------


async def test_a_touch_slides_the_expiry_and_marks_activity_but_not_the_version(
    store: Store, tenant: str
) -> None:
    c = await store.create_conversation(conv(tenant, ttl_ms=1000))
    await asyncio.sleep(0.6)
    touched = await store.touch_conversation(tenant, c.id)
    assert touched.last_activity_at > c.last_activity_at
    assert touched.expires_at == touched.last_activity_at + 1000
    assert touched.version == c.version
    await asyncio.sleep(0.5)  # past its first expiry, 0.5 s before the slid one
    assert await store.get_conversation(tenant, c.id) == touched
    durable = await store.create_conversation(conv(tenant))
    assert (await store.touch_conversation(tenant, durable.id)).expires_at is None
    with pytest.raises(NotFound):
        await store.touch_conversation(tenant, c.id, Scope(user="intruder"))
    with pytest.raises(NotFound):
        await store.touch_conversation(tenant, unique("c"))


async def test_a_patch_can_change_the_expiry_window(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, ttl_ms=600))
    forever = await store.update_conversation(tenant, c.id, ConversationPatch(pinned=True, ttl=TTL(None)))
    assert (forever.ttl_ms, forever.expires_at) == (None, None)
    await asyncio.sleep(0.7)  # past the window it was created with
    assert (await store.get_conversation(tenant, c.id)).pinned
    again = await store.update_conversation(tenant, c.id, ConversationPatch(pinned=False, ttl=TTL(150)))
    assert again.expires_at is not None and again.ttl_ms == 150
    await asyncio.sleep(0.25)
    with pytest.raises(Expired):
        await store.get_conversation(tenant, c.id)


async def test_sweeping_removes_expired_data_once_and_keeps_a_tombstone(store: Store, tenant: str) -> None:
    doomed = [await store.create_conversation(conv(tenant, ttl_ms=600, user=f"u{i}")) for i in range(3)]
    doomed = [
        (await store.append_messages(tenant, c.id, [msg("m1"), msg("m2")])).conversation for c in doomed
    ]
    survivor = await store.create_conversation(conv(tenant, ttl_ms=60_000))
    forever = await store.create_conversation(conv(tenant))
    await asyncio.sleep(0.7)

    found: list[ExpiredConversation] = []
    for _ in range(5):  # other tests' tenants may hold expired conversations too
        found += [e for e in await store.sweep_expired(keep_ms=60_000) if e.tenant == tenant]
    assert sorted(e.id for e in found) == sorted(c.id for c in doomed)  # each exactly once
    first = next(e for e in found if e.id == doomed[0].id)
    assert (first.user, first.workspace, first.mode) == ("u0", "w1", Mode.DURABLE)
    assert first.expired_at == doomed[0].expires_at

    for c in doomed:
        with pytest.raises(Expired):
            await store.get_conversation(tenant, c.id)
        assert (await store.read_messages(dataclasses.replace(c, last_seq=2, message_count=2))).messages == []
    assert (await store.get_conversation(tenant, survivor.id)).id == survivor.id
    assert (await store.get_conversation(tenant, forever.id)).id == forever.id

    await store.sweep_expired(keep_ms=0)  # the tombstones have been kept long enough
    for c in doomed:
        with pytest.raises(NotFound) as err:
            await store.get_conversation(tenant, c.id)
        assert type(err.value) is NotFound


async def test_concurrent_sweepers_never_report_one_conversation_twice(store: Store, tenant: str) -> None:
    ids = {(await store.create_conversation(conv(tenant, ttl_ms=50))).id for _ in range(30)}
    await asyncio.sleep(0.1)
    batches = await asyncio.gather(*(store.sweep_expired(limit=7, keep_ms=60_000) for _ in range(10)))
    reported = [e.id for batch in batches for e in batch if e.tenant == tenant]
    while True:
        more = [e.id for e in await store.sweep_expired(limit=7, keep_ms=60_000) if e.tenant == tenant]
        if not more:
            break
        reported += more
    assert sorted(reported) == sorted(ids)


# -- streaming replies ------------------------------------------------------------------------------


async def open_stream(store: Store, tenant: str, cid: str, mid: str = "reply", content: str = "") -> None:
    new = NewMessage(id=mid, role=Role.ASSISTANT, content=content, status=MessageStatus.STREAMING)
    outcome = await store.append_messages(tenant, cid, [new])
    assert outcome.results[0].message.status is MessageStatus.STREAMING


async def test_a_streaming_reply_grows_and_is_readable_meanwhile(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, ttl_ms=60_000))
    await store.append_messages(tenant, c.id, [msg("question", "Why?")])
    await open_stream(store, tenant, c.id)
    await tick()
    first = await store.extend_message(tenant, c.id, "reply", "Because ")
    assert (first.offset, first.appended, first.message.content) == (0, "Because ", "Because ")
    second = await store.extend_message(tenant, c.id, "reply", "the sky ")
    assert (second.offset, second.message.content) == (8, "Because the sky ")
    current = await store.get_conversation(tenant, c.id)
    assert current.preview == "Because the sky " and current.last_activity_at > c.last_activity_at
    page = await store.read_messages(current)
    assert [(m.id, m.content, m.status) for m in page.messages][-1] == (
        "reply",
        "Because the sky ",
        MessageStatus.STREAMING,
    )


async def test_deltas_with_an_offset_are_idempotent(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    await open_stream(store, tenant, c.id, content="Hel")
    assert (await store.extend_message(tenant, c.id, "reply", "lo", offset=3)).message.content == "Hello"
    retry = await store.extend_message(tenant, c.id, "reply", "lo", offset=3)  # a retried delta
    assert (retry.appended, retry.message.content) == ("", "Hello")
    overlap = await store.extend_message(tenant, c.id, "reply", "lo, world", offset=3)  # part new
    assert (overlap.offset, overlap.appended, overlap.message.content) == (5, ", world", "Hello, world")
    for text, offset in (("X", 20), ("Jello", 0)):
        with pytest.raises(Conflict) as err:
            await store.extend_message(tenant, c.id, "reply", text, offset=offset)
        assert err.value.code == "offset_mismatch" and err.value.extra["length"] == 12
    assert (await store.read_messages(await store.get_conversation(tenant, c.id))).messages[
        0
    ].content == "Hello, world"


async def test_extending_what_is_not_a_live_stream_is_refused(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    await store.append_messages(tenant, c.id, [msg("done", "complete already")])
    with pytest.raises(Conflict) as err:
        await store.extend_message(tenant, c.id, "done", "more")
    assert err.value.code == "not_streaming"
    with pytest.raises(NotFound) as missing:
        await store.extend_message(tenant, c.id, "no-such-message", "x")
    assert missing.value.code == "message_not_found"
    await open_stream(store, tenant, c.id)
    with pytest.raises(NotFound):
        await store.extend_message(tenant, c.id, "reply", "x", scope=Scope(user="intruder"))
    with pytest.raises(TooLarge):
        await store.extend_message(tenant, c.id, "reply", "é" * 20, max_bytes=30)
    with pytest.raises(NotFound):
        await store.finish_message(
            tenant, c.id, "reply", MessageStatus.COMPLETE, scope=Scope(user="intruder")
        )


async def test_finishing_a_stream_counts_its_usage_once(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    await store.append_messages(tenant, c.id, [msg("q", usage=Usage(5, 0))])
    await open_stream(store, tenant, c.id)
    await store.extend_message(tenant, c.id, "reply", "Answer.")
    done = await store.finish_message(tenant, c.id, "reply", MessageStatus.COMPLETE, usage=Usage(7, 3))
    assert (done.status, done.content, done.usage) == (MessageStatus.COMPLETE, "Answer.", Usage(7, 3))
    again = await store.finish_message(tenant, c.id, "reply", MessageStatus.COMPLETE, usage=Usage(7, 3))
    assert again == done
    current = await store.get_conversation(tenant, c.id)
    assert (current.usage, current.preview) == (Usage(12, 3), "Answer.")
    with pytest.raises(Conflict) as err:
        await store.finish_message(tenant, c.id, "reply", MessageStatus.INTERRUPTED)
    assert err.value.code == "not_streaming"
    with pytest.raises(Conflict):
        await store.extend_message(tenant, c.id, "reply", " More.")
    page = await store.read_messages(current)
    assert page.messages[-1].status is MessageStatus.COMPLETE and page.messages[-1].usage == Usage(7, 3)


async def test_streams_whose_writer_went_quiet_are_interrupted_once(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    await open_stream(store, tenant, c.id, "quiet")
    await store.extend_message(tenant, c.id, "quiet", "partial")
    await open_stream(store, tenant, c.id, "busy")
    await asyncio.sleep(0.8)
    await store.extend_message(tenant, c.id, "busy", "still going")  # 0.8 s of silence for "quiet" only
    results = await asyncio.gather(*(store.interrupt_stale_streams(idle_ms=400) for _ in range(4)))
    mine = [
        (conversation.id, message.id)
        for batch in results
        for conversation, message in batch
        if conversation.tenant == tenant
    ]
    assert mine == [(c.id, "quiet")]
    messages = {
        m.id: m for m in (await store.read_messages(await store.get_conversation(tenant, c.id))).messages
    }
    assert (messages["quiet"].status, messages["quiet"].content) == (MessageStatus.INTERRUPTED, "partial")
    assert messages["busy"].status is MessageStatus.STREAMING
