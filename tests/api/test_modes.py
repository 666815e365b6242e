"""Persistence modes: where each conversation lives, the tenant's default, immutability, pinning."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import redis.asyncio as aioredis

from chatkeep.errors import NotFound
from chatkeep.models import Mode
from tests import services
from tests.api.conftest import Api, auth, running_api


async def keys_of(conversation_id: str) -> list[str]:
    client = aioredis.Redis.from_url(services.REDIS_URL, decode_responses=True)
    try:
        return [key async for key in client.scan_iter(match=f"*{conversation_id}*")]
    finally:
        await client.aclose()


async def test_each_mode_lives_in_its_own_store_in_one_deployment(tmp_path: Path, redis_url: str) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_url) as api:
        tenant, _ = await api.tenant()
        headers = auth(api.token(tenant, "ann"))
        made = {mode: await api.conversation(headers, mode=mode.value, title=mode.value) for mode in Mode}
        assert all(made[mode]["mode"] == mode.value for mode in Mode)

        router = api.services.router
        home = {Mode.DURABLE: router.durable, Mode.LOCAL: router.durable,
                Mode.EPHEMERAL: router.ephemeral, Mode.NONE: router.transient}  # fmt: skip
        for mode, conversation in made.items():
            for store in router.stores:
                try:
                    await store.get_conversation(tenant.id, conversation["id"])
                    found = True
                except NotFound:
                    found = False
                assert found == (store is home[mode]), (mode, store)
        assert await keys_of(made[Mode.EPHEMERAL]["id"])  # really in Redis
        assert not await keys_of(made[Mode.DURABLE]["id"])

        for mode in (Mode.DURABLE, Mode.EPHEMERAL, Mode.NONE):
            messages = await api.append(headers, made[mode]["id"], "hello", "world")
            assert [m["seq"] for m in messages] == [1, 2]
            reloaded = (await api.client.get(f"/v1/conversations/{made[mode]['id']}", headers=headers)).json()
            assert [m["content"] for m in reloaded["messages"]] == ["hello", "world"]
        local = await api.client.post(
            f"/v1/conversations/{made[Mode.LOCAL]['id']}/messages",
            json={"role": "user", "content": "x"},
            headers=headers,
        )
        assert (local.status_code, local.json()["code"]) == (409, "local_only")

        listed = (await api.client.get("/v1/conversations", headers=headers)).json()["items"]
        assert sorted(c["mode"] for c in listed) == sorted(m.value for m in Mode)
        assert [c["title"] for c in listed][:3] == ["none", "ephemeral", "durable"]  # latest activity first
        assert made[Mode.EPHEMERAL]["expires_at"] is not None and made[Mode.NONE]["expires_at"] is not None
        assert made[Mode.DURABLE]["expires_at"] is None and made[Mode.LOCAL]["expires_at"] is None


async def test_lists_page_across_stores_in_one_order(tmp_path: Path, redis_url: str) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_url) as api:
        headers = await api.user()
        made = []
        for i in range(12):
            made.append((await api.conversation(headers, mode=("durable", "ephemeral", "none")[i % 3]))["id"])
            await asyncio.sleep(0.003)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 5, **({"cursor": cursor} if cursor else {})}
            page = (await api.client.get("/v1/conversations", params=params, headers=headers)).json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(made))


async def test_the_tenant_default_applies_to_new_conversations_only(tmp_path: Path, redis_url: str) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_url) as api:
        tenant, key = await api.tenant()
        admin, user = auth(key), auth(api.token(tenant, "ann"))
        before = await api.conversation(user)
        assert before["mode"] == "durable"

        settings = await api.client.get("/v1/settings/persistence", headers=admin)
        assert settings.json() == {
            "default_mode": "durable",
            "ephemeral_ttl_seconds": 604800,
            "pinned_never_expire": True,
        }
        put = await api.client.put(
            "/v1/settings/persistence",
            json={"default_mode": "ephemeral", "ephemeral_ttl_seconds": 3600},
            headers=admin,
        )
        assert put.json() == {
            "default_mode": "ephemeral",
            "ephemeral_ttl_seconds": 3600,
            "pinned_never_expire": True,
        }

        after = await api.conversation(user)
        assert after["mode"] == "ephemeral" and after["expires_at"] is not None
        reloaded = (await api.client.get(f"/v1/conversations/{before['id']}", headers=user)).json()
        assert reloaded["mode"] == "durable"  # unchanged by the new default

        forbidden = await api.client.put(
            "/v1/settings/persistence", json={"default_mode": "none"}, headers=user
        )
        assert (forbidden.status_code, forbidden.json()["code"]) == (403, "tenant_key_required")
        assert (await api.client.get("/v1/settings/persistence", headers=user)).status_code == 403


async def test_a_mode_cannot_be_changed(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    url = f"/v1/conversations/{c['id']}"
    changed = await api.client.patch(url, json={"mode": "ephemeral"}, headers={**headers, "If-Match": "1"})
    assert changed.status_code == 409
    assert (changed.json()["code"], changed.json()["mode"]) == ("persistence_immutable", "durable")
    with_title = await api.client.patch(
        url, json={"mode": "none", "title": "x"}, headers={**headers, "If-Match": "1"}
    )
    assert with_title.status_code == 409
    same = await api.client.patch(
        url, json={"mode": "durable", "title": "kept"}, headers={**headers, "If-Match": "1"}
    )
    assert same.status_code == 200 and same.json()["mode"] == "durable" and same.json()["title"] == "kept"
    assert (await api.client.get(url, headers=headers)).json()["version"] == 2


async def test_pinning_lifts_the_expiry_and_unpinning_restores_it(tmp_path: Path, redis_url: str) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_url) as api:
        headers = await api.user()
        c = await api.conversation(headers, mode="ephemeral")
        url = f"/v1/conversations/{c['id']}"
        pinned = (
            await api.client.patch(url, json={"pinned": True}, headers={**headers, "If-Match": "*"})
        ).json()
        assert pinned["pinned"] and pinned["expires_at"] is None
        client = aioredis.Redis.from_url(services.REDIS_URL, decode_responses=True)
        ttls = [await client.pttl(key) for key in await keys_of(c["id"])]
        assert ttls and all(t == -1 for t in ttls)  # no expiry on any key
        unpinned = (
            await api.client.patch(url, json={"pinned": False}, headers={**headers, "If-Match": "*"})
        ).json()
        assert unpinned["expires_at"] is not None
        ttls = [await client.pttl(key) for key in await keys_of(c["id"])]
        assert ttls and all(t > 0 for t in ttls)
        await client.aclose()
        born_pinned = await api.conversation(headers, mode="ephemeral", pinned=True)
        assert born_pinned["expires_at"] is None


async def test_an_id_is_unique_across_stores(tmp_path: Path, redis_url: str) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_url) as api:
        tenant, _ = await api.tenant()
        ann, bob = auth(api.token(tenant, "ann")), auth(api.token(tenant, "bob"))
        cid = str(uuid.uuid4())
        await api.conversation(ann, id=cid, mode="durable")
        clash = await api.client.post(
            "/v1/conversations", json={"workspace": "w1", "id": cid, "mode": "ephemeral"}, headers=bob
        )
        assert (clash.status_code, clash.json()["code"]) == (409, "conversation_exists")
        other_mode = await api.client.post(
            "/v1/conversations", json={"workspace": "w1", "id": cid, "mode": "ephemeral"}, headers=ann
        )
        assert (other_mode.status_code, other_mode.json()["code"]) == (409, "conversation_exists")
        retry = await api.client.post("/v1/conversations", json={"workspace": "w1", "id": cid}, headers=ann)
        assert retry.status_code == 200 and retry.json()["mode"] == "durable"  # the existing one
