"""/v1/export and /v1/import in the app: ChatGPT exports, message lists, bad files, and scope (a
user token exports and imports only its own)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import orjson

from chatkeep.service.ids import RANDOM_ID_RE
from tests.api.conftest import Api, auth
from tests.chatgpt_export import BRANCH, branching_conversation, simple_conversation
from tests.conftest import unique


async def imported(api: Api, headers: dict[str, str], body: Any, **params: str) -> dict[str, Any]:
    """POST /v1/import: JSON bodies as JSON, JSON Lines (bytes) as such."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    media = "application/x-ndjson" if isinstance(body, bytes) else "application/json"
    r = await api.client.post(
        "/v1/import", content=content, params=params, headers={**headers, "Content-Type": media}
    )
    assert r.status_code == 200, r.text
    summary: dict[str, Any] = r.json()
    return summary


async def exported(api: Api, headers: dict[str, str], **params: str) -> list[dict[str, Any]]:
    r = await api.client.get("/v1/export", params={"format": "jsonl", **params}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in r.text.splitlines()]


async def test_a_chatgpt_export_imports_the_current_branch_once(api: Api) -> None:
    _, key = await api.tenant()
    h = auth(key)
    cid = str(uuid.uuid4())
    export = [branching_conversation(cid), simple_conversation()]
    summary = await imported(api, h, export, user="alice", workspace="chats")
    assert summary == {"imported": 2, "skipped": 0, "failed": 0, "messages": 7, "errors": []}

    r = await api.client.get(f"/v1/conversations/{cid}", params={"messages": 50}, headers=h)
    body = r.json()
    c = body["conversation"] if "conversation" in body else body
    assert (c["title"], c["user"], c["workspace"], c["mode"]) == (
        "Cats and sums",
        "alice",
        "chats",
        "durable",
    )
    assert (c["created_at"], c["last_activity_at"]) == (
        "2024-10-27T03:33:20.250Z",
        "2024-10-27T03:33:29.250Z",
    )
    assert (c["message_count"], c["last_seq"], c["last_message_preview"]) == (5, 5, "Here is your cat")
    messages = (await api.client.get(f"/v1/conversations/{cid}/messages", headers=h)).json()["messages"]
    got = [(m["id"], m["role"], m["content"], m["parts"], m["seq"], m["created_at"]) for m in messages]
    assert got == [
        (mid, role, content, parts, seq, iso)
        for seq, (mid, role, content, parts, iso) in enumerate(
            [(*b[:4], _iso(b[4])) for b in BRANCH], start=1
        )
    ]

    before = await exported(api, h)
    again = await imported(api, h, export, user="alice", workspace="chats")
    assert again == {"imported": 0, "skipped": 2, "failed": 0, "messages": 0, "errors": []}
    assert await exported(api, h) == before


def _iso(ms: int) -> str:
    from chatkeep.codec import iso

    return iso(ms) or ""


async def test_a_bad_conversation_names_file_record_and_field_and_stores_nothing_of_it(api: Api) -> None:
    _, key = await api.tenant()
    h = auth(key)
    bad = branching_conversation()
    bad["mapping"]["a1"]["message"]["author"]["role"] = "robot"
    good = simple_conversation()
    summary = await imported(
        api, h, [good, bad], user="alice", workspace="w", filename="conversations-007.json"
    )
    assert (summary["imported"], summary["failed"]) == (1, 1)
    error = summary["errors"][0]
    assert error["file"] == "conversations-007.json"
    assert error["record"] == "1" and error["id"] == bad["id"]
    assert error["field"] == "mapping['a1'].message.author.role"
    assert error["detail"].startswith(f"conversations-007.json: record 1 (conversation {bad['id']}): mapping")
    r = await api.client.get(f"/v1/conversations/{bad['id']}", headers=h)
    assert r.status_code == 404
    assert [c["id"] for c in await exported(api, h) if c["type"] == "conversation"] == [good["id"]]


