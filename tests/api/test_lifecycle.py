"""Session lifecycle: sliding expiry with heartbeats, `expired` answers, the sweeper, `none` mode."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from chatkeep.events.local import LocalEventBus
from chatkeep.models import Event, EventType, Tenant
from tests import services
from tests.api.conftest import Api, auth, running_api


def redis_scan(pattern: str) -> list[str]:
    """Keys matching `pattern`, as `redis-cli --scan` sees them."""
    if shutil.which("redis-cli") is None:
        services.unavailable("redis-cli is not installed")
    port = str(urlsplit(services.REDIS_URL).port or 6379)
    done = subprocess.run(
        ["redis-cli", "-p", port, "--scan", "--pattern", pattern], capture_output=True, text=True, timeout=30
    )
    return [line for line in done.stdout.splitlines() if line]


async def ephemeral_tenant(api: Api, ttl_seconds: int) -> tuple[Tenant, dict[str, str]]:
    """A tenant whose conversations are ephemeral by default with this TTL, and a user's headers."""
    tenant, key = await api.tenant()
    answer = await api.client.put(
        "/v1/settings/persistence",
        json={"default_mode": "ephemeral", "ephemeral_ttl_seconds": ttl_seconds},
        headers=auth(key),
    )
    assert answer.status_code == 200
    return tenant, auth(api.token(tenant, "sam"))


async def test_heartbeats_keep_a_conversation_alive_and_silence_expires_it(
    tmp_path: Path, redis_url: str
) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_url, sweep_interval_seconds=60) as api:
        _, headers = await ephemeral_tenant(api, ttl_seconds=2)
        kept = await api.conversation(headers)
        dropped = await api.conversation(headers)
        for c in (kept, dropped):
            assert c["mode"] == "ephemeral"
            for start in range(0, 100, 50):
                await api.append(headers, c["id"], *[f"message {i}" for i in range(start, start + 50)])
        assert redis_scan(f"*{dropped['id']}*")  # three keys: record, messages, ids

        for second in range(1, 6):  # five seconds, a heartbeat a second
            await asyncio.sleep(1)
            beat = await api.client.post(f"/v1/conversations/{kept['id']}/heartbeat", headers=headers)
            assert beat.status_code == 200 and beat.json()["expires_at"] is not None
            if second == 3:  # three seconds without a write or heartbeat: gone, keys and all
                early = await api.client.get(f"/v1/conversations/{dropped['id']}", headers=headers)
                assert (early.status_code, early.json()["code"]) == (404, "expired")
                assert redis_scan(f"*{dropped['id']}*") == []

        alive = await api.client.get(f"/v1/conversations/{kept['id']}?messages=100", headers=headers)
        assert alive.status_code == 200 and len(alive.json()["messages"]) == 100

        gone = await api.client.get(f"/v1/conversations/{dropped['id']}", headers=headers)
        assert (gone.status_code, gone.json()["code"]) == (404, "expired")
        assert redis_scan(f"*{dropped['id']}*") == []
        late = await api.client.post(f"/v1/conversations/{dropped['id']}/heartbeat", headers=headers)
        assert (late.status_code, late.json()["code"]) == (404, "expired")
        stranger = auth(api.token((await api.tenant())[0], "sam"))
        other = await api.client.get(f"/v1/conversations/{dropped['id']}", headers=stranger)
        assert (other.status_code, other.json()["code"]) == (404, "not_found")
        listed = (await api.client.get("/v1/conversations", headers=headers)).json()["items"]
        assert [c["id"] for c in listed] == [kept["id"]]


async def test_the_sweeper_announces_expiry_then_forgets(tmp_path: Path, redis_url: str) -> None:
    async with running_api(
        tmp_path, ephemeral_url=redis_url, sweep_interval_seconds=0.2, expired_memory_seconds=2
    ) as api:
        tenant, headers = await ephemeral_tenant(api, ttl_seconds=1)
        c = await api.conversation(headers)
        await api.append(headers, c["id"], "soon gone")
        events: list[Event] = []
        bus = api.services.events
        assert isinstance(bus, LocalEventBus)

        async def listen() -> None:
            async with bus.subscribe(tenant.id) as stream:
                async for event in stream:
                    events.append(event)

        listener = asyncio.create_task(listen())
        await asyncio.sleep(1.6)
        expired = [e for e in events if e.type is EventType.CONVERSATION_EXPIRED]
        assert [e.conversation_id for e in expired] == [c["id"]]
        assert expired[0].data["conversation"]["user"] == "sam"
        swept = await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)
        assert swept.json()["code"] == "expired"  # swept, but remembered
        await asyncio.sleep(2.5)
        forgotten = await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)
        assert forgotten.json()["code"] == "not_found"
        listener.cancel()


async def test_a_none_conversation_lives_while_the_page_does(tmp_path: Path) -> None:
    async with running_api(tmp_path, none_grace_seconds=1, sweep_interval_seconds=60) as api:
        headers = await api.user()
        c = await api.conversation(headers, mode="none")
        await api.append(headers, c["id"], "throwaway")
        for _ in range(3):
            await asyncio.sleep(0.5)
            assert (
                await api.client.post(f"/v1/conversations/{c['id']}/heartbeat", headers=headers)
            ).status_code == 200
        assert (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).status_code == 200
        await asyncio.sleep(1.2)
        gone = await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)
        assert (gone.status_code, gone.json()["code"]) == (404, "expired")


async def test_heartbeat_of_a_durable_conversation_only_marks_activity(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    await asyncio.sleep(0.01)
    beat = (await api.client.post(f"/v1/conversations/{c['id']}/heartbeat", headers=headers)).json()
    assert beat["expires_at"] is None and beat["last_activity_at"] > c["last_activity_at"]
    missing = await api.client.post("/v1/conversations/nope/heartbeat", headers=headers)
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
