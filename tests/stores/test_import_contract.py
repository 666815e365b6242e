"""`Store.import_conversation`, on every backend: a conversation stored exactly as given, all or
nothing, and importing it again stores nothing twice. Tests take `store: Store` and never branch on
the backend type."""

from __future__ import annotations

import dataclasses

import pytest

from chatkeep.errors import Conflict, InvalidInput, NotFound
from chatkeep.models import (
    Conversation,
    ConversationQuery,
    Message,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    Usage,
    now_ms,
)
from chatkeep.stores import Store
from tests.conftest import unique

HOUR = 3_600_000


def exported(
    tenant: str, *, count: int = 3, last_seq: int = 3, **fields: object
) -> tuple[Conversation, list[Message]]:
    """A conversation as an export describes it: old timestamps, counters, flags, and its retained
    messages `last_seq - count + 1 .. last_seq`."""
    t0 = now_ms() - 5 * HOUR
    cid = unique("c")
    first = last_seq - count + 1
    messages = [
        Message(
            conversation_id=cid,
            id=f"m{seq}",
            seq=seq,
            role=Role.USER if seq % 2 else Role.ASSISTANT,
            content=f"text {seq} é✓",
            created_at=t0 + seq * 1000,
            parts=[{"type": "image", "url": f"https://example.test/{seq}.png"}] if seq == first else None,
            metadata={"n": seq, "nested": {"ok": True}},
            usage=Usage(seq, 2 * seq),
            status=MessageStatus.INTERRUPTED if seq == last_seq else MessageStatus.COMPLETE,
        )
        for seq in range(first, last_seq + 1)
    ]
    values: dict[str, object] = {
        "tenant": tenant,
        "id": cid,
        "workspace": "w1",
        "user": "u1",
        "mode": Mode.DURABLE,
        "title": "Imported plans",
        "created_at": t0,
        "last_activity_at": t0 + last_seq * 1000,
        "starred": True,
        "archived": True,
        "tags": ("x", "y"),
        "message_count": count,
        "last_seq": last_seq,
        "preview": messages[-1].content if messages else "",
        "usage": Usage(100, 200),
        "version": 7,
    }
    values.update(fields)
    return Conversation(**values), messages  # type: ignore[arg-type]


def retry_of(m: Message) -> NewMessage:
    return NewMessage(id=m.id, role=m.role, content=m.content, parts=m.parts, metadata=m.metadata)


async def all_messages(store: Store, conversation: Conversation) -> list[Message]:
    page = await store.read_messages(conversation, after=0, limit=1000)
    return page.messages


async def test_import_stores_the_conversation_and_messages_exactly(store: Store, tenant: str) -> None:
    conversation, messages = exported(tenant)
    assert await store.import_conversation(conversation, messages) is True
    stored = await store.get_conversation(tenant, conversation.id)
    assert stored == conversation
    assert await all_messages(store, stored) == messages
    latest = await store.read_messages(stored, limit=2)
    assert latest.messages == messages[1:] and latest.has_more is True
    page = await store.list_conversations(ConversationQuery(tenant=tenant, user="u1"))
    assert page.items == [conversation]
    assert await store.count_conversations(tenant, "u1") == 1


async def test_importing_again_changes_nothing_and_answers_false(store: Store, tenant: str) -> None:
    conversation, messages = exported(tenant)
    assert await store.import_conversation(conversation, messages) is True
    assert await store.import_conversation(conversation, messages) is False
    touched = await store.touch_conversation(tenant, conversation.id)  # a heartbeat is not content
    assert await store.import_conversation(conversation, messages) is False
    assert await store.get_conversation(tenant, conversation.id) == touched
    assert await all_messages(store, touched) == messages
    assert await store.count_conversations(tenant) == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda c, ms: (dataclasses.replace(c, title="Other"), ms),
        lambda c, ms: (c, [*ms[:-1], dataclasses.replace(ms[-1], content="edited")]),
        lambda c, ms: (dataclasses.replace(c, user="u2"), ms),
        lambda c, ms: (dataclasses.replace(c, message_count=2), ms[1:]),
    ],
    ids=["title", "message", "owner", "fewer-messages"],
)
async def test_importing_other_content_over_an_id_is_a_conflict(store: Store, tenant: str, change) -> None:  # type: ignore[no-untyped-def]
    conversation, messages = exported(tenant)
    await store.import_conversation(conversation, messages)
    other, other_messages = change(conversation, messages)
    with pytest.raises(Conflict) as caught:
        await store.import_conversation(other, other_messages)
    assert caught.value.code == "import_conflict"
    stored = await store.get_conversation(tenant, conversation.id)
    assert stored == conversation
    assert await all_messages(store, stored) == messages


