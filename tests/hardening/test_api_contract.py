"""The API does what the README says, or refuses: local conversations have no message pages,
a create that differs from the existing one is a conflict, cleanup never names another user from a
user token, settings updates merge, and the OpenAPI document states the rules the API applies."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from chatkeep.service.cursors import decode_cursor
from tests.api.conftest import Api, auth, running_api


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with running_api(tmp_path_factory.mktemp("contract")) as shared:
        yield shared


async def test_messages_of_a_local_conversation_answer_409_local_only(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers, mode="local")
    url = f"/v1/conversations/{c['id']}/messages"
    for params in ({}, {"before": 5}, {"after": 0, "limit": 10}):
        page = await api.client.get(url, params=params, headers=headers)
        assert (page.status_code, page.json()["code"]) == (409, "local_only")
    append = await api.client.post(url, json={"role": "user", "content": "x"}, headers=headers)
    assert (append.status_code, append.json()["code"]) == (409, "local_only")
    # The record itself is readable.
    assert (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).status_code == 200


async def test_a_create_differing_from_the_stored_one_is_a_conflict(api: Api) -> None:
    tenant, key = await api.tenant()
    alice = auth(api.token(tenant, "alice"))
    cid = str(uuid.uuid4())
    first = await api.conversation(alice, id=cid, mode="durable", title="t")
    for changed in ({"mode": "ephemeral"}, {"mode": "none"}, {"workspace": "w2"}):
        body = {"workspace": "w1", "id": cid, **changed}
        response = await api.client.post("/v1/conversations", json=body, headers=alice)
        assert (response.status_code, response.json()["code"]) == (409, "conversation_exists")
    for same in ({}, {"mode": "durable"}):
        body = {"workspace": "w1", "id": cid, **same}
        response = await api.client.post("/v1/conversations", json=body, headers=alice)
        assert response.status_code == 200 and response.json() == first
    # With the API key: the same id for another user is a different request.
    other = {"workspace": "w1", "id": cid, "user": "bob"}
    assert (await api.client.post("/v1/conversations", json=other, headers=auth(key))).status_code == 409
    listed = await api.client.get("/v1/conversations", headers=auth(key))
    assert [(c["id"], c["mode"], c["user"]) for c in listed.json()["items"]] == [(cid, "durable", "alice")]


async def test_cleanup_naming_another_user_is_forbidden_to_a_user_token(api: Api) -> None:
    tenant, key = await api.tenant()
    alice, bob = auth(api.token(tenant, "alice")), auth(api.token(tenant, "bob"))
    c = await api.conversation(bob, mode="ephemeral")
    for body in (
        {"strategy": "all", "user": "bob"},
        {"strategy": "specific", "ids": [c["id"]], "user": "bob"},
    ):
        response = await api.client.post("/v1/sessions/cleanup", json=body, headers=alice)
        assert (response.status_code, response.json()["code"]) == (403, "user_mismatch")
    assert (await api.client.get(f"/v1/conversations/{c['id']}", headers=bob)).status_code == 200
    own = await api.client.post("/v1/sessions/cleanup", json={"strategy": "all", "user": "bob"}, headers=bob)
    assert own.status_code == 200 and own.json()["deleted"] == [c["id"]]
    # The API key may name any user.
    other = await api.client.post(
        "/v1/sessions/cleanup", json={"strategy": "all", "user": "alice"}, headers=auth(key)
    )
    assert other.status_code == 200


async def test_persistence_settings_updates_merge(api: Api) -> None:
    _, key = await api.tenant()
    admin = auth(key)
    url = "/v1/settings/persistence"
    full = {"default_mode": "ephemeral", "ephemeral_ttl_seconds": 600, "pinned_never_expire": False}
    assert (await api.client.put(url, json=full, headers=admin)).json() == full
    # A field left out keeps its value.
    merged = await api.client.put(url, json={"ephemeral_ttl_seconds": 120}, headers=admin)
    assert merged.status_code == 200
    assert merged.json() == {**full, "ephemeral_ttl_seconds": 120}
    mode_only = await api.client.put(url, json={"default_mode": "durable"}, headers=admin)
    assert mode_only.json() == {**full, "ephemeral_ttl_seconds": 120, "default_mode": "durable"}
    # null restores the server's default; an empty body is refused and changes nothing.
    reset = await api.client.put(url, json={"pinned_never_expire": None}, headers=admin)
    assert reset.json()["pinned_never_expire"] is True
    empty = await api.client.put(url, json={}, headers=admin)
    assert (empty.status_code, empty.json()["code"]) == (422, "empty_patch")
    null_mode = await api.client.put(url, json={"default_mode": None}, headers=admin)
    assert null_mode.status_code == 422
    after = (await api.client.get(url, headers=admin)).json()
    assert after == {"default_mode": "durable", "ephemeral_ttl_seconds": 120, "pinned_never_expire": True}


def _parameter(operation: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = next(p for p in operation["parameters"] if p["name"].lower() == name.lower())
    return found


async def test_the_openapi_document_states_the_rules(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    paths, schemas = document["paths"], document["components"]["schemas"]
    listing = paths["/v1/conversations"]["get"]
    cursor = _parameter(listing, "cursor")["schema"]
    assert "pattern" in cursor
    # Every cursor the pattern admits is accepted, and what the API issues matches it.
    for token in ("0.0.a", "1.1733356000000.c-42", "0.999999999999999999.x.y@z"):
        decode_cursor(token)
    assert "\\x00" in _parameter(listing, "q")["schema"]["pattern"]
    for model, field in (
        ("ConversationCreate", "title"),
        ("MessageCreate", "content"),
        ("DeltaCreate", "text"),
    ):
        assert schemas[model]["properties"][field]["pattern"] == "^[^\\x00]*$", (model, field)
    assert "JSONValue" in schemas
    patch = paths["/v1/conversations/{conversation_id}"]["patch"]
    assert {"412", "428"} <= set(patch["responses"])
    assert _parameter(patch, "If-Match")["required"] is True
    assert "409" in paths["/v1/conversations/{conversation_id}/messages"]["get"]["responses"]
    put = paths["/v1/settings/persistence"]["put"]
    body_ref = put["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert schemas[body_ref].get("minProperties") == 1 and "required" not in schemas[body_ref]


async def test_cursors_the_api_issues_page_through_everything(api: Api) -> None:
    headers = await api.user()
    ids = {(await api.conversation(headers))["id"] for _ in range(7)}
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor is not None else {})}
        page = (await api.client.get("/v1/conversations", params=params, headers=headers)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids)
    empty = await api.client.get("/v1/conversations", params={"cursor": ""}, headers=headers)
    assert (empty.status_code, empty.json()["code"]) == (422, "invalid_cursor")


async def test_a_message_id_sent_again_with_other_content_is_409_with_the_stored_message(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    url = f"/v1/conversations/{c['id']}/messages"
    body = {"id": "m-1", "role": "user", "content": "hello", "metadata": {"lang": "en"}}
    created = await api.client.post(url, json=body, headers=headers)
    assert created.status_code == 201
    stored = created.json()
    assert (await api.client.post(url, json=body, headers=headers)).json() == stored
    for change in ({"content": "bye"}, {"role": "assistant"}, {"metadata": None}, {"parts": [1]}):
        response = await api.client.post(url, json={**body, **change}, headers=headers)
        assert response.status_code == 409, change
        problem = response.json()
        assert problem["code"] == "message_id_conflict" and problem["message"] == stored
        batch = {"messages": [{"id": "m-2", "role": "user", "content": "new"}, {**body, **change}]}
        refused = await api.client.post(f"{url}:batch", json=batch, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (409, "message_id_conflict")
    page = (await api.client.get(url, headers=headers)).json()
    assert [m["id"] for m in page["messages"]] == ["m-1"]  # the refused batches stored nothing
    replay = await api.client.post(url, json=body, headers=headers)
    assert (replay.status_code, replay.json()) == (200, stored)
