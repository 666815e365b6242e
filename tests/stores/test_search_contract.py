"""The search section of the Store conformance suite: every promise of `Store.search`, run on every
backend. Tests take `store: Store` and never branch on the backend type."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from chatkeep.domain.search import search_terms
from chatkeep.models import (
    ConversationPatch,
    LimitPolicy,
    MessageStatus,
    Mode,
    NewMessage,
    Role,
    SearchHit,
    SearchPage,
    SearchQuery,
    Segment,
)
from chatkeep.stores import Store
from tests.conftest import unique
from tests.stores.test_contract import conv, msg


async def search(store: Store, tenant: str, text: str, **kw: object) -> SearchPage:
    return await store.search(SearchQuery(tenant=tenant, terms=search_terms(text), **kw))  # type: ignore[arg-type]


def found(page: SearchPage) -> list[tuple[str, str | None, int]]:
    return [(h.conversation_id, h.message_id, h.score) for h in page.hits]


async def test_hits_are_ranked_by_score_then_conversation_then_seq(store: Store, tenant: str) -> None:
    a = await store.create_conversation(conv(tenant, "conv-a", title="Release notes"))
    b = await store.create_conversation(conv(tenant, "conv-b", title="Deploy checklist"))
    await store.append_messages(
        tenant,
        a.id,
        [
            msg("a1", "deploy"),
            msg("a2", "please deploy it now"),
            msg("a3", "deploy deploy deploy deploy the thing"),
            msg("a4", "nothing relevant here"),
            msg("a5", "deployment tomorrow"),
        ],
    )
    await store.append_messages(tenant, b.id, [msg("b1", "Deploy!", role=Role.ASSISTANT)])
    page = await search(store, tenant, "DEPLOY")
    # score = min(count, 3) * 1_000_000 // (words + 10), doubled for a title
    assert found(page) == [
        ("conv-a", "a3", 187_500),
        ("conv-b", None, 166_666),
        ("conv-a", "a1", 90_909),
        ("conv-b", "b1", 90_909),
        ("conv-a", "a2", 71_428),
    ]
    assert (page.next_cursor, page.partial) == (None, False)
    title, reply = page.hits[1], page.hits[3]
    assert (title.seq, title.role, title.title, title.workspace) == (0, None, "Deploy checklist", "w1")
    assert (reply.seq, reply.role, reply.title) == (1, Role.ASSISTANT, "Deploy checklist")


async def test_a_hit_holds_every_term_as_a_whole_word(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant))
    await store.append_messages(
        tenant,
        c.id,
        [
            msg("both", "Deploy tomorrow morning"),
            msg("one", "deploy today"),
            msg("prefix", "deployment tomorrow"),
            msg("joined", "deploy_tomorrow"),
        ],
    )
    assert [h.message_id for h in (await search(store, tenant, "tomorrow deploy")).hits] == ["joined", "both"]
    assert [h.message_id for h in (await search(store, tenant, "deploy")).hits] == ["one", "joined", "both"]


async def test_snippets_mark_the_matched_words_around_the_first_match(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, title="Haystack"))
    long = (
        "The quarterly report covers many topics. "
        * 3
        + "Our main finding: the Needle was found under the old oak tree near the river bank, "
        "and nobody expected it. " + "Filler words follow here. " * 5
    )
    await store.append_messages(
        tenant, c.id, [msg("short", "Find the Needle,\n\nthen the needle again."), msg("long", long)]
    )
    hits = {h.message_id: h for h in (await search(store, tenant, "needle")).hits}
    assert hits["short"].snippet == (
        Segment("Find the "),
        Segment("Needle", True),
        Segment(", then the "),
        Segment("needle", True),
        Segment(" again."),
    )
    assert hits["long"].snippet == (
        Segment("\u2026many topics. Our main finding: the "),
        Segment("Needle", True),
        Segment(
            " was found under the old oak tree near the river bank, and nobody expected it. "
            "Filler words follow here. Filler words\u2026"
        ),
    )
    title = (await search(store, tenant, "haystack")).hits[0]
    assert (title.message_id, title.snippet) == (None, (Segment("Haystack", True),))


async def test_unicode_text_is_matched_without_regard_to_case(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, title="Über uns"))
    await store.append_messages(tenant, c.id, [msg("fr", "L'École est fermée"), msg("ja", "日本語 テキスト")])
    assert [h.message_id for h in (await search(store, tenant, "école FERMÉE")).hits] == ["fr"]
    assert [h.message_id for h in (await search(store, tenant, "日本語")).hits] == ["ja"]
    assert [h.title for h in (await search(store, tenant, "über")).hits] == ["Über uns"]


async def test_search_sees_only_the_scope_it_is_given(store: Store, tenant: str) -> None:
    other_tenant = unique("t")
    placed = [
        (tenant, "alice", "w1"),
        (tenant, "alice", "w2"),
        (tenant, "bob", "w1"),
        (other_tenant, "alice", "w1"),
    ]
    ids = {}
    for owner_tenant, user, workspace in placed:
        c = await store.create_conversation(conv(owner_tenant, user=user, workspace=workspace))
        await store.append_messages(owner_tenant, c.id, [msg("m", "the secretword")])
        ids[(owner_tenant, user, workspace)] = c.id

    def conversations(page: SearchPage) -> set[str]:
        return {h.conversation_id for h in page.hits}

    mine = {ids[(tenant, "alice", "w1")], ids[(tenant, "alice", "w2")], ids[(tenant, "bob", "w1")]}
    assert conversations(await search(store, tenant, "secretword")) == mine
    assert conversations(await search(store, tenant, "secretword", user="alice")) == {
        ids[(tenant, "alice", "w1")],
        ids[(tenant, "alice", "w2")],
    }
    assert conversations(
        await search(store, tenant, "secretword", user="alice", allowed_workspaces=frozenset({"w2"}))
    ) == {ids[(tenant, "alice", "w2")]}
    assert conversations(await search(store, tenant, "secretword", workspace="w1")) == {
        ids[(tenant, "alice", "w1")],
        ids[(tenant, "bob", "w1")],
    }
    assert conversations(await search(store, tenant, "secretword", allowed_workspaces=frozenset())) == set()
    assert conversations(await search(store, other_tenant, "secretword")) == {
        ids[(other_tenant, "alice", "w1")]
    }
    assert conversations(await search(store, unique("t"), "secretword")) == set()


async def test_deleted_expired_and_trimmed_text_is_never_found(store: Store, tenant: str) -> None:
    deleted = await store.create_conversation(conv(tenant, title="gone vanished"))
    await store.append_messages(tenant, deleted.id, [msg("d", "vanished words")])
    await store.delete_conversation(tenant, deleted.id)
    expiring = await store.create_conversation(conv(tenant, title="vanished too", ttl_ms=300))
    await store.append_messages(tenant, expiring.id, [msg("e", "vanished as well")])
    trimming = await store.create_conversation(conv(tenant, title="kept"))
    for i, text in enumerate(["vanished first", "second", "third"]):
        await store.append_messages(
            tenant, trimming.id, [msg(f"t{i}", text)], max_messages=2, policy=LimitPolicy.TRIM
        )
    await asyncio.sleep(0.5)
    assert (await search(store, tenant, "vanished")).hits == []
    await store.sweep_expired()
    assert (await search(store, tenant, "vanished")).hits == []
    assert [h.message_id for h in (await search(store, tenant, "third")).hits] == ["t2"]


async def test_changed_titles_and_grown_replies_are_found_as_they_are_now(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, title="Old name"))
    await store.update_conversation(tenant, c.id, ConversationPatch(title="Brand new name"))
    assert (await search(store, tenant, "old")).hits == []
    assert [h.title for h in (await search(store, tenant, "brand")).hits] == ["Brand new name"]
    opening = NewMessage(id="r", role=Role.ASSISTANT, content="Hel", status=MessageStatus.STREAMING)
    await store.append_messages(tenant, c.id, [opening])
    await store.extend_message(tenant, c.id, "r", "lo wonderful world")
    assert [h.message_id for h in (await search(store, tenant, "hello world")).hits] == ["r"]
    assert (await search(store, tenant, "hel")).hits == []


async def test_a_local_conversation_is_found_by_its_title(store: Store, tenant: str) -> None:
    c = await store.create_conversation(replace(conv(tenant, title="Offline notebook"), mode=Mode.LOCAL))
    assert [(h.conversation_id, h.message_id) for h in (await search(store, tenant, "notebook")).hits] == [
        (c.id, None)
    ]


async def test_paging_with_the_cursor_yields_every_hit_once_in_order(store: Store, tenant: str) -> None:
    for n in range(3):
        c = await store.create_conversation(conv(tenant, f"pages-{n}", title=f"pager {n}"))
        await store.append_messages(
            tenant, c.id, [msg(f"m{n}-{i}", "pager " + "word " * (i % 4)) for i in range(9)]
        )
    everything = await search(store, tenant, "pager", limit=100)
    assert len(everything.hits) == 30 and everything.next_cursor is None
    collected: list[SearchHit] = []
    cursor = None
    for _ in range(20):
        page = await search(store, tenant, "pager", limit=7, after=cursor)
        collected += page.hits
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page.hits) == 7
    assert collected == everything.hits
    assert len({(h.conversation_id, h.seq) for h in collected}) == 30


async def test_hostile_queries_are_plain_words(store: Store, tenant: str) -> None:
    c = await store.create_conversation(conv(tenant, title="plain"))
    planted = "a b c or and not near select drop table messages école 日本語 x"
    await store.append_messages(tenant, c.id, [msg("planted", planted)])
    hostile = {
        '"; DROP TABLE messages; --': ["planted"],
        "NEAR(a b)": ["planted"],
        "a* OR b -c NOT and": ["planted"],
        '"a" AND "b"': ["planted"],
        "x:y^z {a} [b]": [],
        "messages_fts MATCH x": [],
        "' OR 1=1 --": [],
        "\\\\ %_ $1 ::regconfig": [],
        "École\u0000日本語": ["planted"],
        "x" * 5000: [],
        "\u202e\U0001f600 a": ["planted"],
    }
    for query, expected in hostile.items():
        page = await search(store, tenant, query)
        assert [h.message_id for h in page.hits] == expected, query
    assert (await store.get_conversation(tenant, c.id)).message_count == 1