async def test_a_bad_chatkeep_record_names_its_field(api: Api) -> None:
    _, key = await api.tenant()
    h = auth(key)
    source_tenant, source_key = await api.tenant()
    conversation = await api.conversation(auth(source_key), user="u", id="plain-id")
    await api.append(auth(source_key), conversation["id"], "one", "two")
    lines = (await api.client.get("/v1/export", params={"format": "jsonl"}, headers=auth(source_key))).text
    records = [json.loads(line) for line in lines.splitlines()]
    records[2]["seq"] = "two"
    body = b"".join(orjson.dumps(r) + b"\n" for r in records)
    summary = await imported(api, h, body)
    assert summary["failed"] == 1 and summary["imported"] == 0
    assert summary["errors"][0]["field"] == "messages[1].seq"
    records[2]["seq"] = 5  # a gap: caught by the store's rules, named too
    summary = await imported(api, h, b"".join(orjson.dumps(r) + b"\n" for r in records))
    assert (summary["errors"][0]["field"], summary["errors"][0]["code"]) == ("seq", "invalid_import")
    assert await exported(api, h) == []
    truncated = body[: len(body) // 2]
    summary = await imported(api, h, truncated)
    assert summary["failed"] == 1 and summary["errors"][0]["field"] == "json"
    r = await api.client.post("/v1/import", content=b"\xff\xfe", headers={**h, "Content-Type": "text/plain"})
    assert (r.status_code, r.json()["code"]) == (422, "invalid_json")


async def test_a_message_list_becomes_one_conversation_once(api: Api) -> None:
    _, key = await api.tenant()
    h = auth(key)
    image = {"type": "image_url", "image_url": {"url": "u"}}
    chat = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Look"}, image]},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "t1", "type": "function"}]},
        {"role": "tool", "content": "42", "tool_call_id": "t1"},
    ]  # fmt: skip
    assert (await imported(api, h, chat, user="bob", workspace="w"))["imported"] == 1
    assert (await imported(api, h, {"messages": chat}, user="bob", workspace="w"))["skipped"] == 1
    records = await exported(api, h)
    conversation, *messages = records
    assert RANDOM_ID_RE.fullmatch(conversation["id"])
    assert [(m["id"], m["role"], m["content"]) for m in messages] == [
        ("m1", "system", "Be brief."),
        ("m2", "user", "Look"),
        ("m3", "assistant", ""),
        ("m4", "tool", "42"),
    ]
    assert messages[1]["parts"] == [image]
    assert messages[2]["metadata"] == {"tool_calls": [{"id": "t1", "type": "function"}]}
    no_owner = await imported(api, h, chat)
    assert no_owner["failed"] == 1 and no_owner["errors"][0]["code"] == "user_required"


async def test_a_user_token_exports_and_imports_only_its_own(api: Api) -> None:
    tenant, key = await api.tenant()
    alice = auth(api.token(tenant, "alice"))
    bob = auth(api.token(tenant, "bob", ["w1"]))
    mine = await api.conversation(alice)
    await api.append(alice, mine["id"], "alice's")
    theirs = await api.conversation(bob)
    await api.append(bob, theirs["id"], "bob's")
    assert [r["id"] for r in await exported(api, alice) if r["type"] == "conversation"] == [mine["id"]]
    assert await exported(api, alice, user="bob") == []
    r = await api.client.get("/v1/export", params={"conversation": theirs["id"]}, headers=alice)
    assert r.status_code == 404

    # the tenant's whole export, imported by bob into another tenant: everything becomes bob's
    everything = (await api.client.get("/v1/export", params={"format": "jsonl"}, headers=auth(key))).content
    other, _ = await api.tenant()
    bob_elsewhere = auth(api.token(other, "bob", ["w1"]))
    summary = await imported(api, bob_elsewhere, everything)
    assert (summary["imported"], summary["failed"]) == (2, 0)
    records = await exported(api, bob_elsewhere)
    assert {r["user"] for r in records if r["type"] == "conversation"} == {"bob"}
    assert {r["id"] for r in records if r["type"] == "conversation"} == {mine["id"], theirs["id"]}

    # a chosen id that is not random is replaced for a user token, the same way each time
    _, plain_key = await api.tenant()
    plain = await api.conversation(auth(plain_key), user="x", id=unique("plain"))
    body = (await api.client.get("/v1/export", params={"format": "json"}, headers=auth(plain_key))).content
    summary = await imported(api, bob_elsewhere, body)
    assert summary["imported"] == 1
    ids = {r["id"] for r in await exported(api, bob_elsewhere) if r["type"] == "conversation"}
    derived = (ids - {mine["id"], theirs["id"]}).pop()
    assert derived != plain["id"] and RANDOM_ID_RE.fullmatch(derived)
    assert (await imported(api, bob_elsewhere, body))["skipped"] == 1

    # a workspace the token does not allow fails, and stores nothing
    summary = await imported(api, bob_elsewhere, everything, workspace="w2")
    assert summary["failed"] == 2 and summary["errors"][0]["code"] == "workspace_forbidden"
