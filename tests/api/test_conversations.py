"""REST: /v1/conversations — create, list, reload read, update with If-Match, delete."""

from __future__ import annotations

import asyncio
import uuid

from tests.api.conftest import Api, auth


async def test_create_answers_201_with_etag_location_and_defaults(api: Api) -> None:
    headers = await api.user()
    response = await api.client.post(
        "/v1/conversations",
        json={"workspace": "docs", "title": "Plans", "tags": ["a", "b", "a"]},
        headers=headers,
    )
    assert response.status_code == 201
    body = response.json()
    uuid.UUID(body["id"])  # generated when not given
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/v1/conversations/{body['id']}"
    assert body["workspace"] == "docs" and body["title"] == "Plans" and body["tags"] == ["a", "b"]
    assert body["mode"] == "durable" and body["version"] == 1 and body["message_count"] == 0
    assert body["usage"] == {"input_tokens": 0, "output_tokens": 0}
    assert body["created_at"].endswith("Z") and body["expires_at"] is None


async def test_retrying_a_create_returns_the_existing_conversation(api: Api) -> None:
    headers = await api.user()
    cid = str(uuid.uuid4())
    first = await api.conversation(headers, id=cid, title="first")
    retry = await api.client.post(
        "/v1/conversations", json={"workspace": "w1", "id": cid, "title": "second"}, headers=headers
    )
    assert retry.status_code == 200
    assert retry.json() == first


async def test_an_id_taken_by_another_user_is_a_conflict(api: Api) -> None:
    tenant, _ = await api.tenant()
    alice, bob = auth(api.token(tenant, "alice")), auth(api.token(tenant, "bob"))
    cid = str(uuid.uuid4())
    await api.conversation(alice, id=cid, title="alice's")
    response = await api.client.post("/v1/conversations", json={"workspace": "w1", "id": cid}, headers=bob)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "conversation_exists"
    assert "alice" not in response.text


async def test_tenant_key_creates_for_a_named_user(api: Api) -> None:
    tenant, key = await api.tenant()
    missing = await api.client.post("/v1/conversations", json={"workspace": "w1"}, headers=auth(key))
    assert (missing.status_code, missing.json()["code"]) == (422, "user_required")
    created = await api.conversation(auth(key), user="carol")
    assert created["user"] == "carol"
    listed = await api.client.get("/v1/conversations", headers=auth(api.token(tenant, "carol")))
    assert [c["id"] for c in listed.json()["items"]] == [created["id"]]


async def test_user_token_cannot_create_for_others_or_outside_its_workspaces(api: Api) -> None:
    tenant, _ = await api.tenant()
    headers = auth(api.token(tenant, "dave", ["allowed"]))
    other_user = await api.client.post(
        "/v1/conversations", json={"workspace": "allowed", "user": "eve"}, headers=headers
    )
    assert (other_user.status_code, other_user.json()["code"]) == (403, "user_mismatch")
    other_ws = await api.client.post("/v1/conversations", json={"workspace": "elsewhere"}, headers=headers)
    assert (other_ws.status_code, other_ws.json()["code"]) == (403, "workspace_forbidden")
    ok = await api.client.post("/v1/conversations", json={"workspace": "allowed"}, headers=headers)
    assert ok.status_code == 201


