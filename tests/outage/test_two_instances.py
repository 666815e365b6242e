"""Two instances sharing one Redis (and one event bus) through an outage, both writing the same
conversation meanwhile: their acknowledgements during the outage are marked provisional; after the
replay every acknowledged message is stored once, seqs stay unique and gapless, acknowledgements
given while Redis answered never change, and every provisional seq that changed is counted in
/metrics and published again as `message.created` with its final seq."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from chatkeep.models import Event, EventType
from tests import services
from tests.api.conftest import Api, auth, running_api
from tests.conftest import drop_keys, report, unique
from tests.outage.conftest import all_messages, degraded, metric, replayed, wait_for
from tests.redis_servers import RedisProcess

OUTAGE_WRITES = 30


async def test_two_instances_through_an_outage(tmp_path: Path, redis_server: RedisProcess) -> None:
    prefix = unique("ck-bus")
    shared = {
        "durable_url": f"sqlite:///{tmp_path}/shared.db",
        "ephemeral_url": redis_server.url,
        "events_url": f"{services.require_redis()}?prefix={prefix}",  # the bus stays up
    }
    try:
        async with running_api(tmp_path, **shared) as one, running_api(tmp_path, **shared) as two:
            await _run(one, two, redis_server)
    finally:
        await drop_keys(services.REDIS_URL, prefix)


async def _run(one: Api, two: Api, redis_server: RedisProcess) -> None:
    tenant, _ = await one.tenant()
    headers = auth(one.token(tenant, "user"))
    both = await one.conversation(headers, mode="ephemeral")
    only_one = await one.conversation(headers, mode="ephemeral")
    only_two = await two.conversation(headers, mode="ephemeral")
    acks: list[tuple[str, str, int, bool]] = []  # (conversation, message id, seq, provisional)

    async def append(api: Api, cid: str, mid: str) -> None:
        answer = await api.client.post(
            f"/v1/conversations/{cid}/messages",
            json={"id": mid, "role": "user", "content": mid},
            headers=headers,
        )
        assert answer.status_code == 201, answer.text
        acks.append((cid, mid, answer.json()["seq"], answer.json().get("provisional", False)))

    for i in range(10):
        await append(one if i % 2 else two, both["id"], f"before-{i}")
        await append(one, only_one["id"], f"one-before-{i}")
        await append(two, only_two["id"], f"two-before-{i}")
    for api in (one, two):  # each instance reads the shared conversation as it now is
        assert (await api.client.get(f"/v1/conversations/{both['id']}", headers=headers)).status_code == 200

    events: list[Event] = []
    listening = asyncio.Event()

    async def listen() -> None:
        async with one.services.events.subscribe(tenant.id) as stream:
            listening.set()
            async for event in stream:
                events.append(event)

    listener = asyncio.create_task(listen())
    await listening.wait()

    redis_server.stop()
    await wait_for(degraded(one))
    await wait_for(degraded(two))

    async def writer(api: Api, cid: str, name: str) -> None:
        for i in range(OUTAGE_WRITES):
            await append(api, cid, f"{name}-{i}")

    await asyncio.gather(
        writer(one, both["id"], "one-during"),
        writer(two, both["id"], "two-during"),
        writer(one, only_one["id"], "one-only-during"),
        writer(two, only_two["id"], "two-only-during"),
    )
    during = [a for a in acks if "during" in a[1]]
    assert all(provisional for *_, provisional in during)

    redis_server.start()
    await wait_for(replayed(one))
    await wait_for(replayed(two))
    for i in range(5):
        await append(two if i % 2 else one, both["id"], f"after-{i}")

    stored: dict[str, dict[str, list[int]]] = {}
    gaps = 0
    for cid in (both["id"], only_one["id"], only_two["id"]):
        messages = await all_messages(one, headers, cid)
        gaps += [m["seq"] for m in messages] != list(range(1, len(messages) + 1))
        by_id: dict[str, list[int]] = {}
        for m in messages:
            by_id.setdefault(m["id"], []).append(m["seq"])
        stored[cid] = by_id
    missing = sum(mid not in stored[cid] for cid, mid, _, _ in acks)
    duplicated = sum(len(seqs) - 1 for by_id in stored.values() for seqs in by_id.values())
    changed = {(cid, mid): stored[cid][mid][0] for cid, mid, seq, _ in acks if stored[cid][mid][0] != seq}
    firm_changed = [key for key in changed if not any(a[1] == key[1] and a[3] for a in acks)]
    counted = 0.0
    for api in (one, two):
        counted += metric((await api.client.get("/metrics")).text, "chatkeep_outage_seq_changes_total")

    async def republished() -> bool:
        final = {
            (e.conversation_id, e.data["message"]["id"]): e.seq
            for e in events
            if e.type is EventType.MESSAGE_CREATED
        }
        return all(final.get(key) == seq for key, seq in changed.items())

    await wait_for(republished, seconds=10)
    await _stop(listener)
    report(
        f"two instances: {len(acks)} acked ({len(during)} provisional, during the outage), "
        f"{sum(len(s) for by_id in stored.values() for s in by_id.values())} stored, {missing} missing, "
        f"{duplicated} duplicated, {gaps} conversations with a gap; {len(changed)} provisional seqs changed "
        f"(counted in /metrics: {counted:g}, each published again with its final seq), "
        f"{len(firm_changed)} firm seqs changed"
    )
    assert missing == 0 and duplicated == 0 and gaps == 0 and firm_changed == []
    assert counted == len(changed)
    assert not any(cid != both["id"] for cid, _ in changed)  # only the conversation both wrote


async def _stop(task: asyncio.Task[Any]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
