"""The replay of thousands of writes journaled during an outage runs in the background: appends to
a conversation with nothing to replay are served while it runs, a write to a conversation whose
replay is pending waits for it and lands after it, and /metrics shows the replay's progress."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path

from tests.api.conftest import running_api
from tests.conftest import report
from tests.outage.conftest import all_messages, degraded, metric, replayed, wait_for
from tests.redis_servers import RedisProcess

BACKLOG = 30  # conversations written during the outage
WRITES = 50  # appends per conversation, each followed by a title change (nothing to merge)


async def test_replay_runs_in_the_background(tmp_path: Path, redis_server: RedisProcess) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_server.url) as api:
        store = api.services.router.ephemeral
        headers = await api.user()
        backlog = [(await api.conversation(headers, mode="ephemeral"))["id"] for _ in range(BACKLOG)]
        live = (await api.conversation(headers, mode="ephemeral"))["id"]
        await api.append(headers, live, "before the outage")

        redis_server.stop()
        await wait_for(degraded(api))
        acked: dict[str, list[tuple[str, int]]] = {cid: [] for cid in backlog}
        versions: dict[str, int] = {}

        async def fill(cid: str) -> None:
            for i in range(WRITES):
                mid = f"{cid}-{i}"
                sent = await api.client.post(
                    f"/v1/conversations/{cid}/messages", json={"id": mid, "role": "user", "content": mid},
                    headers=headers,
                )  # fmt: skip
                assert sent.status_code == 201, sent.text
                acked[cid].append((mid, sent.json()["seq"]))
                titled = await api.client.patch(
                    f"/v1/conversations/{cid}",
                    json={"title": f"title {i}"},
                    headers={**headers, "If-Match": "*"},
                )
                assert titled.status_code == 200, titled.text
                versions[cid] = titled.json()["version"]

        await asyncio.gather(*(fill(cid) for cid in backlog))
        journaled = store.pending  # type: ignore[attr-defined]
        assert journaled == 2 * BACKLOG * WRITES

        redis_server.start()
        await wait_for(lambda: _not_degraded(store))
        latencies: list[float] = []
        served_during_replay = 0
        scrapes: list[tuple[float, float]] = []  # (pending, replayed so far)
        queued = asyncio.create_task(
            api.client.post(
                f"/v1/conversations/{backlog[-1]}/messages",
                json={"id": "queued", "role": "user", "content": "written while its replay was pending"},
                headers=headers,
            )
        )
        started = time.perf_counter()
        n = 0
        while store.pending or n < 20:  # type: ignore[attr-defined]
            pending = store.pending  # type: ignore[attr-defined]
            sent_at = time.perf_counter()
            answer = await api.client.post(
                f"/v1/conversations/{live}/messages",
                json={"id": f"live-{n}", "role": "user", "content": "meanwhile"},
                headers=headers,
            )
            latencies.append(time.perf_counter() - sent_at)
            assert answer.status_code == 201, answer.text
            served_during_replay += pending > 0 and store.pending > 0  # type: ignore[attr-defined]
            if n % 10 == 0:
                text = (await api.client.get("/metrics")).text
                scrapes.append(
                    (
                        metric(text, "chatkeep_fallback_pending_writes"),
                        metric(text, "chatkeep_outage_replayed_writes_total"),
                    )
                )
            n += 1
        replay_seconds = time.perf_counter() - started
        await wait_for(replayed(api))
        queued_answer = await queued
        assert queued_answer.status_code == 201, queued_answer.text

        mismatched = missing = 0
        for cid in backlog:
            stored = {m["id"]: m["seq"] for m in await all_messages(api, headers, cid)}
            missing += sum(mid not in stored for mid, _ in acked[cid])
            mismatched += sum(stored.get(mid, seq) != seq for mid, seq in acked[cid])
            found = (await api.client.get(f"/v1/conversations/{cid}", headers=headers)).json()
            assert (found["title"], found["version"]) == (f"title {WRITES - 1}", versions[cid])
        assert queued_answer.json()["seq"] == WRITES + 1  # after the replayed ones
        live_seqs = [m["seq"] for m in await all_messages(api, headers, live)]
        assert live_seqs == list(range(1, n + 2))
        ms = sorted(x * 1000 for x in latencies)
        mid_replay = [s for s in scrapes if s[0] > 0]
        report(
            f"background replay: {journaled} journaled writes ({BACKLOG} conversations) replayed in "
            f"{replay_seconds:.2f}s; {n} appends to another conversation meanwhile, {served_during_replay} "
            f"of them while writes were still pending; their latency ms median {statistics.median(ms):.1f}, "
            f"p95 {ms[int(len(ms) * 0.95) - 1]:.1f}, max {ms[-1]:.1f}; /metrics mid-replay "
            f"(pending, replayed): {mid_replay[:3]}; {missing} missing, {mismatched} at another seq"
        )
        assert served_during_replay > 0
        assert any(replayed_so_far > 0 for _, replayed_so_far in mid_replay)
        assert missing == 0 and mismatched == 0


async def _not_degraded(store: object) -> bool:
    return not getattr(store, "degraded", True)
