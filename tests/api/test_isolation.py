"""Isolation: another tenant's or another user's conversation answers 404 on every endpoint,
leaks nothing in the answer, and is left exactly as it was."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.conftest import Api, auth

SECRET_TITLE = "secret-title-6f1c"
SECRET_TEXT = "secret-message-a93e"

# (method, path template, body, extra headers) for every endpoint that addresses a conversation.
ENDPOINTS: list[tuple[str, str, Any, dict[str, str]]] = [
    ("GET", "/v1/conversations/{id}", None, {}),
    ("GET", "/v1/conversations/{id}?messages=5", None, {}),
    ("PATCH", "/v1/conversations/{id}", {"title": "hijacked"}, {"If-Match": "*"}),
    ("DELETE", "/v1/conversations/{id}", None, {}),
    ("POST", "/v1/conversations/{id}/messages", {"role": "user", "content": "injected"}, {}),
    (
        "POST",
        "/v1/conversations/{id}/messages:batch",
        {"messages": [{"role": "user", "content": "injected"}]},
        {},
    ),
    (
        "POST",
        "/v1/conversations/{id}/messages/batch",
        {"messages": [{"role": "user", "content": "injected"}]},
        {},
    ),
    ("GET", "/v1/conversations/{id}/messages", None, {}),
    ("GET", "/v1/conversations/{id}/messages?after=0", None, {}),
]
INTRUDERS = ["other-tenant-user", "other-tenant-key", "same-tenant-other-user", "same-user-other-workspace"]


@pytest.fixture
async def victim(api: Api) -> dict[str, Any]:
    tenant, key = await api.tenant()
    owner = auth(api.token(tenant, "owner"))
    conversation = await api.conversation(owner, workspace="private", title=SECRET_TITLE, tags=["t"])
    await api.append(owner, conversation["id"], SECRET_TEXT)
    other_tenant, other_key = await api.tenant()
    intruders = {
        "other-tenant-user": auth(api.token(other_tenant, "owner")),  # same user name, other tenant
        "other-tenant-key": auth(other_key),
        "same-tenant-other-user": auth(api.token(tenant, "mallory")),
        "same-user-other-workspace": auth(api.token(tenant, "owner", ["public"])),
    }
    snapshot = (await api.client.get(f"/v1/conversations/{conversation['id']}", headers=owner)).json()
    return {
        "id": conversation["id"],
        "owner": owner,
        "intruders": intruders,
        "snapshot": snapshot,
        "key": key,
    }


@pytest.mark.parametrize("intruder", INTRUDERS)
@pytest.mark.parametrize(("method", "path", "body", "extra"), ENDPOINTS)
async def test_every_endpoint_answers_404_to_intruders_and_changes_nothing(
    api: Api, victim: dict[str, Any], intruder: str, method: str, path: str, body: Any, extra: dict[str, str]
) -> None:
    headers = {**victim["intruders"][intruder], **extra}
    response = await api.client.request(method, path.format(id=victim["id"]), json=body, headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
    assert SECRET_TITLE not in response.text and SECRET_TEXT not in response.text
    after = (await api.client.get(f"/v1/conversations/{victim['id']}", headers=victim["owner"])).json()
    assert after == victim["snapshot"]


@pytest.mark.parametrize("intruder", INTRUDERS)
async def test_lists_never_show_other_peoples_conversations(
    api: Api, victim: dict[str, Any], intruder: str
) -> None:
    headers = victim["intruders"][intruder]
    for params in ({}, {"workspace": "private"}, {"user": "owner"}, {"tag": "t"}, {"q": "secret"}):
        response = await api.client.get("/v1/conversations", params=params, headers=headers)
        assert response.status_code == 200
        assert response.json()["items"] == []
        assert SECRET_TITLE not in response.text


async def test_the_owner_and_the_tenant_key_do_see_it(api: Api, victim: dict[str, Any]) -> None:
    for headers in (victim["owner"], auth(victim["key"])):
        response = await api.client.get(f"/v1/conversations/{victim['id']}", headers=headers)
        assert response.status_code == 200 and response.json()["title"] == SECRET_TITLE
        assert [m["content"] for m in response.json()["messages"]] == [SECRET_TEXT]
    listed = await api.client.get("/v1/conversations", params={"user": "owner"}, headers=auth(victim["key"]))
    assert [c["id"] for c in listed.json()["items"]] == [victim["id"]]
