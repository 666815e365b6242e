"""Search during a Redis outage: the durable conversations are searched as always, the ephemeral
ones only as far as the fallback holds them, and the answer says `partial` for `ephemeral`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.api.conftest import running_api
from tests.outage.conftest import degraded, wait_for
from tests.redis_servers import RedisProcess


@pytest.mark.parametrize("outage", ["fallback", "refuse"])
async def test_search_during_an_outage_answers_what_it_can_and_says_partial(
    tmp_path: Path, redis_server: RedisProcess, outage: str
) -> None:
    async with running_api(tmp_path, ephemeral_url=redis_server.url, ephemeral_outage=outage) as api:
        headers = await api.user()
        durable = await api.conversation(headers, mode="durable")
        ephemeral = await api.conversation(headers, mode="ephemeral")
        await api.append(headers, durable["id"], "walrus on disk")
        await api.append(headers, ephemeral["id"], "walrus in redis")
        before = (await api.client.get("/v1/search", params={"q": "walrus"}, headers=headers)).json()
        assert {h["conversation_id"] for h in before["items"]} == {durable["id"], ephemeral["id"]}
        assert (before["partial"], before["partial_modes"]) == (False, [])

        redis_server.stop()
        first = await api.client.get("/v1/search", params={"q": "walrus"}, headers=headers)
        assert first.status_code == 200, first.text  # the search that meets the outage first
        assert (first.json()["partial_modes"], len(first.json()["items"])) == (["ephemeral"], 1)
        await wait_for(degraded(api))
        found = {durable["id"]}
        if outage == "fallback":
            born = await api.conversation(headers, mode="ephemeral")
            await api.append(headers, born["id"], "walrus in memory")
            found.add(born["id"])
        answer = await api.client.get("/v1/search", params={"q": "walrus"}, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert {h["conversation_id"] for h in body["items"]} == found
        assert (body["partial"], body["partial_modes"]) == (True, ["ephemeral"])
