"""Identifiers are exactly what they claim: an id or a token claim with a line break anywhere, a
trailing newline included, is refused wherever it enters (tokens, HTTP, WebSocket frames, the service
called directly, cursors, tenant creation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatkeep.api.ws.frames import BadFrame, parse
from chatkeep.errors import InvalidInput
from chatkeep.models import Role
from chatkeep.service.auth import Principal, issue_token
from chatkeep.service.conversations import NewConversation
from chatkeep.service.messages import MessageInput
from tests.api.conftest import auth, running_api
from tests.conftest import unique

BREAKS = ["\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x0b", "\x0c"]
HOSTILE = [f"alice{b}" for b in BREAKS] + [f"{b}alice" for b in BREAKS] + [f"al{b}ice" for b in BREAKS]

# Conversation ids chosen with a user token are random UUIDs.
C1 = "0b6f3a5e-2c44-4d1e-9a57-3f0e8c1d2b61"


async def test_a_user_claim_with_a_line_break_is_refused(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, _ = await api.tenant()
        ok = api.token(tenant, "alice")
        assert (await api.client.get("/v1/conversations", headers=auth(ok))).status_code == 200
        for user in HOSTILE:
            answer = await api.client.get("/v1/conversations", headers=auth(api.token(tenant, user)))
            assert answer.status_code == 401, (user, answer.text)
            assert answer.json()["code"] == "invalid_token"
            # and it owns nothing: a conversation cannot be created under it
            create = await api.client.post(
                "/v1/conversations", json={"workspace": "w1"}, headers=auth(api.token(tenant, user))
            )
            assert create.status_code == 401, (user, create.text)


async def test_a_workspace_or_tenant_claim_with_a_line_break_is_refused(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, _ = await api.tenant()
        for workspace in ["w1\n", "w1\r", "w1\u2028"]:
            token = api.token(tenant, "alice", [workspace])
            answer = await api.client.get("/v1/conversations", headers=auth(token))
            assert answer.status_code == 401, (workspace, answer.text)
            assert answer.json()["code"] == "invalid_token"
        # the tenant claim: signed with the right secret, naming the tenant with a newline
        forged = issue_token(
            type(tenant)(**{**_fields(tenant), "id": tenant.id + "\n"}), "alice", ["*"], ttl_seconds=600
        )
        answer = await api.client.get("/v1/conversations", headers=auth(forged))
        assert answer.status_code == 401
        assert "tenant" in answer.json()["detail"] and "unknown" not in answer.json()["detail"]


def _fields(tenant: object) -> dict[str, object]:
    return {name: getattr(tenant, name) for name in tenant.__slots__}  # type: ignore[attr-defined]


async def test_the_service_refuses_ids_with_line_breaks(tmp_path: Path) -> None:
    """Callers that skip the HTTP schema (the CLI, embedding code) meet the same rule."""
    async with running_api(tmp_path) as api:
        tenant, _ = await api.tenant()
        alice = Principal(tenant=tenant, user="alice", workspaces=None)
        key = Principal(tenant=tenant, user=None, workspaces=None)
        chat = api.services.chat
        for bad in ["c1\n", "c1\r", "c1\u2028"]:
            with pytest.raises(InvalidInput) as refused:
                await chat.create_conversation(alice, NewConversation(workspace="w1", id=bad))
            assert refused.value.code == "invalid_id"
            with pytest.raises(InvalidInput):
                await chat.create_conversation(alice, NewConversation(workspace=bad))
            with pytest.raises(InvalidInput):
                await chat.create_conversation(key, NewConversation(workspace="w1", user=bad))
        conversation, _ = await chat.create_conversation(alice, NewConversation(workspace="w1", id=C1))
        for bad in ["m1\n", "m1\r", "m1\u2028"]:
            with pytest.raises(InvalidInput) as refused:
                await chat.append_messages(alice, conversation.id, [MessageInput(Role.USER, "hi", id=bad)])
            assert refused.value.code == "invalid_id"
        with pytest.raises(InvalidInput):
            await chat.get_conversation(alice, "c1\n")
        assert (await chat.get_conversation(alice, C1)).message_count == 0
        for bad in ["acme\n", "acme\r\n", "acme\u2028"]:
            with pytest.raises(InvalidInput) as refused:
                await api.services.tenants.create(unique("Tenant"), tenant_id=bad)
            assert refused.value.code == "invalid_id"


async def test_http_ids_and_cursors_with_line_breaks_are_refused(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, key = await api.tenant()
        alice = auth(api.token(tenant, "alice"))
        await api.conversation(alice, id=C1)
        for bad in ["c2\n", "c2\r", "c2\u2028"]:
            for body in ({"workspace": "w1", "id": bad}, {"workspace": bad}):
                answer = await api.client.post("/v1/conversations", json=body, headers=alice)
                assert 400 <= answer.status_code < 500, (body, answer.text)
            message = {"role": "user", "content": "x", "id": bad.replace("c2", "m2")}
            answer = await api.client.post(f"/v1/conversations/{C1}/messages", json=message, headers=alice)
            assert 400 <= answer.status_code < 500, answer.text
            answer = await api.client.get("/v1/conversations", params={"user": bad}, headers=auth(key))
            assert 400 <= answer.status_code < 500, answer.text
        answer = await api.client.get(f"/v1/conversations/{C1}%0A", headers=alice)
        assert 400 <= answer.status_code < 500, answer.text
        cursor = f"0.1.{C1}\n"  # a cursor is <pinned>.<last activity>.<id>
        answer = await api.client.get("/v1/conversations", params={"cursor": cursor}, headers=alice)
        assert 400 <= answer.status_code < 500, answer.text
        assert answer.json()["code"] == "invalid_cursor"
        listed = await api.client.get("/v1/conversations", headers=alice)
        assert [c["id"] for c in listed.json()["items"]] == [C1]


@pytest.mark.parametrize("bad", ["c1\n", "c1\r", "c1\u2028", "\nc1"])
def test_websocket_frames_with_line_breaks_in_ids_are_refused(bad: str) -> None:
    frames = [
        {"type": "subscribe", "conversation_id": bad},
        {"type": "subscribe", "workspace": bad},
        {"type": "heartbeat", "conversation_id": bad},
        {"type": "stream.delta", "conversation_id": bad, "message_id": "m1", "text": "x"},
        {"type": "stream.delta", "conversation_id": "c1", "message_id": bad, "text": "x"},
        {"type": "stream.finish", "conversation_id": "c1", "message_id": bad},
        {"type": "append", "conversation_id": "c1", "message": {"role": "user", "id": bad}},
    ]
    for frame in frames:
        with pytest.raises(BadFrame) as refused:
            parse(json.dumps(frame))
        assert refused.value.error.code == "invalid_frame", frame
