"""GET /v1/search: scoped exactly as the conversation list, snippets as plain segments, cursors, and
hostile queries that never fail the server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, auth
from tests.conftest import unique


async def find(api: Api, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = await api.client.get("/v1/search", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_search_finds_messages_and_titles_with_marked_snippets(api: Api) -> None:
    tenant, _ = await api.tenant()
    owner = auth(api.token(tenant, "owner"))
    c = await api.conversation(owner, title="Quarterly <b>zebra</b> review")
    [m] = await api.append(owner, c["id"], "The zebra crossed <script>alert(1)</script> the road")
    body = await find(api, owner, q="ZEBRA")
    assert body == {
        "items": [
            {
                "conversation_id": c["id"],
                "workspace": "w1",
                "title": "Quarterly <b>zebra</b> review",
                "message": None,
                "snippet": [
                    {"text": "Quarterly <b>", "match": False},
                    {"text": "zebra", "match": True},
                    {"text": "</b> review", "match": False},
                ],
                "score": 1_000_000 // 15 * 2,
            },
            {
                "conversation_id": c["id"],
                "workspace": "w1",
                "title": "Quarterly <b>zebra</b> review",
                "message": {"id": m["id"], "seq": 1, "role": "user"},
                "snippet": [
                    {"text": "The ", "match": False},
                    {"text": "zebra", "match": True},
                    {"text": " crossed <script>alert(1)</script> the road", "match": False},
                ],
                "score": 1_000_000 // 19,
            },
        ],
        "next_cursor": None,
        "partial": False,
        "partial_modes": [],
    }


async def test_search_covers_every_store_and_pages_with_a_cursor(api: Api) -> None:
    tenant, _ = await api.tenant()
    owner = auth(api.token(tenant, "owner"))
    expected = set()
    for mode in ("durable", "ephemeral", "none"):
        c = await api.conversation(owner, mode=mode)
        for m in await api.append(owner, c["id"], *[f"kiwi number {i}" for i in range(4)]):
            expected.add((c["id"], m["id"]))
    seen: list[tuple[str, str]] = []
    cursor = None
    for _ in range(10):
        params = {"q": "kiwi", "limit": 5, **({"cursor": cursor} if cursor else {})}
        body = await find(api, owner, **params)
        seen += [(h["conversation_id"], h["message"]["id"]) for h in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 12 and set(seen) == expected


async def test_another_tenant_user_or_workspace_finds_nothing(api: Api) -> None:
    tenant, key = await api.tenant()
    word = unique("needle").replace("-", "")
    owner = auth(api.token(tenant, "owner"))
    c = await api.conversation(owner, workspace="private", title=f"title {word}")
    await api.append(owner, c["id"], f"text {word}")
    other_tenant, other_key = await api.tenant()
    intruders = [
        auth(api.token(other_tenant, "owner")),
        auth(other_key),
        auth(api.token(tenant, "mallory")),
        auth(api.token(tenant, "owner", ["public"])),
    ]
    for headers in intruders:
        assert (await find(api, headers, q=word))["items"] == []
    assert (await find(api, auth(key), q=word, user="mallory"))["items"] == []
    assert (await find(api, owner, q=word, user="mallory"))["items"] == []
    assert (await find(api, owner, q=word, workspace="public"))["items"] == []
    assert len((await find(api, auth(key), q=word, user="owner"))["items"]) == 2
    assert len((await find(api, auth(key), q=word))["items"]) == 2
    assert len((await find(api, owner, q=word, workspace="private"))["items"]) == 2


HOSTILE = [
    '"; DROP TABLE messages; --',
    "NEAR(a b) AND c OR NOT d",
    "a* -b +c ^d ~e",
    "((((",
    '"unbalanced',
    "messages_fts MATCH 'x'",
    "' OR 1=1 --",
    "%_\\",
    "x" * 500,
    "日本語 \u202e \U0001f600",
    "\ufeff zero\u200bwidth",
    "col:umn {near} [x]",
]


@pytest.mark.parametrize("q", HOSTILE)
async def test_hostile_queries_are_plain_words_and_never_fail(api: Api, q: str) -> None:
    tenant, _ = await api.tenant()
    owner = auth(api.token(tenant, "owner"))
    c = await api.conversation(owner)
    await api.append(owner, c["id"], "drop table messages near a b c d e x")
    response = await api.client.get("/v1/search", params={"q": q}, headers=owner)
    assert response.status_code == 200, response.text
    assert response.json()["partial"] is False


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": ""}, "invalid_request"),
        ({"q": "   \t"}, "invalid_request"),
        ({}, "invalid_request"),
        ({"q": "x" * 501}, "invalid_request"),
        ({"q": "a\x00b"}, "invalid_request"),
        ({"q": "a", "cursor": "1.2.-bad"}, "invalid_cursor"),
        ({"q": "a", "cursor": "99.0.c" + "x" * 200}, "invalid_request"),
        ({"q": "a", "limit": 0}, "invalid_request"),
        ({"q": "a", "limit": 101}, "invalid_request"),
    ],
)
async def test_bad_queries_are_422_problems(api: Api, params: dict[str, Any], code: str) -> None:
    headers = await api.user()
    response = await api.client.get("/v1/search", params=params, headers=headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def test_a_blank_query_is_refused_by_the_service_too(api: Api) -> None:
    from chatkeep.errors import InvalidInput
    from chatkeep.service.search import SearchService

    tenant, _ = await api.tenant()
    principal = await api.services.authenticate(api.token(tenant, "owner"), None)
    with pytest.raises(InvalidInput) as err:
        await SearchService(api.services.router).search(principal, " \n ")
    assert err.value.code == "invalid_query"
    with pytest.raises(InvalidInput) as err:
        await SearchService(api.services.router).search(principal, "a", cursor="nope")
    assert err.value.code == "invalid_cursor"
