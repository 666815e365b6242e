"""The outage journal's budget (refuse rather than grow), and a replay that Redis refuses (logged and
counted, never swallowed)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import redis

from tests.api.conftest import auth, running_api
from tests.conftest import report
from tests.outage.conftest import all_messages, degraded, metric, replayed, wait_for
from tests.redis_servers import RedisProcess

BUDGET = 8192
SHARE = 0.4


async def test_the_journal_refuses_past_its_budget_and_a_tenant_past_its_share(
    tmp_path: Path, redis_server: RedisProcess
) -> None:
    overrides = {"outage_journal_max_bytes": BUDGET, "outage_journal_tenant_share": SHARE}
    async with running_api(tmp_path, ephemeral_url=redis_server.url, **overrides) as api:
        users = [await api.user(), await api.user(), await api.user()]  # three tenants
        cids = [(await api.conversation(h, mode="ephemeral"))["id"] for h in users]
        redis_server.stop()
        await wait_for(degraded(api))

        accepted = [0, 0, 0]
        for k in range(3):
            while True:
                answer = await api.client.post(
                    f"/v1/conversations/{cids[k]}/messages",
                    json={"id": f"m-{accepted[k]}", "role": "user", "content": "x" * 500},
                    headers=users[k],
                )
                if answer.status_code == 503:
                    assert answer.json()["code"] == "store_unavailable"
                    break
                assert answer.status_code == 201, answer.text
                accepted[k] += 1
        held = metric((await api.client.get("/metrics")).text, "chatkeep_outage_journal_bytes")

        redis_server.start()
        await wait_for(replayed(api))
        stored = [len(await all_messages(api, h, cid)) for h, cid in zip(users, cids, strict=True)]
        after = metric((await api.client.get("/metrics")).text, "chatkeep_outage_journal_bytes")
        report(
            f"journal budget {BUDGET} bytes, tenant share {SHARE}: accepted per tenant {accepted} "
            f"({held:g} bytes held) then 503; stored after the replay {stored}; held after it {after:g}"
        )
        assert accepted[0] == accepted[1] > 0  # each stopped by its share
        assert 0 < accepted[2] < accepted[0]  # stopped by what the first two left of the budget
        assert held <= BUDGET and after == 0
        assert stored == accepted


async def test_a_refused_replay_is_logged_and_counted(
    tmp_path: Path, redis_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_server.url) as api:
        tenant, _ = await api.tenant()
        headers = auth(api.token(tenant, "user"))
        cid = (await api.conversation(headers, mode="ephemeral"))["id"]
        await api.append(headers, cid, "before")
        redis_server.stop()
        await wait_for(degraded(api))
        acked = await api.append(headers, cid, "one")
        acked += await api.append(headers, cid, "two", "three")

        # Redis is back and, before this instance notices, another deletes the conversation (a
        # blocking client: the event loop cannot run the probe in between).
        redis_server.start()
        other = redis.Redis.from_url(redis_server.url)
        assert other.delete(*(f"ck:{{{tenant.id}:{cid}}}:{part}" for part in "cmi")) == 3
        other.close()
        with caplog.at_level(logging.ERROR, logger="chatkeep.fallback"):
            await wait_for(replayed(api))
        failures = metric((await api.client.get("/metrics")).text, "chatkeep_outage_replay_failures_total")
        refusals = [r for r in caplog.records if "was refused" in r.getMessage()]
        report(f"refused replay: {len(acked)} messages in 2 journaled writes, {failures:g} counted refused")
        assert failures == 2 and len(refusals) == 2
        gone = await api.client.get(f"/v1/conversations/{cid}", headers=headers)
        assert gone.status_code == 404
