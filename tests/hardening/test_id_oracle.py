"""No id oracle: a user token can neither learn that another user's conversation id exists nor
squat a predictable id. Ids chosen with a user token must be random UUIDs; API keys choose any id."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.api.conftest import Api, auth, running_api
from tests.conftest import unique


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    async with running_api(tmp_path_factory.mktemp("oracle")) as shared:
        yield shared


async def create(api: Api, headers: dict[str, str], cid: str, **fields: object) -> tuple[int, str]:
    body = {"workspace": "w1", "id": cid, **fields}
    response = await api.client.post("/v1/conversations", json=body, headers=headers)
    return response.status_code, response.json().get("code", "")


async def test_a_user_token_cannot_probe_or_squat_readable_ids(api: Api) -> None:
    tenant, key = await api.tenant()
    alice = auth(api.token(tenant, "alice"))
    bob = auth(api.token(tenant, "bob"))
    # The tenant's backend creates a readable id for alice: allowed with the API key.
    assert await create(api, auth(key), "support-2024-001", user="alice") == (201, "")
    # Bob probing that id learns nothing: the answer is the one any readable id gets.
    assert await create(api, bob, "support-2024-001") == (422, "id_not_random")
    assert await create(api, bob, "support-2024-999") == (422, "id_not_random")
    # Nor can bob squat predictable ids before alice uses them.
    assert await create(api, bob, "alice-today") == (422, "id_not_random")
    assert await create(api, alice, "alice-today") == (422, "id_not_random")
    listed = await api.client.get("/v1/conversations", params={"user": "bob"}, headers=auth(key))
    assert listed.json()["items"] == []


@pytest.mark.parametrize(
    "cid",
    [
        str(uuid.uuid4()).upper(),
        str(uuid.uuid1()),
        uuid.uuid4().hex,
        "00000000-0000-4000-8000-000000000000x",
        "00000000-0000-0000-0000-000000000000",
    ],
    ids=["uppercase", "uuid1", "no hyphens", "suffix", "nil"],
)
async def test_only_canonical_random_uuids_are_accepted_from_user_tokens(api: Api, cid: str) -> None:
    tenant, _ = await api.tenant()
    status, code = await create(api, auth(api.token(tenant, unique("u"))), cid)
    assert (status, code) in {(422, "id_not_random"), (422, "invalid_id")}


async def test_random_ids_from_user_tokens_work_and_retry(api: Api) -> None:
    tenant, key = await api.tenant()
    alice = auth(api.token(tenant, "alice"))
    cid = str(uuid.uuid4())
    assert await create(api, alice, cid) == (201, "")
    assert await create(api, alice, cid) == (200, "")
    # The API key sees the whole tenant: it finds alice's conversation by its id.
    found = await api.client.get(f"/v1/conversations/{cid}", headers=auth(key))
    assert found.status_code == 200 and found.json()["user"] == "alice"
    # Without an id, the server picks a random one.
    response = await api.client.post("/v1/conversations", json={"workspace": "w1"}, headers=alice)
    assert response.status_code == 201
    assert uuid.UUID(response.json()["id"]).version == 4


async def test_the_api_key_keeps_choosing_any_id(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, key = await api.tenant()
        assert await create(api, auth(key), "order-42", user="carol") == (201, "")
        assert await create(api, auth(key), "order-42", user="carol") == (200, "")
        assert await create(api, auth(key), "order-42", user="dave") == (409, "conversation_exists")
        carol = auth(api.token(tenant, "carol"))
        own = await api.client.get("/v1/conversations/order-42", headers=carol)
        assert own.status_code == 200
