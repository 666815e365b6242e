"""`export` and `import_file` of both clients against the real server: a user's conversations out,
and in again as another user's, once."""

from __future__ import annotations

import json

from chatkeep.client import AsyncClient, Client
from tests.client.conftest import FAST, Server
from tests.conftest import unique


async def test_export_and_import_through_the_clients(server: Server, client: AsyncClient) -> None:
    chat = await client.create_conversation(unique("w"), title="Exported")
    await client.append(chat.id, "user", "hello")
    exported = await client.export("jsonl")
    records = [json.loads(line) for line in exported.decode().splitlines()]
    assert [(r["type"], r.get("title"), r.get("content")) for r in records] == [
        ("conversation", "Exported", None),
        ("message", None, "hello"),
    ]
    assert (await client.export("markdown", conversation=chat.id)).startswith(b"# Exported\n")

    # into the tenant of the API key (another tenant than the demo user's), for another user
    owner = unique("owner")
    with Client(server.url, server.api_key, retry=FAST) as tenant:
        summary = tenant.import_file(exported, "jsonl", user=owner, filename="mine.jsonl")
        assert (summary["imported"], summary["failed"]) == (1, 0)
        assert tenant.import_file(exported, "jsonl", user=owner)["skipped"] == 1
        again = json.loads(tenant.export("json", user=owner))
        assert [(c["id"], c["user"], c["title"]) for c in again["conversations"]] == [
            (chat.id, owner, "Exported")
        ]
        other = tenant.import_file(exported, "jsonl", user=unique("other"), filename="mine.jsonl")
        assert other["errors"][0]["code"] == "import_conflict"  # that id holds the first import
