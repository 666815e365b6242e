"""POST /v1/sessions/cleanup: strategies all, inactive and specific; the sendBeacon form."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from tests.api.conftest import Api, auth, running_api


async def ids(api: Api, headers: dict[str, str]) -> set[str]:
    return {
        c["id"]
        for c in (await api.client.get("/v1/conversations?limit=200", headers=headers)).json()["items"]
    }


async def clean(api: Api, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    answer = await api.client.post("/v1/sessions/cleanup", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    assert result["count"] == len(result["deleted"])
    return result


async def test_inactive_deletes_exactly_the_callers_idle_sessions(tmp_path: Path, redis_url: str) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_url) as api:
        tenant, _ = await api.tenant()
        ann, bob = auth(api.token(tenant, "ann")), auth(api.token(tenant, "bob"))
        ann_idle = {(await api.conversation(ann, mode=m))["id"] for m in ("ephemeral", "ephemeral", "none")}
        ann_kept_durable = (await api.conversation(ann, mode="durable"))["id"]
        bob_idle = {(await api.conversation(bob, mode="ephemeral"))["id"] for _ in range(2)}
        await asyncio.sleep(1.2)
        ann_active = (await api.conversation(ann, mode="ephemeral"))["id"]
        touched = sorted(ann_idle)[0]
        assert (
            await api.client.post(f"/v1/conversations/{touched}/heartbeat", headers=ann)
        ).status_code == 200

        result = await clean(api, ann, strategy="inactive", idle_seconds=1)
        assert set(result["deleted"]) == ann_idle - {touched}
        assert await ids(api, ann) == {touched, ann_active, ann_kept_durable}
        assert await ids(api, bob) == bob_idle


async def test_all_takes_sessions_unless_told_otherwise(tmp_path: Path, redis_url: str) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_url) as api:
        tenant, _ = await api.tenant()
        ann, bob = auth(api.token(tenant, "ann")), auth(api.token(tenant, "bob"))
        sessions = {(await api.conversation(ann, mode=m))["id"] for m in ("ephemeral", "none")}
        durable = {(await api.conversation(ann, mode=m))["id"] for m in ("durable", "local")}
        other_ws = (await api.conversation(ann, mode="ephemeral", workspace="w2"))["id"]
        bobs = {(await api.conversation(bob, mode="ephemeral"))["id"]}

        assert set((await clean(api, ann, strategy="all", workspace="w1"))["deleted"]) == sessions
        assert await ids(api, ann) == durable | {other_ws}
        assert set(
            (await clean(api, ann, strategy="all", modes=["durable", "local", "ephemeral"]))["deleted"]
        ) == durable | {other_ws}
        assert await ids(api, ann) == set()
        assert await ids(api, bob) == bobs


async def test_specific_deletes_only_what_the_caller_owns(api: Api) -> None:
    tenant, key = await api.tenant()
    ann, bob = auth(api.token(tenant, "ann")), auth(api.token(tenant, "bob"))
    mine = [(await api.conversation(ann))["id"] for _ in range(2)]
    theirs = (await api.conversation(bob))["id"]
    result = await clean(api, ann, strategy="specific", ids=[*mine, theirs, "never-existed"])
    assert sorted(result["deleted"]) == sorted(mine)
    assert await ids(api, bob) == {theirs}
    assert (await clean(api, ann, strategy="specific", ids=[]))["count"] == 0
    # a tenant key may clean any user's sessions, or every user's
    assert (await clean(api, auth(key), strategy="specific", ids=[theirs]))["deleted"] == [theirs]


async def test_a_tenant_key_cleans_one_user_or_all(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, key = await api.tenant()
        ann, bob = auth(api.token(tenant, "ann")), auth(api.token(tenant, "bob"))
        anns = {(await api.conversation(ann, mode="ephemeral"))["id"] for _ in range(2)}
        bobs = {(await api.conversation(bob, mode="ephemeral"))["id"] for _ in range(2)}
        assert set((await clean(api, auth(key), strategy="all", user="ann"))["deleted"]) == anns
        assert await ids(api, bob) == bobs
        assert set((await clean(api, auth(key), strategy="all"))["deleted"]) == bobs


async def test_a_closing_page_can_clean_up_with_send_beacon(api: Api) -> None:
    tenant, _ = await api.tenant()
    token = api.token(tenant, "ann")
    c = (await api.conversation(auth(token), mode="ephemeral"))["id"]
    beacon = json.dumps({"token": token, "strategy": "specific", "ids": [c]})
    answer = await api.client.post(
        "/v1/sessions/cleanup", content=beacon, headers={"Content-Type": "text/plain;charset=UTF-8"}
    )
    assert answer.status_code == 200 and answer.json()["deleted"] == [c]

    cases = [
        ({"Content-Type": "text/plain"}, json.dumps({"strategy": "all"}), 401, "unauthenticated"),
        (
            {"Content-Type": "text/plain"},
            json.dumps({"strategy": "all", "token": "forged"}),
            401,
            "invalid_token",
        ),
        ({"Content-Type": "application/xml"}, "<x/>", 415, "unsupported_media_type"),
        ({"Content-Type": "text/plain"}, "{not json", 400, "invalid_json"),
        (
            {"Content-Type": "text/plain"},
            json.dumps({"strategy": "everything", "token": token}),
            422,
            "invalid_request",
        ),
        (
            {"Content-Type": "text/plain"},
            json.dumps({"strategy": "all", "token": token, "extra": 1}),
            422,
            "invalid_request",
        ),
    ]
    for headers, body, status, code in cases:
        refused = await api.client.post("/v1/sessions/cleanup", content=body, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (status, code), body
