"""Many writers with client-chosen message ids across several Redis outages (stopped cleanly or
killed): every acknowledged message is stored once, at the seq its acknowledgement gave, and a
re-sent acknowledged id answers that same seq, before, during and after each outage."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.api.conftest import Api, running_api
from tests.conftest import report
from tests.outage.conftest import all_messages, degraded, replayed, wait_for
from tests.redis_servers import RedisProcess

WRITERS_PER_CONVERSATION = 2
BUSY = 3  # conversations written straight through each outage (their cut-off writes are refused)
QUIET = 3  # conversations idle when Redis goes, written again once the outage is noticed
OUTAGES = 3
ACKS_PER_OUTAGE = 60


@dataclass
class Writer:
    cid: str
    name: str
    quiet: bool
    acked: dict[str, int] = field(default_factory=dict)  # message id -> acknowledged seq
    order: list[str] = field(default_factory=list)
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    refused: int = 0
    resent: int = 0
    resent_mismatches: int = 0
    during_outage: int = 0


async def test_acknowledged_seqs_are_final_across_outages(tmp_path: Path, redis_server: RedisProcess) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_server.url) as api:
        headers = await api.user()
        writers: list[Writer] = []
        for n in range(BUSY + QUIET):
            cid = (await api.conversation(headers, mode="ephemeral"))["id"]
            for k in range(WRITERS_PER_CONVERSATION):
                writers.append(Writer(cid, f"c{n}w{k}", quiet=n >= BUSY))
        gate = asyncio.Event()  # quiet writers write while it is set
        gate.set()
        outage = False
        stop = asyncio.Event()
        rng = random.Random(9)

        async def send(w: Writer, mid: str) -> int | None:
            answer = await api.client.post(
                f"/v1/conversations/{w.cid}/messages",
                json={"id": mid, "role": "user", "content": f"{w.name} {mid}"},
                headers=headers,
            )
            if answer.status_code in (200, 201):
                seq: int = answer.json()["seq"]
                assert "provisional" not in answer.json()  # one instance: never provisional
                return seq
            assert answer.status_code == 503, answer.text
            assert answer.json()["code"] == "store_unavailable"
            return None

        async def write(w: Writer) -> None:
            for i in itertools.count():
                mid = f"{w.name}-{i}"
                while True:  # not acknowledged: the client sends the same id again
                    if stop.is_set():
                        return
                    if w.quiet and not gate.is_set():
                        w.idle.set()
                        await gate.wait()
                        w.idle.clear()
                    seq = await send(w, mid)
                    if seq is not None:
                        break
                    w.refused += 1
                    await asyncio.sleep(0.005)
                w.acked[mid] = seq
                w.order.append(mid)
                w.during_outage += outage
                if i % 7 == 3:  # a late retry of one of its latest acknowledged ids
                    again = rng.choice(w.order[-4:])
                    seq = await send(w, again)
                    if seq is not None:
                        w.resent += 1
                        w.resent_mismatches += seq != w.acked[again]
                await asyncio.sleep(0.001)

        tasks = [asyncio.create_task(write(w)) for w in writers]

        def total() -> int:
            return sum(len(w.acked) for w in writers)

        for round_ in range(OUTAGES):
            start = total()
            await wait_for(_at_least(total, start + 100))
            gate.clear()
            await asyncio.gather(*(w.idle.wait() for w in writers if w.quiet))
            if round_ % 2:
                redis_server.kill()
            else:
                redis_server.stop()
            await wait_for(degraded(api))
            outage = True
            gate.set()
            during = sum(w.during_outage for w in writers)
            await wait_for(_at_least(lambda: sum(w.during_outage for w in writers), during + ACKS_PER_OUTAGE))
            redis_server.start()
            await wait_for(replayed(api))
            outage = False
        await wait_for(_at_least(total, total() + 100))
        stop.set()
        await asyncio.gather(*tasks)
        await wait_for(replayed(api))

        counts = await _count(api, headers, writers)
        report(
            f"final seqs, {OUTAGES} outages, {len(writers)} writers: {counts['acked']} acked "
            f"({counts['during']} during outages), {counts['stored']} stored, {counts['missing']} missing, "
            f"{counts['duplicated']} duplicated, {counts['mismatched']} seq mismatches, "
            f"{counts['resent']} re-sent ids ({counts['resent_mismatches']} answered another seq), "
            f"{counts['refused']} answered 503 and retried"
        )
        assert counts["during"] >= OUTAGES * ACKS_PER_OUTAGE
        assert counts["stored"] == counts["acked"]
        for name in ("missing", "duplicated", "mismatched", "resent_mismatches", "gaps"):
            assert counts[name] == 0, name


def _at_least(count: Callable[[], int], target: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return count() >= target

    return check


async def _count(api: Api, headers: dict[str, str], writers: list[Writer]) -> dict[str, int]:
    names = "acked during stored missing duplicated mismatched gaps resent resent_mismatches refused"
    counts = dict.fromkeys(names.split(), 0)
    for cid in sorted({w.cid for w in writers}):
        stored = await all_messages(api, headers, cid)
        seqs = [m["seq"] for m in stored]
        counts["gaps"] += seqs != list(range(1, len(stored) + 1))
        counts["stored"] += len(stored)
        by_id: dict[str, list[int]] = {}
        for m in stored:
            by_id.setdefault(m["id"], []).append(m["seq"])
        counts["duplicated"] += sum(len(s) - 1 for s in by_id.values())
        for w in (w for w in writers if w.cid == cid):
            for mid, seq in w.acked.items():
                found = by_id.get(mid)
                counts["missing"] += found is None
                counts["mismatched"] += found is not None and found[0] != seq
    for w in writers:
        counts["acked"] += len(w.acked)
        counts["during"] += w.during_outage
        counts["resent"] += w.resent
        counts["resent_mismatches"] += w.resent_mismatches
        counts["refused"] += w.refused
    return counts
