"""Memory-backed data is bounded: `none` conversations and `ephemeral` ones without Redis count
against a byte budget per tenant and per process; past it writes answer 507 storage_full and change
nothing, and /metrics shows the bytes held."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from chatkeep.models import Conversation, LimitPolicy, Mode, NewMessage, Role
from chatkeep.stores.budget import ByteBudget
from chatkeep.stores.memory import MemoryStore
from tests.api.conftest import Api, auth, running_api
from tests.conftest import report, unique

KIB = 1024
PIECE = "x" * (60 * KIB)  # one 60 KB message, as in the report that found the gap


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, name
    return float(found.group(1))


async def fill(api: Api, headers: dict[str, str], cid: str, tries: int) -> tuple[list[int], dict[str, Any]]:
    """Append 60 KB messages one at a time; the statuses, and the first refusal's body."""
    statuses: list[int] = []
    refusal: dict[str, Any] = {}
    for _ in range(tries):
        body = {"id": unique("m"), "role": "user", "content": PIECE}
        response = await api.client.post(f"/v1/conversations/{cid}/messages", json=body, headers=headers)
        statuses.append(response.status_code)
        if response.status_code != 201 and not refusal:
            refusal = response.json()
    return statuses, refusal


@pytest.mark.parametrize("mode", ["none", "ephemeral"])
async def test_a_tenant_cannot_hold_more_than_its_budget(tmp_path: Path, mode: str) -> None:
    budgets = {"memory_max_tenant_bytes": 1024 * KIB, "memory_max_bytes": 1536 * KIB}
    async with running_api(tmp_path, **budgets) as api:
        tenant, _ = await api.tenant()
        headers = auth(api.token(tenant, "flooder"))
        c = await api.conversation(headers, mode=mode)
        statuses, refusal = await fill(api, headers, c["id"], tries=40)
        stored = statuses.count(201)
        # 1 MiB holds 16 messages of 60 KB (plus their overhead and the record), not 17.
        assert statuses == [201] * 16 + [507] * 24
        assert refusal["code"] == "storage_full" and refusal["status"] == 507
        assert refusal["type"] == "urn:chatkeep:problem:storage_full"

        # The refused writes changed nothing.
        after = (await api.client.get(f"/v1/conversations/{c['id']}?messages=0", headers=headers)).json()
        assert (after["message_count"], after["last_seq"]) == (stored, stored)
        held = metric((await api.client.get("/metrics")).text, "chatkeep_memory_bytes_held")
        assert stored * len(PIECE) < held <= budgets["memory_max_tenant_bytes"]
        report(f"memory budget ({mode}): {stored} x 60 KB stored, then 507; {int(held)} bytes held")

        # Other tenants still write, until the process budget is used up.
        other_tenant, _ = await api.tenant()
        other = auth(api.token(other_tenant, "neighbour"))
        o = await api.conversation(other, mode=mode)
        other_statuses, _ = await fill(api, other, o["id"], tries=16)
        assert 0 < other_statuses.count(201) < 16 and other_statuses[-1] == 507
        assert metric((await api.client.get("/metrics")).text, "chatkeep_memory_bytes_held") <= 1536 * KIB

        # Deleting gives the bytes back.
        assert (await api.client.delete(f"/v1/conversations/{c['id']}", headers=headers)).status_code == 204
        assert (await api.client.delete(f"/v1/conversations/{o['id']}", headers=other)).status_code == 204
        assert metric((await api.client.get("/metrics")).text, "chatkeep_memory_bytes_held") == 0
        again = await api.conversation(headers, mode=mode)
        assert (await fill(api, headers, again["id"], tries=3))[0] == [201] * 3


async def test_concurrent_writers_never_pass_the_budget(tmp_path: Path) -> None:
    budget = 2048 * KIB
    async with running_api(tmp_path, memory_max_tenant_bytes=budget, memory_max_bytes=budget) as api:
        tenant, _ = await api.tenant()
        headers = auth(api.token(tenant, "many"))
        conversations = [(await api.conversation(headers, mode="none"))["id"] for _ in range(8)]
        results = await asyncio.gather(*(fill(api, headers, cid, tries=10) for cid in conversations))
        statuses = [s for r in results for s in r[0]]
        assert set(statuses) == {201, 507}
        held = metric((await api.client.get("/metrics")).text, "chatkeep_memory_bytes_held")
        assert held <= budget
        counts = 0
        for cid in conversations:
            page = await api.client.get(f"/v1/conversations/{cid}?messages=0", headers=headers)
            counts += page.json()["message_count"]
        assert counts == statuses.count(201)
        report(
            f"memory budget, 8 concurrent writers: {counts} stored, "
            f"{statuses.count(507)} refused, {int(held)} bytes held"
        )


async def test_durable_conversations_are_not_counted(tmp_path: Path) -> None:
    async with running_api(tmp_path, memory_max_tenant_bytes=256 * KIB) as api:
        headers = await api.user()
        c = await api.conversation(headers, mode="durable")
        statuses, _ = await fill(api, headers, c["id"], tries=8)
        assert statuses == [201] * 8
        assert metric((await api.client.get("/metrics")).text, "chatkeep_memory_bytes_held") == 0


async def test_every_removal_gives_its_bytes_back() -> None:
    """Trimming, sweeping, forgetting and deleting return the budget to exactly zero."""
    now = [1_000_000]
    budget = ByteBudget(max_bytes=10**6, max_tenant_bytes=10**6)
    store = MemoryStore(clock=lambda: now[0], budget=budget)
    kept = await store.create_conversation(
        Conversation(tenant="t", id="kept", workspace="w", user="u", mode=Mode.NONE)
    )
    short = await store.create_conversation(
        Conversation(tenant="t", id="short", workspace="w", user="u", mode=Mode.NONE, ttl_ms=1_000)
    )
    for i in range(6):
        batch = [NewMessage(id=f"m{i}", role=Role.USER, content="y" * 1000)]
        await store.append_messages("t", kept.id, batch, max_messages=3, policy=LimitPolicy.TRIM)
        await store.append_messages("t", short.id, batch)
    trimmed_held = budget.held
    now[0] += 2_000
    assert [e.id for e in await store.sweep_expired(keep_ms=0)] == ["short"]
    assert budget.held < trimmed_held
    await store.sweep_expired(keep_ms=0)  # forgets the tombstone
    await store.delete_conversation("t", kept.id)
    assert budget.held == 0 and budget.held_by("t") == 0
