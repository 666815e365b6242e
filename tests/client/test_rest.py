"""Every REST method of the client against a real server, through both `AsyncClient` and `Client`
(one test body: the `api` fixture runs the blocking client's calls in a thread)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest

from chatkeep.api.app import create_app
from chatkeep.client import (
    AsyncClient,
    AuthenticationError,
    Client,
    ConflictError,
    ForbiddenError,
    Message,
    MessageStatus,
    Mode,
    NewMessage,
    NotFoundError,
    PreconditionFailedError,
    Role,
    Usage,
)
from chatkeep.config import Settings
from tests.client.conftest import FAST, Server
from tests.conftest import unique


class Blocking:
    """A `Client` whose methods are awaited like `AsyncClient`'s (each runs in a thread)."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(functools.partial(method, *args, **kwargs))

        return call


@pytest.fixture(params=["async", "sync"])
async def api(request: pytest.FixtureRequest, server: Server, token: str) -> AsyncIterator[Any]:
    if request.param == "async":
        async with AsyncClient(server.url, token, retry=FAST) as c:
            yield c
    else:
        with Client(server.url, token, retry=FAST) as s:
            yield Blocking(s)


def contents(messages: list[Message]) -> list[tuple[int, str]]:
    return [(m.seq, m.content) for m in messages]


async def test_conversation_crud_and_heartbeat(api: Any) -> None:
    ws = unique("w")
    made = await api.create_conversation(ws, title="Trip", tags=["travel", "2026"], starred=True)
    assert (made.workspace, made.title, made.tags, made.starred, made.pinned) == (
        ws,
        "Trip",
        ("travel", "2026"),
        True,
        False,
    )
    assert (made.mode, made.version, made.last_seq, made.message_count, made.expires_at) == (
        Mode.DURABLE,
        1,
        0,
        0,
        None,
    )
    again = await api.create_conversation(ws, id=made.id, title="Trip", tags=["travel", "2026"], starred=True)
    assert again == made  # a retried create answers the one stored

    await api.append(made.id, "user", "hello")
    loaded = await api.get_conversation(made.id)
    assert (loaded.conversation.last_seq, loaded.conversation.last_message_preview) == (1, "hello")
    assert contents(loaded.messages) == [(1, "hello")] and loaded.has_more_messages is False

    updated = await api.update_conversation(made.id, made.version, title="Trip to Oslo", pinned=True)
    assert (updated.title, updated.pinned, updated.starred, updated.version) == (
        "Trip to Oslo",
        True,
        True,
        2,
    )
    with pytest.raises(PreconditionFailedError) as stale:
        await api.update_conversation(made.id, made.version, title="lost")
    assert (stale.value.status, stale.value.code) == (412, "version_mismatch")
    anyway = await api.update_conversation(made.id, "*", tags=[])
    assert (anyway.tags, anyway.version) == ((), 3)

    beat = await api.heartbeat(made.id)
    assert (beat.id, beat.expires_at) == (made.id, None)
    assert beat.last_activity_at >= made.last_activity_at

    await api.delete_conversation(made.id)
    with pytest.raises(NotFoundError) as gone:
        await api.get_conversation(made.id)
    assert (gone.value.status, gone.value.code, gone.value.problem["status"]) == (404, "not_found", 404)
    assert gone.value.detail == f"conversation {made.id!r} not found"