async def test_reload_read_returns_latest_messages_oldest_first(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    await api.append(headers, c["id"], *[f"message {i}" for i in range(1, 61)])

    default = (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).json()
    assert [m["seq"] for m in default["messages"]] == list(range(11, 61))
    assert default["has_more_messages"] is True
    assert default["message_count"] == 60 and default["last_seq"] == 60
    assert default["last_message_preview"] == "message 60"

    few = await api.client.get(f"/v1/conversations/{c['id']}?messages=3", headers=headers)
    assert [m["content"] for m in few.json()["messages"]] == ["message 58", "message 59", "message 60"]
    assert few.headers["etag"] == '"1"'
    none = (await api.client.get(f"/v1/conversations/{c['id']}?messages=0", headers=headers)).json()
    assert none["messages"] == [] and none["has_more_messages"] is True


async def test_list_order_filters_and_cursor_pages(api: Api) -> None:
    headers = await api.user()
    ids = []
    for i in range(7):
        ids.append(
            (await api.conversation(headers, title=f"Chat {i}", tags=["even"] if i % 2 == 0 else []))["id"]
        )
        await asyncio.sleep(0.003)
    await api.conversation(headers, title="Other workspace", workspace="w2")
    pinned = (
        await api.client.patch(
            f"/v1/conversations/{ids[2]}", json={"pinned": True}, headers={**headers, "If-Match": "1"}
        )
    ).json()
    assert pinned["pinned"] is True

    seen: list[str] = []
    cursor = None
    while True:
        params = {"workspace": "w1", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.client.get("/v1/conversations", params=params, headers=headers)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids[2], ids[6], ids[5], ids[4], ids[3], ids[1], ids[0]]

    async def titles(**params: object) -> set[str]:
        body = (await api.client.get("/v1/conversations", params=params, headers=headers)).json()
        return {c["title"] for c in body["items"]}

    assert await titles(tag="even", workspace="w1") == {"Chat 0", "Chat 2", "Chat 4", "Chat 6"}
    assert await titles(pinned="true") == {"Chat 2"}
    assert await titles(q="other") == {"Other workspace"}
    assert await titles(q="chat 5") == {"Chat 5"}
    assert await titles(starred="true") == set()
    assert len(await titles(archived="false")) == 8


async def test_a_bad_cursor_is_a_clear_error(api: Api) -> None:
    headers = await api.user()
    for cursor in ("garbage", "eyJ4IjoxfQ", "W1swXSwxLCJ4Il0"):
        response = await api.client.get("/v1/conversations", params={"cursor": cursor}, headers=headers)
        assert response.status_code == 422
        assert response.json()["code"] == "invalid_cursor"


async def test_patch_needs_if_match_and_refuses_a_stale_version(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers, title="Original")
    url = f"/v1/conversations/{c['id']}"

    missing = await api.client.patch(url, json={"title": "x"}, headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (428, "if_match_required")

    ok = await api.client.patch(
        url, json={"title": "Renamed", "tags": ["t1"]}, headers={**headers, "If-Match": '"1"'}
    )
    assert ok.status_code == 200
    assert ok.headers["etag"] == '"2"'
    assert (ok.json()["title"], ok.json()["tags"], ok.json()["version"]) == ("Renamed", ["t1"], 2)

    stale = await api.client.patch(url, json={"title": "Lost"}, headers={**headers, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert stale.json()["code"] == "version_mismatch" and stale.json()["current_version"] == 2
    assert stale.headers["etag"] == '"2"'

    weak = await api.client.patch(url, json={"archived": True}, headers={**headers, "If-Match": 'W/"2"'})
    assert weak.status_code == 200 and weak.json()["version"] == 3
    forced = await api.client.patch(url, json={"starred": True}, headers={**headers, "If-Match": "*"})
    assert forced.status_code == 200 and forced.json()["version"] == 4

    bad = await api.client.patch(url, json={"starred": True}, headers={**headers, "If-Match": "banana"})
    assert (bad.status_code, bad.json()["code"]) == (422, "invalid_request")
    empty = await api.client.patch(url, json={}, headers={**headers, "If-Match": "4"})
    assert (empty.status_code, empty.json()["code"]) == (422, "empty_patch")

    final = (await api.client.get(url, headers=headers)).json()
    assert (final["title"], final["archived"], final["starred"], final["version"]) == (
        "Renamed",
        True,
        True,
        4,
    )


async def test_two_windows_editing_at_once_cannot_both_win(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    url = f"/v1/conversations/{c['id']}"
    results = await asyncio.gather(
        *(
            api.client.patch(url, json={"title": f"window {i}"}, headers={**headers, "If-Match": "1"})
            for i in range(5)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 412, 412, 412, 412]
    winner = next(r.json()["title"] for r in results if r.status_code == 200)
    assert (await api.client.get(url, headers=headers)).json()["title"] == winner


async def test_delete_then_everything_answers_404(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    await api.append(headers, c["id"], "hello")
    url = f"/v1/conversations/{c['id']}"
    assert (await api.client.delete(url, headers=headers)).status_code == 204
    for method, path in (("GET", url), ("DELETE", url), ("GET", f"{url}/messages")):
        response = await api.client.request(method, path, headers=headers)
        assert (response.status_code, response.json()["code"]) == (404, "not_found")
    listed = (await api.client.get("/v1/conversations", headers=headers)).json()
    assert listed["items"] == []


async def test_unknown_routes_and_methods_are_problems(api: Api) -> None:
    headers = await api.user()
    missing = await api.client.get("/v1/nothing-here", headers=headers)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"
    wrong = await api.client.put("/v1/conversations", headers=headers)
    assert wrong.status_code == 405 and wrong.json()["code"] == "method_not_allowed"
