"""Liveness, readiness (which names a store that is down) and Prometheus metrics."""

from __future__ import annotations

import re
from pathlib import Path

from tests.api.conftest import running_api


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def test_healthz_and_readyz_and_a_store_going_down(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        assert (await api.client.get("/healthz")).json()["status"] == "ok"
        ready = await api.client.get("/readyz")
        everything_up = {"durable": "up", "ephemeral": "up", "transient": "up"}
        assert ready.status_code == 200 and ready.json() == {"status": "ready", "stores": everything_up}

        await api.services.router.durable.close()
        down = await api.client.get("/readyz")
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        assert down.json()["code"] == "not_ready" and down.json()["stores"]["durable"] == "down"
        assert 'chatkeep_store_up{store="durable"} 0.0' in (await api.client.get("/metrics")).text

        tenant_key = await api.client.get("/v1/conversations", headers={"Authorization": "Bearer ck_unknown"})
        assert (tenant_key.status_code, tenant_key.json()["code"]) == (503, "store_unavailable")

        await api.services.router.durable.connect()
        assert (await api.client.get("/readyz")).status_code == 200


async def test_metrics_count_requests_latencies_and_appends(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        headers = await api.user()
        c = await api.conversation(headers)
        messages = await api.append(headers, c["id"], "a", "b", "c")
        replay = {"messages": [{"id": messages[0]["id"], "role": "user", "content": "a"}]}
        await api.client.post(f"/v1/conversations/{c['id']}/messages:batch", json=replay, headers=headers)
        await api.client.get("/v1/nope", headers=headers)

        text = (await api.client.get("/metrics")).text
        assert metric(text, "chatkeep_messages_appended_total", mode="durable") == 3
        assert metric(text, "chatkeep_messages_replayed_total", mode="durable") == 1
        route = "/v1/conversations/{conversation_id}/messages:batch"
        assert metric(text, "chatkeep_http_requests_total", method="POST", route=route, status="201") == 1
        assert metric(text, "chatkeep_http_requests_total", method="POST", route=route, status="200") == 1
        assert (
            metric(text, "chatkeep_http_requests_total", method="GET", route="unmatched", status="404") == 1
        )
        assert metric(text, "chatkeep_http_request_duration_seconds_count", method="POST", route=route) == 2