async def test_list_with_filters_and_cursor(api: Any) -> None:
    ws = unique("w")
    made = [
        await api.create_conversation(ws, title=f"chat {i}", tags=["odd"] if i % 2 else []) for i in range(5)
    ]
    await api.update_conversation(made[3].id, 1, starred=True, pinned=True)

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = await api.list_conversations(workspace=ws, limit=2, cursor=cursor)
        seen += [c.id for c in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    # pinned first, then the others, each once
    assert seen[0] == made[3].id and sorted(seen) == sorted(c.id for c in made) and pages == 3
    assert [c.id for c in (await api.list_conversations(workspace=ws, starred=True)).items] == [made[3].id]
    odd = (await api.list_conversations(workspace=ws, tag="odd")).items
    assert [c.id for c in odd] == [made[3].id, made[1].id]
    assert [c.id for c in (await api.list_conversations(workspace=ws, q="CHAT 2")).items] == [made[2].id]
    assert (await api.list_conversations(workspace=ws, archived=True)).items == []


async def test_iter_conversations_follows_the_cursor(server: Server, token: str) -> None:
    ws = unique("w")
    async with AsyncClient(server.url, token) as c:
        ids = {(await c.create_conversation(ws)).id for _ in range(5)}
        assert {x.id async for x in c.iter_conversations(workspace=ws, limit=2)} == ids
    with Client(server.url, token) as s:
        assert {x.id for x in s.iter_conversations(workspace=ws, limit=2)} == ids


async def test_appends_carry_ids_and_replays_are_answered(api: Any) -> None:
    cid = (await api.create_conversation(unique("w"))).id
    first = await api.append(cid, Role.USER, "hi", metadata={"lang": "en"}, parts=[{"type": "text"}])
    assert first.created and len(first.message.id) == 32  # a uuid4 hex chosen by the client
    assert (first.message.seq, first.message.role, first.message.metadata, first.message.parts) == (
        1,
        Role.USER,
        {"lang": "en"},
        [{"type": "text"}],
    )
    replay = await api.append(
        cid, "user", "hi", id=first.message.id, metadata={"lang": "en"}, parts=[{"type": "text"}]
    )
    assert (replay.created, replay.message) == (False, first.message)

    with pytest.raises(ConflictError) as conflict:
        await api.append(cid, "user", "other text", id=first.message.id)
    assert conflict.value.code == "message_id_conflict"
    assert conflict.value.problem["message"]["content"] == "hi"

    batch = await api.append_batch(
        cid,
        [
            NewMessage("assistant", "a", usage=Usage(3, 7)),
            NewMessage("user", "b", id="b-1"),
            NewMessage(Role.SYSTEM, "c"),
        ],
    )
    assert [(r.created, r.message.seq, r.message.content) for r in batch.results] == [
        (True, 2, "a"),
        (True, 3, "b"),
        (True, 4, "c"),
    ]
    assert batch.results[0].message.usage == Usage(3, 7) and batch.results[1].message.id == "b-1"
    again = await api.append_batch(cid, [NewMessage("user", "b", id="b-1")])
    assert [(r.created, r.message.seq) for r in again.results] == [(False, 3)]
    loaded = await api.get_conversation(cid)
    assert loaded.conversation.usage == Usage(3, 7) and loaded.conversation.message_count == 4


async def test_pages_both_ways(api: Any) -> None:
    cid = (await api.create_conversation(unique("w"))).id
    await api.append_batch(cid, [NewMessage("user", f"m{i}") for i in range(1, 11)])
    latest = await api.list_messages(cid, limit=3)
    assert (contents(latest.messages), latest.has_more) == ([(8, "m8"), (9, "m9"), (10, "m10")], True)
    back = await api.list_messages(cid, before=4, limit=5)
    assert (contents(back.messages), back.has_more) == ([(1, "m1"), (2, "m2"), (3, "m3")], False)
    forward = await api.list_messages(cid, after=6, limit=3)
    assert (contents(forward.messages), forward.has_more) == ([(7, "m7"), (8, "m8"), (9, "m9")], True)
    between = await api.list_messages(cid, after=2, before=5)
    assert contents(between.messages) == [(3, "m3"), (4, "m4")]
    loaded = await api.get_conversation(cid, messages=2)
    assert contents(loaded.messages) == [(9, "m9"), (10, "m10")] and loaded.has_more_messages is True


async def test_search_finds_messages_and_titles_page_by_page(api: Any) -> None:
    word = unique("zebra").replace("-", "")
    workspace = unique("w")
    titled = (await api.create_conversation(workspace, title=f"about {word}")).id
    cid = (await api.create_conversation(workspace)).id
    sent = await api.append_batch(cid, [NewMessage("user", f"a {word} here"), NewMessage("user", "nothing")])
    first = await api.search(word, workspace=workspace, limit=1)
    assert (len(first.hits), first.partial) == (1, False) and first.next_cursor is not None
    second = await api.search(word, workspace=workspace, limit=1, cursor=first.next_cursor)
    hits = first.hits + second.hits
    assert second.next_cursor is None
    by_message = {h.message_id: h for h in hits}
    assert set(by_message) == {None, sent.results[0].message.id}
    title_hit, message_hit = by_message[None], by_message[sent.results[0].message.id]
    assert (title_hit.conversation_id, title_hit.seq, title_hit.title) == (titled, None, f"about {word}")
    assert (message_hit.conversation_id, message_hit.seq, message_hit.role) == (cid, 1, Role.USER)
    assert [(seg.text, seg.match) for seg in message_hit.snippet] == [
        ("a ", False),
        (word, True),
        (" here", False),
    ]
    assert (await api.search(unique("absent").replace("-", ""), workspace=workspace)).hits == []


async def test_deltas_and_finish(api: Any) -> None:
    cid = (await api.create_conversation(unique("w"))).id
    opened = await api.append(cid, "assistant", "")
    assert opened.message.status is MessageStatus.COMPLETE
    with pytest.raises(ConflictError) as finished:
        await api.append_delta(cid, opened.message.id, "x", 0)
    assert finished.value.code == "not_streaming"


async def test_cleanup_sessions(api: Any) -> None:
    ws = unique("w")
    keep = await api.create_conversation(ws, mode="durable")
    sessions = [await api.create_conversation(ws, mode=Mode.EPHEMERAL) for _ in range(2)]
    specific = await api.cleanup_sessions("specific", ids=[sessions[0].id])
    assert (specific.deleted, specific.count) == ([sessions[0].id], 1)
    rest = await api.cleanup_sessions("all", workspace=ws)
    assert (rest.deleted, rest.count) == ([sessions[1].id], 1)
    assert (await api.get_conversation(keep.id)).conversation.id == keep.id


async def test_settings_with_the_tenant_key(server: Server, token: str) -> None:
    async with AsyncClient(server.url, server.api_key) as tenant:
        before = await tenant.get_persistence_settings()
        assert (before.default_mode, before.pinned_never_expire) == (Mode.DURABLE, True)
        changed = await tenant.put_persistence_settings(ephemeral_ttl_seconds=600, default_mode="ephemeral")
        assert (changed.default_mode, changed.ephemeral_ttl_seconds) == (Mode.EPHEMERAL, 600)
        restored = await tenant.put_persistence_settings(ephemeral_ttl_seconds=None, default_mode="durable")
        assert restored == before
    with Client(server.url, token) as user, pytest.raises(ForbiddenError) as refused:
        user.get_persistence_settings()
    assert refused.value.status == 403


async def test_token_provider_is_asked_again_once_on_401(server: Server) -> None:
    good = server.token()
    handed: list[str] = []

    async def provider() -> str:
        handed.append("expired.token.value" if not handed else good)
        return handed[-1]

    async with AsyncClient(server.url, provider) as c:
        assert (await c.create_conversation(unique("w"))).user.startswith("u-")
        await c.health()
    assert handed == ["expired.token.value", good]

    calls: list[int] = []

    def always_bad() -> str:
        calls.append(1)
        return "bad"

    with Client(server.url, always_bad) as s, pytest.raises(AuthenticationError) as refused:
        s.list_conversations()
    assert (refused.value.status, refused.value.code, len(calls)) == (401, "invalid_token", 2)


async def test_dev_token_and_health(server: Server) -> None:
    async with AsyncClient(server.url) as c:
        token = await c.dev_token(user="client-dev")
        health = await c.health()
        assert health["status"] == "ready" and set(health["stores"].values()) == {"up"}
    async with AsyncClient(server.url, token) as c:
        assert (await c.create_conversation(unique("w"))).user == "client-dev"


# Every operation of the server's OpenAPI document, and the client method that calls it.
OPERATIONS = {
    ("post", "/v1/conversations"): "create_conversation",
    ("get", "/v1/conversations"): "list_conversations",
    ("get", "/v1/conversations/{conversation_id}"): "get_conversation",
    ("patch", "/v1/conversations/{conversation_id}"): "update_conversation",
    ("delete", "/v1/conversations/{conversation_id}"): "delete_conversation",
    ("post", "/v1/conversations/{conversation_id}/heartbeat"): "heartbeat",
    ("post", "/v1/conversations/{conversation_id}/messages"): "append",
    ("get", "/v1/conversations/{conversation_id}/messages"): "list_messages",
    ("post", "/v1/conversations/{conversation_id}/messages:batch"): "append_batch",
    ("post", "/v1/conversations/{conversation_id}/messages/{message_id}/deltas"): "append_delta",
    ("post", "/v1/conversations/{conversation_id}/messages/{message_id}/finish"): "finish_stream",
    ("post", "/v1/sessions/cleanup"): "cleanup_sessions",
    ("get", "/v1/settings/persistence"): "get_persistence_settings",
    ("put", "/v1/settings/persistence"): "put_persistence_settings",
    ("get", "/v1/dev/token"): "dev_token",
    ("get", "/healthz"): "health",
    ("get", "/v1/export"): "export",
    ("post", "/v1/import"): "import_file",
    ("get", "/v1/search"): "search",
    ("get", "/readyz"): "health",
}


def test_every_operation_of_the_api_has_a_client_method() -> None:
    document = create_app(Settings(durable_url="memory://")).openapi()
    operations = {(m, p) for p, ops in document["paths"].items() for m in ops if p != "/metrics"}
    assert operations == set(OPERATIONS)
    for name in OPERATIONS.values():
        assert callable(getattr(AsyncClient, name)) and callable(getattr(Client, name))
