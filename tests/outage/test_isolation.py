"""Two users of one tenant race creates, appends, patches and deletes on the same conversation ids
before, during and after a Redis outage: no write of one ever reaches the other's conversation,
during the outage a create of a client-chosen id is refused (503), and every write the owner got
acknowledged is stored, at its seq, once the journal is replayed."""

from __future__ import annotations

import asyncio
import itertools
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tests.api.conftest import Api, auth, running_api
from tests.conftest import report
from tests.outage.conftest import all_messages, degraded, metric, replayed, wait_for
from tests.redis_servers import RedisProcess

HELD = [str(uuid.uuid4()) for _ in range(6)]  # alice's throughout
DROPPED = [str(uuid.uuid4()) for _ in range(4)]  # alice's until she deletes them during the outage
FREE = [str(uuid.uuid4()) for _ in range(4)]  # ids both race to create
ROUND = 150  # answered requests per phase and user
TICKS = itertools.count()  # orders answers
DELETED: dict[str, int] = {}  # conversation id -> tick of its last successful delete


@dataclass
class Racer:
    name: str
    headers: dict[str, str]
    phase: str = "before"
    answers: Counter[tuple[str, str, int]] = field(default_factory=Counter)  # (phase, op, status)
    # message id -> (cid, seq, phase, tick of the answer)
    acked: dict[str, tuple[str, int, str, int]] = field(default_factory=dict)
    wrong: list[str] = field(default_factory=list)
    steps: int = 0


async def test_two_users_racing_on_the_same_ids_never_reach_each_other(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_server.url) as api:
        DELETED.clear()
        tenant, key = await api.tenant()
        alice = Racer("alice", auth(api.token(tenant, "alice")))
        bob = Racer("bob", auth(api.token(tenant, "bob")))
        for cid in HELD + DROPPED:
            await api.conversation(alice.headers, id=cid, mode="ephemeral")
        rng = random.Random(7)
        run = asyncio.Event()
        run.set()
        idle = {alice.name: asyncio.Event(), bob.name: asyncio.Event()}
        stop = asyncio.Event()

        async def race(me: Racer, ops: list[str]) -> None:
            n = 0
            while not stop.is_set():
                if not run.is_set():
                    idle[me.name].set()
                    await run.wait()
                    idle[me.name].clear()
                op = rng.choice(ops)
                await _step(api, me, op, rng, n)
                n += 1
                me.steps += 1
                await asyncio.sleep(0.001)

        alice_ops = [
            "append_held",
            "append_held",
            "append_dropped",
            "patch_held",
            "create_free",
            "append_free",
        ]
        bob_ops = ["create_any", "append_any", "append_any", "delete_any", "patch_any"]
        tasks = [asyncio.create_task(race(alice, alice_ops)), asyncio.create_task(race(bob, bob_ops))]

        async def steps(target: int) -> None:
            await wait_for(lambda: _done(alice, bob, target))

        await steps(ROUND)
        run.clear()  # both idle when Redis goes: every conversation is known exactly here
        await asyncio.gather(*(e.wait() for e in idle.values()))
        redis_server.stop()
        await wait_for(degraded(api))
        alice.phase = bob.phase = "during"
        for cid in DROPPED:
            gone = await api.client.delete(f"/v1/conversations/{cid}", headers=alice.headers)
            assert gone.status_code in (200, 204), gone.text
        run.set()
        await steps(2 * ROUND)
        redis_server.start()
        alice.phase = bob.phase = "after"
        await wait_for(replayed(api))
        await steps(3 * ROUND)
        stop.set()
        await asyncio.gather(*tasks)

        tenant_key = auth(key)
        owners: dict[str, str | None] = {}
        crossed = 0
        for cid in HELD + DROPPED + FREE:
            found = await api.client.get(f"/v1/conversations/{cid}", headers=tenant_key)
            owners[cid] = found.json()["user"] if found.status_code == 200 else None
            if owners[cid] is None:
                continue
            for m in await all_messages(api, tenant_key, cid):
                crossed += not m["id"].startswith(f"{owners[cid]}-")
        lost: list[str] = []
        mismatched = 0
        for racer in (alice, bob):
            for mid, (cid, seq, phase, tick) in racer.acked.items():
                if owners.get(cid) != racer.name or DELETED.get(cid, -1) > tick:
                    continue  # deleted by its owner since
                stored = {m["id"]: m["seq"] for m in await all_messages(api, tenant_key, cid)}
                if mid not in stored:
                    lost.append(
                        f"{mid} in {cid} at {seq} ({phase}; stored seqs {sorted(stored.values())[-3:]})"
                    )
                mismatched += mid in stored and stored[mid] != seq
        metrics = (await api.client.get("/metrics")).text
        failures = metric(metrics, "chatkeep_outage_replay_failures_total")
        report(
            f"isolation race: alice {sum(alice.answers.values())} requests, bob {sum(bob.answers.values())}; "
            f"bob's writes answered 2xx on alice's conversations: {len(bob.wrong)}; messages in a "
            f"conversation of another user: {crossed}; acked messages lost {lost}, at another seq "
            f"{mismatched}; replays refused {failures:g}; answers {_summary(alice, bob)}"
        )
        assert bob.wrong == [] and alice.wrong == []
        assert crossed == 0 and lost == [] and mismatched == 0 and failures == 0
        assert all(owners[cid] == "alice" for cid in HELD)
        assert all(owners[cid] in (None, "bob") for cid in DROPPED)  # alice deleted them
        for racer in (alice, bob):  # a client-chosen id cannot be checked during the outage
            assert racer.answers[("during", "create", 201)] == 0
            assert racer.answers[("during", "create", 503)] > 0
        assert alice.answers[("during", "append", 201)] > 0  # her known conversations stay writable


async def _done(alice: Racer, bob: Racer, target: int) -> bool:
    return alice.steps >= target and bob.steps >= target


async def _step(api: Api, me: Racer, op: str, rng: random.Random, n: int) -> None:
    kind, _, pool_name = op.partition("_")
    pool = {"held": HELD, "dropped": DROPPED, "free": FREE, "any": HELD + DROPPED + FREE}[pool_name]
    cid = rng.choice(pool)
    url = f"/v1/conversations/{cid}"
    if kind == "create":
        answer = await api.client.post(
            "/v1/conversations", json={"id": cid, "workspace": "w1", "mode": "ephemeral"}, headers=me.headers
        )
    elif kind == "append":
        mid = f"{me.name}-{n}"
        answer = await api.client.post(
            f"{url}/messages", json={"id": mid, "role": "user", "content": mid}, headers=me.headers
        )
        if answer.status_code in (200, 201):
            me.acked[mid] = (cid, answer.json()["seq"], me.phase, next(TICKS))
    elif kind == "patch":
        answer = await api.client.patch(
            url, json={"title": f"{me.name} {n}"}, headers={**me.headers, "If-Match": "*"}
        )
    else:
        answer = await api.client.delete(url, headers=me.headers)
        if answer.status_code < 300:
            DELETED[cid] = next(TICKS)
    me.answers[(me.phase, kind, answer.status_code)] += 1
    assert answer.status_code in (200, 201, 204, 404, 409, 503), answer.text
    if me.name == "bob" and cid in HELD and answer.status_code < 300:
        me.wrong.append(f"{kind} {cid} {answer.status_code} ({me.phase})")


def _summary(*racers: Racer) -> str:
    parts = []
    for racer in racers:
        for (phase, kind, status), n in sorted(racer.answers.items()):
            parts.append(f"{racer.name}/{phase}/{kind}/{status}={n}")
    return " ".join(parts)
