"""A Redis outage mid-traffic loses no acknowledged write and duplicates none (fallback), or
refuses writes with 503 (refuse); /readyz and /metrics show the degraded mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.api.conftest import Api, running_api
from tests.conftest import report
from tests.outage.conftest import all_messages, wait_for
from tests.redis_servers import RedisProcess


async def test_stopping_redis_mid_traffic_loses_and_duplicates_nothing(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_server.url) as api:
        headers = await api.user()
        conversations = [(await api.conversation(headers, mode="ephemeral"))["id"] for _ in range(4)]
        acknowledged: dict[str, set[str]] = {}
        refused = 0
        stop = asyncio.Event()

        async def writer(cid: str) -> None:
            nonlocal refused
            i = 0
            while not stop.is_set():
                mid = f"{cid}-{i}"
                answer = await api.client.post(
                    f"/v1/conversations/{cid}/messages",
                    json={"id": mid, "role": "user", "content": mid},
                    headers=headers,
                )
                if answer.status_code in (200, 201):
                    acknowledged.setdefault(cid, set()).add(mid)
                    i += 1
                else:  # not acknowledged: the client retries the same id
                    refused += 1
                await asyncio.sleep(0.002)

        writers = [asyncio.create_task(writer(cid)) for cid in conversations]
        await wait_for(lambda: _count(acknowledged, 200))

        redis_server.stop()
        await wait_for(lambda: _degraded(api))
        before_outage = sum(map(len, acknowledged.values()))
        born_in_outage = await api.conversation(headers, mode="ephemeral")
        await api.append(headers, born_in_outage["id"], "made while Redis was down", "and another")
        conversations.append(born_in_outage["id"])
        acknowledged[born_in_outage["id"]] = set()
        writers.append(asyncio.create_task(writer(born_in_outage["id"])))
        await wait_for(lambda: _count(acknowledged, before_outage + 200))
        metrics = (await api.client.get("/metrics")).text
        assert 'chatkeep_store_degraded{store="ephemeral"} 1.0' in metrics
        assert 'chatkeep_fallback_pending_writes{store="ephemeral"} 0.0' not in metrics
        during_outage = sum(map(len, acknowledged.values())) - before_outage

        redis_server.start()
        await wait_for(lambda: _ready(api))
        await asyncio.sleep(0.3)
        stop.set()
        await asyncio.gather(*writers)

        stored_total = duplicates = 0
        for cid in conversations:
            stored = await all_messages(api, headers, cid)
            ids = [m["id"] for m in stored]
            duplicates += len(ids) - len(set(ids))
            stored_total += len(ids)
            extra = [mid for mid in ids if mid.startswith(cid) and mid not in acknowledged[cid]]
            assert not set(acknowledged[cid]) - set(ids), f"lost in {cid}"
            assert [m["seq"] for m in stored] == list(range(1, len(stored) + 1))
            assert len(extra) <= 1  # at most an in-flight write whose answer was cut off
        acknowledged_total = sum(map(len, acknowledged.values())) + 2
        after_outage = acknowledged_total - before_outage - during_outage - 2
        report(
            f"Redis outage: {acknowledged_total} writes acknowledged ({before_outage} before the outage, "
            f"{during_outage + 2} during it, {after_outage} after), {stored_total} stored, "
            f"{duplicates} duplicated, {refused} answered 503 and retried"
        )
        assert duplicates == 0
        assert stored_total >= acknowledged_total


async def _count(acknowledged: dict[str, set[str]], at_least: int) -> bool:
    return sum(map(len, acknowledged.values())) >= at_least


async def _degraded(api: Api) -> bool:
    answer = await api.client.get("/readyz")
    return answer.status_code == 200 and answer.json()["stores"]["ephemeral"] == "degraded"


async def _ready(api: Api) -> bool:
    answer = await api.client.get("/readyz")
    return answer.status_code == 200 and answer.json()["status"] == "ready"


async def test_the_refuse_policy_answers_503_and_recovers(tmp_path: Path, redis_server: RedisProcess) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_server.url, ephemeral_outage="refuse") as api:
        headers = await api.user()
        cid = (await api.conversation(headers, mode="ephemeral"))["id"]
        await api.append(headers, cid, "before")
        durable = (await api.conversation(headers, mode="durable"))["id"]
        redis_server.stop()

        refused = await api.client.post(
            f"/v1/conversations/{cid}/messages", json={"role": "user", "content": "x"}, headers=headers
        )
        assert (refused.status_code, refused.json()["code"]) == (503, "store_unavailable")
        await wait_for(lambda: _degraded(api))
        assert len(await api.append(headers, durable, "durable still works")) == 1
        listed = (await api.client.get("/v1/conversations", headers=headers)).json()["items"]
        assert [c["id"] for c in listed] == [durable]  # the ephemeral store is left out while down

        redis_server.start()
        await wait_for(lambda: _ready(api))
        await api.append(headers, cid, "after")
        assert [m["content"] for m in await all_messages(api, headers, cid)] == ["before", "after"]
