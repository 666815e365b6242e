"""An acknowledged write survives SIGKILL of the server process (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from tests import services
from tests.conftest import drop_schema, report
from tests.server import ServerProcess


@pytest.fixture(params=["sqlite", "postgres"])
async def durable_url(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/kill.db"
    else:
        schema = f"ck_kill_{uuid.uuid4().hex[:8]}"
        yield f"{services.require_postgres()}?schema={schema}"
        await drop_schema(schema)


async def test_every_acknowledged_message_survives_sigkill(durable_url: str, tmp_path: Path) -> None:
    env = {"CHATKEEP_DURABLE_URL": durable_url, "CHATKEEP_USER_RATE_PER_SECOND": "0"}
    server = ServerProcess(env, tmp_path / "server.log").start()
    acknowledged: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        token = (await client.get("/v1/dev/token", params={"user": "kill-test"})).json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
        cid = str(uuid.uuid4())
        assert (
            await client.post("/v1/conversations", json={"workspace": "w", "id": cid}, headers=headers)
        ).status_code == 201

        async def writer(n: int) -> None:
            for i in range(10_000):
                mid = f"w{n}-{i}"
                try:
                    r = await client.post(
                        f"/v1/conversations/{cid}/messages",
                        json={"id": mid, "role": "user", "content": f"text {mid}"},
                        headers=headers,
                    )
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 201:
                    acknowledged[mid] = r.json()["content"]

        writers = [asyncio.create_task(writer(n)) for n in range(8)]
        while len(acknowledged) < 200:
            await asyncio.sleep(0.01)
        server.kill()  # mid-traffic: some requests are in flight
        await asyncio.gather(*writers)

    assert len(acknowledged) >= 200
    with ServerProcess(env, tmp_path / "server.log", port=server.port) as restarted:
        async with httpx.AsyncClient(base_url=restarted.url, timeout=10) as client:
            token = (await client.get("/v1/dev/token", params={"user": "kill-test"})).json()["token"]
            headers = {"Authorization": f"Bearer {token}"}
            stored: dict[str, str] = {}
            seqs: list[int] = []
            after = 0
            while True:
                page = (
                    await client.get(
                        f"/v1/conversations/{cid}/messages",
                        params={"after": after, "limit": 200},
                        headers=headers,
                    )
                ).json()
                for m in page["messages"]:
                    stored[m["id"]] = m["content"]
                    seqs.append(m["seq"])
                if not page["has_more"]:
                    break
                after = page["messages"][-1]["seq"]
    missing = set(acknowledged) - set(stored)
    found = len(set(acknowledged) & set(stored))
    report(
        f"SIGKILL ({durable_url.split(':')[0]}): {len(acknowledged)} appends acknowledged before the kill, "
        f"{found} of them found after the restart, {len(seqs) - len(stored)} stored twice"
    )
    assert not missing, f"{len(missing)} acknowledged messages lost"
    assert all(stored[mid] == text for mid, text in acknowledged.items())
    assert seqs == list(range(1, len(seqs) + 1))  # no gap, no repeat
    assert len(stored) == len(seqs)  # every id once
