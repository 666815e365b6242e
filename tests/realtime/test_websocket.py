"""WS /v1/ws: authentication, live events, writes over the socket, and bad input."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from chatkeep.api.ws import Connection
from tests.realtime.conftest import Live, bearer, live_server


@pytest.fixture
async def live(tmp_path: Path):  # type: ignore[no-untyped-def]
    async with live_server(tmp_path) as server:
        yield server


async def test_authentication_by_query_or_first_frame(live: Live) -> None:
    tenant = await live.tenant()
    token = live.token(tenant, "ann", ["w1"])
    async with live.socket(token) as client:
        await client.send(type="ping", id="p1")
        assert await client.next() == {"type": "pong", "id": "p1"}
    async with connect(f"{live.ws_url}?token={token}") as ws:
        ready = orjson.loads(await ws.recv())
        assert (ready["type"], ready["tenant"], ready["user"], ready["workspaces"]) == (
            "ready",
            tenant.id,
            "ann",
            ["w1"],
        )


@pytest.mark.parametrize(
    "first",
    [
        '{"type": "auth", "token": "forged"}',
        '{"type": "subscribe", "conversation_id": "c"}',
        "not json",
        '{"type":"auth"}',
    ],
)
async def test_a_connection_that_does_not_authenticate_is_closed_4401(live: Live, first: str) -> None:
    async with live.socket() as client:
        await client.ws.send(first)
        with pytest.raises(ConnectionClosed) as closed:
            await client.next()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_silence_is_closed_4401_then_4408(tmp_path: Path) -> None:
    async with live_server(tmp_path, ws_auth_timeout_seconds=0.3, ws_idle_timeout_seconds=0.5) as live:
        async with live.socket() as client:
            with pytest.raises(ConnectionClosed) as closed:
                await client.next()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
        tenant = await live.tenant()
        async with live.socket(live.token(tenant, "ann")) as client:
            with pytest.raises(ConnectionClosed) as closed:
                await client.next(timeout=3)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
        assert live.services.hub.followers(tenant.id) == 0


async def test_followers_of_a_conversation_and_a_workspace_see_it_live(live: Live) -> None:
    tenant = await live.tenant()
    token = live.token(tenant, "ann")
    c = await live.conversation(token)
    async with live.socket(token) as watcher, live.socket(token) as lister:
        assert (await watcher.subscribe(conversation_id=c["id"]))["type"] == "subscribed"
        assert (await lister.subscribe(workspace="w1"))["workspace"] == "w1"
        await live.append(token, c["id"], "hello")
        for client in (watcher, lister):
            event = await client.until(lambda f: f["type"] == "message.created")
            assert (event["conversation_id"], event["seq"], event["message"]["content"]) == (
                c["id"],
                1,
                "hello",
            )
        await live.http.patch(
            f"/v1/conversations/{c['id']}",
            json={"title": "Renamed"},
            headers={**bearer(token), "If-Match": "*"},
        )
        updated = await watcher.until(lambda f: f["type"] == "conversation.updated")
        assert (updated["version"], updated["conversation_id"], updated["conversation"]["title"]) == (
            2,
            c["id"],
            "Renamed",
        )
        assert (await lister.until(lambda f: f["type"] == "conversation.updated"))["seq"] == 1
        other = await live.conversation(token, workspace="w2")
        created = await live.conversation(token)
        event = await lister.until(lambda f: f["type"] == "conversation.created")
        assert event["conversation_id"] == created["id"] != other["id"]  # w2 is not followed


async def test_writes_over_the_socket_follow_the_rest_rules(live: Live) -> None:
    tenant = await live.tenant()
    token = live.token(tenant, "ann")
    c = await live.conversation(token, mode="ephemeral")
    async with live.socket(token) as client:
        message = {"id": "m1", "role": "user", "content": "over the socket"}
        await client.send(type="append", id="a1", conversation_id=c["id"], message=message)
        ack = await client.until(lambda f: f.get("id") == "a1")
        assert (ack["type"], ack["seq"], ack["created"], ack["message"]["content"]) == (
            "ack",
            1,
            True,
            "over the socket",
        )
        await client.send(type="append", id="a2", conversation_id=c["id"], message=message)
        again = await client.until(lambda f: f.get("id") == "a2")
        assert (again["seq"], again["created"]) == (1, False)
        await client.send(type="heartbeat", id="h", conversation_id=c["id"])
        beat = await client.until(lambda f: f.get("id") == "h")
        assert beat["type"] == "ack" and beat["expires_at"] is not None
        await client.send(
            type="append", id="a3", conversation_id=c["id"], message={"role": "user", "content": "x" * 70_000}
        )
        error = await client.until(lambda f: f.get("id") == "a3")
        assert (error["type"], error["code"], error["status"]) == ("error", "message_too_large", 413)
    stored = (await live.http.get(f"/v1/conversations/{c['id']}", headers=bearer(token))).json()
    assert [m["id"] for m in stored["messages"]] == ["m1"]


BAD_FRAMES = [
    ("not json at all", "invalid_json"),
    ("[1, 2, 3]", "unknown_type"),
    ('{"type": "teleport"}', "unknown_type"),
    ('{"type": "subscribe"}', "invalid_frame"),
    ('{"type": "subscribe", "conversation_id": "../etc"}', "invalid_frame"),
    ('{"type": "subscribe", "conversation_id": "c", "workspace": "w"}', "invalid_frame"),
    ('{"type": "append", "conversation_id": "c", "message": {"role": "god"}}', "invalid_frame"),
    ('{"type": "append", "conversation_id": "c", "message": {"role": "user"}, "extra": 1}', "invalid_frame"),
    ('{"type": "subscribe", "conversation_id": "nobody-has-this"}', "not_found"),
    ('{"type": "subscribe", "workspace": "forbidden-ws"}', "workspace_forbidden"),
]


@pytest.mark.parametrize(("raw", "code"), BAD_FRAMES, ids=[code + ":" + raw[:20] for raw, code in BAD_FRAMES])
async def test_bad_frames_get_an_error_frame_and_the_connection_goes_on(
    live: Live, raw: str, code: str
) -> None:
    tenant = await live.tenant()
    async with live.socket(live.token(tenant, "ann", ["w1"])) as client:
        await client.ws.send(raw)
        error = await client.next()
        assert (error["type"], error["code"]) == ("error", code)
        await client.send(type="ping", id="still-there")
        assert (await client.next())["type"] == "pong"


async def test_another_users_or_tenants_conversation_leaks_nothing(live: Live) -> None:
    tenant, other_tenant = await live.tenant(), await live.tenant()
    owner = live.token(tenant, "ann")
    c = await live.conversation(owner, title="private-title-e1c4")
    intruders = [
        live.token(tenant, "bob"),
        live.token(other_tenant, "ann"),
        live.token(tenant, "ann", ["w9"]),
    ]
    for token in intruders:
        async with live.socket(token) as client:
            for frame in (
                {"type": "subscribe", "conversation_id": c["id"], "after_seq": 0},
                {"type": "append", "conversation_id": c["id"], "message": {"role": "user", "content": "x"}},
                {"type": "heartbeat", "conversation_id": c["id"]},
            ):
                await client.send(id="x", **frame)
                error = await client.next()
                assert (error["type"], error["code"]) == ("error", "not_found")
            await live.append(owner, c["id"], "secret-text-77a1")
            await client.send(type="ping", id="p")
            assert (await client.next())["type"] == "pong"  # no event of the owner's came first
    assert (await live.http.get(f"/v1/conversations/{c['id']}", headers=bearer(owner))).json()[
        "message_count"
    ] == 3


@pytest.mark.parametrize(("send", "code"), [("binary", 1003), ("huge", 1009)])
async def test_binary_and_oversized_frames_close_the_connection(tmp_path: Path, send: str, code: int) -> None:
    async with live_server(tmp_path, max_body_bytes=4096) as live:
        tenant = await live.tenant()
        async with live.socket(live.token(tenant, "ann")) as client:
            await client.ws.send(b"\x00\x01" if send == "binary" else "x" * 10_000)
            with pytest.raises(ConnectionClosed) as closed:
                await client.next()
            assert closed.value.rcvd is not None and closed.value.rcvd.code == code
        async with live.socket(live.token(tenant, "ann")) as client:  # the server is still up
            await client.send(type="ping", id="p")
            assert (await client.next())["type"] == "pong"
        await asyncio.sleep(0.05)
        assert live.services.hub.followers(tenant.id) == 0


async def test_a_failing_handler_closes_1011_and_leaves_nothing_behind(
    live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = await live.tenant()
    token = live.token(tenant, "ann")
    c = await live.conversation(token)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(live.services.chat, "heartbeat", broken)  # fault injection, not a stand-in store
    async with live.socket(token) as client:
        await client.subscribe(conversation_id=c["id"])
        assert live.services.hub.followers(tenant.id) == 1
        await client.send(type="heartbeat", id="h", conversation_id=c["id"])
        with pytest.raises(ConnectionClosed) as closed:
            await client.next()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    await asyncio.sleep(0.05)
    assert live.services.hub.followers(tenant.id) == 0
    monkeypatch.undo()
    async with live.socket(token) as client:  # the server is still up
        await client.send(type="heartbeat", id="h", conversation_id=c["id"])
        assert (await client.next())["type"] == "ack"


async def test_stream_deltas_over_the_socket_count_against_the_rate(tmp_path: Path) -> None:
    """Every frame costs a request: the connect, the append, and each delta (tests/hardening has the
    floods)."""
    async with live_server(tmp_path, user_rate_per_second=0.001, user_rate_burst=12) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "ann")
        c = await live.conversation(token)  # 1 (REST)
        async with live.socket(token) as client:  # 2
            reply = {"id": "r", "role": "assistant", "status": "streaming"}
            await client.send(type="append", id="open", conversation_id=c["id"], message=reply)  # 3
            assert (await client.until(lambda f: f.get("id") == "open"))["type"] == "ack"
            for i in range(40):
                await client.send(
                    type="stream.delta", id=f"d{i}", conversation_id=c["id"], message_id="r", text="tok "
                )
            by_id = {}
            while len(by_id) < 40:
                frame = await client.next()
                by_id[frame["id"]] = frame
            answers = [by_id[f"d{i}"] for i in range(40)]
            assert [a["type"] for a in answers] == ["ack"] * 9 + ["error"] * 31
            assert {a["code"] for a in answers[9:]} == {"rate_limited"}
            assert answers[8]["length"] == 36
            await client.send(type="ping", id="p")
            assert (await client.next())["code"] == "rate_limited"


async def test_chatkeep_serves_sockets_with_direct_frame_writes(live: Live) -> None:
    """The fan-out path writes prepared frames straight to each socket: if an upgrade of the server
    took that away, frames would still flow (through ASGI) at several times the cost, silently."""
    tenant = await live.tenant()
    token = live.token(tenant, "ann")
    c = await live.conversation(token)
    async with live.socket(token) as client:
        await client.subscribe(conversation_id=c["id"])
        (connection,) = live.services.hub.members(tenant.id)
        assert isinstance(connection, Connection) and connection.outlet.direct
        await live.append(token, c["id"], "through the direct path")
        event = await client.until(lambda f: f["type"] == "message.created")
        assert event["message"]["content"] == "through the direct path"
