"""Export everything from a populated server, import it into an empty one, export again: the same
bytes, in every format, over SQLite and PostgreSQL (real `chatkeep serve` processes)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from chatkeep.models import Tenant
from chatkeep.service.auth import issue_token
from tests import services
from tests.conftest import drop_schema
from tests.server import ServerProcess

TENANT = "acme"
SETTINGS = {
    "CHATKEEP_USER_RATE_PER_SECOND": "0",
    "CHATKEEP_KEY_RATE_PER_SECOND": "0",
    "CHATKEEP_DEV_MODE": "false",
    "CHATKEEP_STREAM_TIMEOUT_SECONDS": "3600",  # the open stream below stays open
    "CHATKEEP_MAX_MESSAGES_PER_CONVERSATION": "5",
    "CHATKEEP_MESSAGE_LIMIT_POLICY": "trim",
    "CHATKEEP_MAX_BODY_BYTES": str(8 << 20),
}


def durable(kind: str, tmp_path: Path, name: str) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/{name}.db", None
    schema = f"ck_transfer_{uuid.uuid4().hex[:8]}"
    return f"{services.require_postgres()}?schema={schema}", schema


@pytest.fixture(params=["sqlite", "postgres"])
async def kind(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    yield request.param


def create_tenant(env: dict[str, str]) -> tuple[str, Tenant]:
    """The same tenant id on each server, made by the CLI: its API key and a Tenant to sign tokens."""
    result = subprocess.run(
        [sys.executable, "-m", "chatkeep", "tenants", "create", "Acme", "--id", TENANT],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    fields = {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in result.stdout.splitlines())
    }
    return fields["api key"], Tenant(TENANT, "Acme", "", fields["token secret"], 0)


async def populate(client: httpx.AsyncClient, key: str, tenant: Tenant) -> None:
    h = {"Authorization": f"Bearer {key}"}

    async def post(path: str, body: dict[str, Any], headers: dict[str, str] = h) -> dict[str, Any]:
        r = await client.post(path, json=body, headers=headers)
        assert r.status_code in (200, 201), r.text
        answer: dict[str, Any] = r.json()
        return answer

    plan = [
        ("alice", "w1", "durable", {"title": "Trip", "tags": ["travel", "x"], "starred": True}),
        ("alice", "w2", "ephemeral", {"title": "Scratch", "pinned": True}),
        ("alice", "w1", "ephemeral", {"title": "Notes"}),
        ("bob", "w1", "durable", {"title": "Bob's", "archived": True}),
        ("bob", "w3", "local", {"title": "Local only"}),
        ("carol", "w2", "durable", {}),
    ]
    ids = []
    for n, (user, workspace, mode, extra) in enumerate(plan):
        c = await post(
            "/v1/conversations",
            {"workspace": workspace, "user": user, "mode": mode, "id": f"conv-{n}", **extra},
        )
        ids.append(c["id"])
    for n, cid in enumerate(ids):
        if n == 4:
            continue  # local: no messages on the server
        batch = [
            {
                "role": "user" if k % 2 == 0 else "assistant",
                "content": f"message {k} of {cid} – ünïcode ✓",
                "id": f"m{k}",
                "metadata": {"k": k, "nested": {"list": [1, 2.5, None]}} if k == 1 else None,
                "parts": [{"type": "image", "url": f"https://img.test/{k}.png"}] if k == 2 else None,
                "usage": {"input_tokens": k, "output_tokens": 2 * k},
            }
            for k in range(3 + n)  # conv-3 and conv-5 pass the limit of 5: their oldest are trimmed
        ]
        for start in range(0, len(batch), 3):
            await post(f"/v1/conversations/{cid}/messages:batch", {"messages": batch[start : start + 3]})
    # streaming replies: one finished with usage, one left open, one interrupted
    for cid, mid in (("conv-0", "s1"), ("conv-1", "s2"), ("conv-2", "s3")):
        await post(
            f"/v1/conversations/{cid}/messages", {"role": "assistant", "id": mid, "status": "streaming"}
        )
        await post(f"/v1/conversations/{cid}/messages/{mid}/deltas", {"text": "Hello"})
        await post(f"/v1/conversations/{cid}/messages/{mid}/deltas", {"text": ", world"})
    await post(
        "/v1/conversations/conv-0/messages/s1/finish", {"usage": {"input_tokens": 7, "output_tokens": 11}}
    )
    await post("/v1/conversations/conv-2/messages/s3/finish", {"status": "interrupted"})
    # a metadata change (version 2) and a user's own conversation, made with a user token
    r = await client.patch(
        "/v1/conversations/conv-3", json={"title": "Bob's (renamed)"}, headers={**h, "If-Match": "*"}
    )
    assert r.status_code == 200, r.text
    dana = {"Authorization": f"Bearer {issue_token(tenant, 'dana', ['*'], ttl_seconds=600)}"}
    mine = await post("/v1/conversations", {"workspace": "w1", "title": "Dana's"}, dana)
    await post(f"/v1/conversations/{mine['id']}/messages", {"role": "user", "content": "hi"}, dana)


async def export_all(client: httpx.AsyncClient, key: str) -> dict[str, bytes]:
    h = {"Authorization": f"Bearer {key}"}
    found = {}
    for fmt in ("json", "jsonl", "markdown"):
        r = await client.get("/v1/export", params={"format": fmt}, headers=h)
        assert r.status_code == 200, r.text
        found[fmt] = r.content
    return found


async def test_export_import_export_gives_the_same_files(kind: str, tmp_path: Path) -> None:
    schemas = []
    try:
        source_url, schema = durable(kind, tmp_path, "source")
        schemas.append(schema)
        target_url, schema = durable(kind, tmp_path, "target")
        schemas.append(schema)
        source_env = {**SETTINGS, "CHATKEEP_DURABLE_URL": source_url}
        target_env = {**SETTINGS, "CHATKEEP_DURABLE_URL": target_url}
        source_key, tenant = create_tenant(source_env)
        target_key, _ = create_tenant(target_env)
        with ServerProcess(source_env, tmp_path / "source.log") as source:
            async with httpx.AsyncClient(base_url=source.url, timeout=30) as client:
                await populate(client, source_key, tenant)
                first = await export_all(client, source_key)
        with ServerProcess(target_env, tmp_path / "target.log") as target:
            async with httpx.AsyncClient(base_url=target.url, timeout=30) as client:
                h = {"Authorization": f"Bearer {target_key}"}
                assert (await client.get("/v1/export", params={"format": "jsonl"}, headers=h)).content == b""
                r = await client.post(
                    "/v1/import",
                    content=first["jsonl"],
                    headers={**h, "Content-Type": "application/x-ndjson"},
                )
                assert r.json() == {"imported": 7, "skipped": 0, "failed": 0, "messages": 25, "errors": []}
                second = await export_all(client, target_key)
                again = await client.post("/v1/import", content=first["json"], headers=h)
                assert again.json() == {"imported": 0, "skipped": 7, "failed": 0, "messages": 0, "errors": []}
                assert await export_all(client, target_key) == second
    finally:
        for schema in schemas:
            if schema is not None:
                await drop_schema(schema)
    assert second == first
    lines = first["jsonl"].decode().splitlines()
    assert len(lines) == 7 + 25
    text = first["jsonl"].decode()
    kept = ['"status":"streaming"', '"status":"interrupted"', '"mode":"ephemeral"', '"mode":"local"']
    kept += ['"seq":4,', '"input_tokens":7', '"url":"https://img.test/2.png"', '"version":2']
    for expected in kept:
        assert expected in text, expected