async def test_an_import_and_a_create_of_one_id_exclude_each_other(store: Store, tenant: str) -> None:
    conversation, messages = exported(tenant)
    await store.import_conversation(conversation, messages)
    with pytest.raises(Conflict) as caught:
        await store.create_conversation(dataclasses.replace(conversation, message_count=0, last_seq=0))
    assert caught.value.code == "conversation_exists"

    created = await store.create_conversation(
        Conversation(tenant=tenant, id=unique("c"), workspace="w1", user="u1", mode=Mode.DURABLE)
    )
    rekeyed = [dataclasses.replace(m, conversation_id=created.id) for m in messages]
    with pytest.raises(Conflict) as caught:
        await store.import_conversation(dataclasses.replace(conversation, id=created.id), rekeyed)
    assert caught.value.code == "import_conflict"
    assert await store.get_conversation(tenant, created.id) == created


async def test_an_empty_created_conversation_imports_as_unchanged(store: Store, tenant: str) -> None:
    created = await store.create_conversation(
        Conversation(tenant=tenant, id=unique("c"), workspace="w1", user="u1", mode=Mode.DURABLE, title="T")
    )
    assert await store.import_conversation(created, []) is False


async def test_writes_continue_an_imported_history(store: Store, tenant: str) -> None:
    conversation, messages = exported(tenant, count=2, last_seq=5)  # seqs 1-3 were trimmed away
    await store.import_conversation(conversation, messages)
    stored = await store.get_conversation(tenant, conversation.id)
    assert stored.first_seq == 4
    assert [m.seq for m in await all_messages(store, stored)] == [4, 5]
    outcome = await store.append_messages(tenant, conversation.id, [retry_of(messages[0])])
    assert outcome.results[0].created is False and outcome.results[0].message == messages[0]
    outcome = await store.append_messages(
        tenant, conversation.id, [NewMessage(id="new", role=Role.USER, content="hello")]
    )
    assert outcome.results[0].message.seq == 6
    assert outcome.conversation.message_count == 3
    assert outcome.conversation.usage == Usage(100, 200)
    assert outcome.conversation.version == 7


async def test_an_imported_streaming_reply_can_be_extended_and_finished(store: Store, tenant: str) -> None:
    conversation, messages = exported(tenant, count=1, last_seq=1)
    streaming = [dataclasses.replace(messages[0], status=MessageStatus.STREAMING, usage=Usage())]
    await store.import_conversation(conversation, streaming)
    extension = await store.extend_message(
        tenant, conversation.id, "m1", " more", offset=len(streaming[0].content)
    )
    assert extension.message.content == streaming[0].content + " more"
    finished = await store.finish_message(
        tenant, conversation.id, "m1", MessageStatus.COMPLETE, usage=Usage(3, 4)
    )
    assert finished.status is MessageStatus.COMPLETE
    assert (await store.get_conversation(tenant, conversation.id)).usage == Usage(103, 204)


async def test_expiry_and_ttl_are_kept(store: Store, tenant: str) -> None:
    expires = now_ms() + HOUR
    conversation, messages = exported(tenant, mode=Mode.EPHEMERAL, ttl_ms=2 * HOUR, expires_at=expires)
    await store.import_conversation(conversation, messages)
    stored = await store.get_conversation(tenant, conversation.id)
    assert (stored.ttl_ms, stored.expires_at) == (2 * HOUR, expires)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda c, ms: (c, [ms[0], dataclasses.replace(ms[1], seq=9), ms[2]]), "seq"),
        (lambda c, ms: (c, ms[:2]), "messages"),
        (lambda c, ms: (c, [ms[0], dataclasses.replace(ms[1], id="m1"), ms[2]]), "id"),
        (
            lambda c, ms: (c, [ms[0], dataclasses.replace(ms[1], conversation_id="other"), ms[2]]),
            "conversation_id",
        ),
        (
            lambda c, ms: (c, [ms[0], dataclasses.replace(ms[1], status=MessageStatus.TRIMMED), ms[2]]),
            "status",
        ),
        (lambda c, ms: (dataclasses.replace(c, ttl_ms=1000, expires_at=now_ms() - 1), ms), "expires_at"),
        (lambda c, ms: (dataclasses.replace(c, mode=Mode.LOCAL), ms), "messages"),
    ],
    ids=["gap", "missing", "id-twice", "other-conversation", "trimmed", "expired", "local-with-messages"],
)
async def test_an_import_that_cannot_be_held_as_given_stores_nothing(  # type: ignore[no-untyped-def]
    store: Store, tenant: str, change, field: str
) -> None:
    conversation, messages = exported(tenant)
    bad, bad_messages = change(conversation, messages)
    with pytest.raises(InvalidInput) as caught:
        await store.import_conversation(bad, bad_messages)
    assert (caught.value.code, caught.value.extra["field"]) == ("invalid_import", field)
    with pytest.raises(NotFound):
        await store.get_conversation(tenant, conversation.id)
    assert await store.count_conversations(tenant) == 0
