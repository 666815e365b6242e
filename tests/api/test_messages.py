"""REST: appending messages (one, batch, retries) and paging them by seq; limits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

from tests.api.conftest import Api, running_api


async def test_append_answers_201_then_200_for_the_same_id(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    url = f"/v1/conversations/{c['id']}/messages"
    body = {
        "id": "client-1",
        "role": "user",
        "content": "Hello",
        "metadata": {"lang": "en"},
        "usage": {"input_tokens": 5},
    }

    first = await api.client.post(url, json=body, headers=headers)
    assert first.status_code == 201
    message = first.json()
    assert (message["id"], message["seq"], message["role"], message["content"]) == (
        "client-1",
        1,
        "user",
        "Hello",
    )
    assert message["metadata"] == {"lang": "en"} and message["usage"] == {
        "input_tokens": 5,
        "output_tokens": 0,
    }

    for _ in range(10):
        retry = await api.client.post(url, json=body, headers=headers)
        assert retry.status_code == 200
        assert retry.json() == message

    reloaded = (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).json()
    assert reloaded["message_count"] == 1 and [m["id"] for m in reloaded["messages"]] == ["client-1"]
    assert reloaded["usage"] == {"input_tokens": 5, "output_tokens": 0}


async def test_messages_without_an_id_get_one(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    url = f"/v1/conversations/{c['id']}/messages"
    one = (await api.client.post(url, json={"role": "assistant", "content": "a"}, headers=headers)).json()
    two = (await api.client.post(url, json={"role": "assistant", "content": "a"}, headers=headers)).json()
    assert one["id"] != two["id"] and (one["seq"], two["seq"]) == (1, 2)


async def test_fifty_concurrent_appends_over_http_get_seqs_one_to_fifty(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    url = f"/v1/conversations/{c['id']}/messages"
    responses = await asyncio.gather(
        *(
            api.client.post(url, json={"id": f"m{i}", "role": "user", "content": str(i)}, headers=headers)
            for i in range(50)
        )
    )
    assert all(r.status_code == 201 for r in responses)
    assert sorted(r.json()["seq"] for r in responses) == list(range(1, 51))


async def test_batch_is_ordered_idempotent_and_both_paths_work(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    batch = {"messages": [{"id": f"b{i}", "role": "user", "content": f"offline {i}"} for i in range(3)]}
    first = await api.client.post(f"/v1/conversations/{c['id']}/messages:batch", json=batch, headers=headers)
    assert first.status_code == 201
    assert [(r["created"], r["message"]["seq"]) for r in first.json()["results"]] == [
        (True, 1),
        (True, 2),
        (True, 3),
    ]

    replay = await api.client.post(f"/v1/conversations/{c['id']}/messages/batch", json=batch, headers=headers)
    assert replay.status_code == 200
    assert [r["created"] for r in replay.json()["results"]] == [False, False, False]
    assert [r["message"] for r in replay.json()["results"]] == [r["message"] for r in first.json()["results"]]

    mixed = {"messages": [*batch["messages"][1:], {"id": "b3", "role": "user", "content": "new"}]}
    answer = await api.client.post(f"/v1/conversations/{c['id']}/messages:batch", json=mixed, headers=headers)
    assert answer.status_code == 201
    assert [(r["created"], r["message"]["seq"]) for r in answer.json()["results"]] == [
        (False, 2),
        (False, 3),
        (True, 4),
    ]


async def test_paging_by_seq(api: Api) -> None:
    headers = await api.user()
    c = await api.conversation(headers)
    await api.append(headers, c["id"], *[str(i) for i in range(1, 31)])
    url = f"/v1/conversations/{c['id']}/messages"

    async def page(**params: int) -> tuple[list[int], bool]:
        body = (await api.client.get(url, params=params, headers=headers)).json()
        return [m["seq"] for m in body["messages"]], body["has_more"]

    assert await page(limit=10) == (list(range(21, 31)), True)
    assert await page(before=21, limit=10) == (list(range(11, 21)), True)
    assert await page(before=11, limit=20) == (list(range(1, 11)), False)
    assert await page(after=25) == (list(range(26, 31)), False)
    assert await page(after=0, limit=5) == ([1, 2, 3, 4, 5], True)
    assert await page(after=10, before=14) == ([11, 12, 13], False)


async def test_limits(tmp_path: Path) -> None:
    async with running_api(
        tmp_path,
        max_message_bytes=100,
        max_batch_messages=3,
        max_messages_per_conversation=4,
        max_conversations_per_user=2,
    ) as api:
        headers = await api.user()
        c = await api.conversation(headers)
        url = f"/v1/conversations/{c['id']}/messages"

        big = await api.client.post(url, json={"role": "user", "content": "x" * 101}, headers=headers)
        assert (big.status_code, big.json()["code"], big.json()["limit"]) == (413, "message_too_large", 100)
        meta = await api.client.post(
            url, json={"role": "user", "content": "x", "metadata": {"k": "y" * 100}}, headers=headers
        )
        assert meta.json()["code"] == "message_too_large"

        too_many = {"messages": [{"role": "user", "content": "x"}] * 4}
        batch = await api.client.post(f"{url}:batch", json=too_many, headers=headers)
        assert (batch.status_code, batch.json()["code"]) == (413, "batch_too_large")

        await api.append(headers, c["id"], "1", "2", "3")
        over = await api.client.post(
            f"{url}:batch", json={"messages": [{"role": "user", "content": "4"}] * 2}, headers=headers
        )
        assert (over.status_code, over.json()["code"]) == (409, "message_limit")
        state = (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).json()
        assert state["message_count"] == 3  # all or nothing

        await api.conversation(headers)
        third = await api.client.post("/v1/conversations", json={"workspace": "w1"}, headers=headers)
        assert (third.status_code, third.json()["code"]) == (409, "conversation_limit")


async def test_trim_policy_keeps_the_newest(tmp_path: Path) -> None:
    async with running_api(tmp_path, max_messages_per_conversation=3, message_limit_policy="trim") as api:
        headers = await api.user()
        c = await api.conversation(headers)
        await api.append(headers, c["id"], "1", "2", "3")
        await api.append(headers, c["id"], "4", "5")
        body = (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).json()
        assert [m["content"] for m in body["messages"]] == ["3", "4", "5"]
        assert (body["message_count"], body["last_seq"], body["has_more_messages"]) == (3, 5, False)


async def test_body_limit_with_and_without_content_length(tmp_path: Path) -> None:
    async with running_api(tmp_path, max_body_bytes=2048) as api:
        headers = await api.user()
        c = await api.conversation(headers)
        url = f"/v1/conversations/{c['id']}/messages"
        payload = b'{"role":"user","content":"' + b"x" * 4000 + b'"}'
        declared = await api.client.post(
            url, content=payload, headers={**headers, "content-type": "application/json"}
        )
        assert (declared.status_code, declared.json()["code"]) == (413, "body_too_large")

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(0, len(payload), 500):
                yield payload[i : i + 500]

        streamed = await api.client.post(
            url, content=chunks(), headers={**headers, "content-type": "application/json"}
        )
        assert (streamed.status_code, streamed.json()["code"]) == (413, "body_too_large")
        assert (await api.client.get(f"/v1/conversations/{c['id']}", headers=headers)).json()[
            "message_count"
        ] == 0
