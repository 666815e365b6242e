"""Streaming replies over REST: open, grow by deltas (coalesced, idempotent by offset), finish, and
interrupted when the writer goes quiet."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from chatkeep.events.local import LocalEventBus
from chatkeep.models import Event, EventType, Tenant
from tests.api.conftest import Api, auth, running_api


@contextlib.asynccontextmanager
async def recording(api: Api, tenant: Tenant) -> AsyncIterator[list[Event]]:
    """Every event published for the tenant while the block runs."""
    bus = api.services.events
    assert isinstance(bus, LocalEventBus)
    events: list[Event] = []

    async def listen() -> None:
        async with bus.subscribe(tenant.id) as stream:
            async for event in stream:
                events.append(event)

    task = asyncio.create_task(listen())
    await asyncio.sleep(0)
    try:
        yield events
    finally:
        await asyncio.sleep(0.05)
        task.cancel()


async def open_reply(api: Api, headers: dict[str, str], cid: str, mid: str = "reply") -> dict[str, object]:
    body = {"id": mid, "role": "assistant", "content": "", "status": "streaming"}
    answer = await api.client.post(f"/v1/conversations/{cid}/messages", json=body, headers=headers)
    assert answer.status_code == 201 and answer.json()["status"] == "streaming"
    return answer.json()  # type: ignore[no-any-return]


async def test_a_reply_streams_in_and_a_reload_sees_it_partway(api: Api) -> None:
    tenant, _ = await api.tenant()
    headers = auth(api.token(tenant, "ann"))
    c = await api.conversation(headers)
    await api.append(headers, c["id"], "What is a haiku?")
    await open_reply(api, headers, c["id"])
    url = f"/v1/conversations/{c['id']}/messages/reply"
    async with recording(api, tenant) as events:
        first = (
            await api.client.post(f"{url}/deltas", json={"text": "A short ", "offset": 0}, headers=headers)
        ).json()
        assert first == {"message_id": "reply", "seq": 2, "offset": 0, "appended": "A short ", "length": 8}
        await api.client.post(f"{url}/deltas", json={"text": "poem"}, headers=headers)

        partway = (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).json()
        assert (partway["messages"][-1]["content"], partway["messages"][-1]["status"]) == (
            "A short poem",
            "streaming",
        )
        assert partway["last_message_preview"] == "A short poem"

        done = await api.client.post(
            f"{url}/finish",
            json={"status": "complete", "usage": {"input_tokens": 4, "output_tokens": 3}},
            headers=headers,
        )
        assert done.json()["status"] == "complete" and done.json()["content"] == "A short poem"
    deltas = [(e.data["offset"], e.data["text"]) for e in events if e.type is EventType.MESSAGE_DELTA]
    assert deltas == [(0, "A short "), (8, "poem")]
    updated = [e for e in events if e.type is EventType.MESSAGE_UPDATED]
    assert [e.data["message"]["status"] for e in updated] == ["complete"]
    final = (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).json()
    assert final["usage"] == {"input_tokens": 4, "output_tokens": 3}


async def test_concurrent_deltas_are_coalesced_into_fewer_writes_in_order(api: Api) -> None:
    tenant, _ = await api.tenant()
    headers = auth(api.token(tenant, "ann"))
    c = await api.conversation(headers)
    await open_reply(api, headers, c["id"])
    url = f"/v1/conversations/{c['id']}/messages/reply/deltas"
    pieces = [f"token{i} " for i in range(100)]
    offsets = [sum(len(p) for p in pieces[:i]) for i in range(100)]
    async with recording(api, tenant) as events:
        answers = await asyncio.gather(
            *(
                api.client.post(url, json={"text": t, "offset": o}, headers=headers)
                for t, o in zip(pieces, offsets, strict=True)
            )
        )
    assert all(a.status_code == 200 for a in answers)
    content = (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).json()["messages"][-1][
        "content"
    ]
    assert content == "".join(pieces)
    deltas = [e for e in events if e.type is EventType.MESSAGE_DELTA]
    assert 1 <= len(deltas) < 100  # several deltas went in one write
    rebuilt = ""
    for e in deltas:  # what a follower applies by offset adds up to the content, with no gap
        assert e.data["offset"] == len(rebuilt)
        rebuilt += e.data["text"]
    assert rebuilt == content


async def test_retried_and_misplaced_deltas(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    await open_reply(api, headers, c["id"])
    url = f"/v1/conversations/{c['id']}/messages/reply"
    await api.client.post(f"{url}/deltas", json={"text": "Hello", "offset": 0}, headers=headers)
    retry = (
        await api.client.post(f"{url}/deltas", json={"text": "Hello", "offset": 0}, headers=headers)
    ).json()
    assert (retry["appended"], retry["length"]) == ("", 5)
    gap = await api.client.post(f"{url}/deltas", json={"text": "!", "offset": 9}, headers=headers)
    assert (gap.status_code, gap.json()["code"], gap.json()["length"]) == (409, "offset_mismatch", 5)
    missing = await api.client.post(
        f"/v1/conversations/{c['id']}/messages/nope/deltas", json={"text": "x"}, headers=headers
    )
    assert (missing.status_code, missing.json()["code"]) == (404, "message_not_found")
    await api.client.post(f"{url}/finish", json={"status": "interrupted"}, headers=headers)
    late = await api.client.post(f"{url}/deltas", json={"text": " again"}, headers=headers)
    assert (late.status_code, late.json()["code"]) == (409, "not_streaming")
    other = await api.client.post(f"{url}/finish", json={"status": "complete"}, headers=headers)
    assert (other.status_code, other.json()["code"]) == (409, "not_streaming")
    intruder = await api.user()
    hidden = await api.client.post(f"{url}/deltas", json={"text": "x"}, headers=intruder)
    assert (hidden.status_code, hidden.json()["code"]) == (404, "not_found")


async def test_a_reply_whose_writer_disappears_is_interrupted(tmp_path: Path) -> None:
    async with running_api(tmp_path, stream_timeout_seconds=1, sweep_interval_seconds=0.2) as api:
        tenant, _ = await api.tenant()
        headers = auth(api.token(tenant, "ann"))
        c = await api.conversation(headers)
        await open_reply(api, headers, c["id"])
        await api.client.post(
            f"/v1/conversations/{c['id']}/messages/reply/deltas", json={"text": "Half an"}, headers=headers
        )
        async with recording(api, tenant) as events:
            await asyncio.sleep(1.8)
        reply = (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).json()["messages"][-1]
        assert (reply["status"], reply["content"]) == ("interrupted", "Half an")
        assert [e.data["message"]["status"] for e in events if e.type is EventType.MESSAGE_UPDATED] == [
            "interrupted"
        ]
