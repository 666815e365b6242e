"""Every socket frame is paid for: deltas count against the caller's rate whatever they do, a socket
keeps a bounded number of deltas in flight, a connect costs a request, and sockets per caller and
subscriptions per socket are capped (close 4409 `too_many_sockets`, error `too_many_subscriptions`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from chatkeep.api.ws.connection import REFUSALS_BEFORE_CLOSE
from tests.conftest import unique
from tests.realtime.conftest import Client, Live, live_server


async def answers(client: Client, ids: set[str], timeout: float = 20.0) -> dict[str, dict[str, Any]]:
    """The answer to each frame id, in whatever order they come."""
    got: dict[str, dict[str, Any]] = {}
    while len(got) < len(ids):
        frame = await client.next(timeout)
        if frame.get("id") in ids:
            got[frame["id"]] = frame
    return got


async def opened(live: Live, credential: str) -> tuple[ClientConnection, dict[str, Any] | int]:
    """A socket and the server's first answer to its auth: the `ready` frame, or the close code."""
    ws = await connect(live.ws_url)
    await ws.send(orjson.dumps({"type": "auth", "token": credential}).decode())
    try:
        return ws, orjson.loads(await asyncio.wait_for(ws.recv(), 5))
    except ConnectionClosed as closed:
        assert closed.rcvd is not None
        return ws, closed.rcvd.code


async def test_deltas_that_fail_are_charged_to_the_callers_rate(tmp_path: Path) -> None:
    async with live_server(tmp_path, user_rate_per_second=0.001, user_rate_burst=12) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "mallory")
        async with live.socket(token) as client:  # the connect costs 1
            ids = {f"d{i}" for i in range(60)}
            for i in range(60):  # a conversation that does not exist: each costs a request all the same
                await client.send(
                    type="stream.delta", id=f"d{i}", conversation_id="nope", message_id=f"m{i}", text="x"
                )
            codes = Counter(a["code"] for a in (await answers(client, ids)).values())
        print(f"\n60 deltas to a missing conversation, burst 12: {dict(codes)}")
        assert codes == {"not_found": 11, "rate_limited": 49}
        # the same allowance as REST: it is spent
        answer = await live.http.get("/v1/conversations", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 429


async def test_frames_that_are_not_frames_are_charged_too(tmp_path: Path) -> None:
    async with live_server(tmp_path, user_rate_per_second=0.001, user_rate_burst=12) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "mallory")
        async with live.socket(token) as client:  # the connect costs 1
            garbage = [
                '{"id": "x%d", "type": "nope"}',
                '{"id": "x%d", "type": "ping", "type": "ping"}',
                "[%d",
            ]
            for i in range(30):
                await client.ws.send(garbage[i % 3] % i if "%d" in garbage[i % 3] else garbage[i % 3])
            codes = Counter([(await client.next())["code"] for _ in range(30)])
        print(f"\n30 bad frames, burst 12: {dict(codes)}")
        assert codes["rate_limited"] == 19 and sum(codes.values()) == 30
        assert set(codes) == {"rate_limited", "unknown_type", "duplicate_key", "invalid_json"}


async def test_a_socket_that_keeps_sending_past_the_rate_is_closed(tmp_path: Path) -> None:
    async with live_server(tmp_path, user_rate_per_second=0.001, user_rate_burst=5) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "mallory")
        async with live.socket(token) as client:  # the connect costs 1
            codes: Counter[str] = Counter()
            with contextlib.suppress(ConnectionClosed):
                for i in range(500):
                    await client.send(type="ping", id=f"p{i}")
            try:
                while True:
                    codes[(await client.next())["type"]] += 1
            except ConnectionClosed as closed:
                assert closed.rcvd is not None
                code, reason = closed.rcvd.code, closed.rcvd.reason
        print(f"\n500 pings, burst 5: {dict(codes)}, then {code} {reason!r}")
        assert codes == {"pong": 4, "error": REFUSALS_BEFORE_CLOSE - 1}
        assert code == 4429 and reason.startswith("rate_limited")
        # the other users of the tenant are not affected
        async with live.socket(live.token(tenant, "bob")) as bob:
            await bob.send(type="ping", id="p")
            assert (await bob.next())["type"] == "pong"


async def test_a_socket_keeps_a_bounded_number_of_deltas_in_flight(tmp_path: Path) -> None:
    async with live_server(tmp_path, ws_max_pending_deltas=4) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "mallory")
        cid = (await live.conversation(token))["id"]
        async with live.socket(token) as client:
            await client.send(type="ping", id="warm")
            await client.next()
            baseline = len(asyncio.all_tasks())
            peak = baseline
            loop = asyncio.get_running_loop()
            factory = loop.get_task_factory()

            def counting(loop: asyncio.AbstractEventLoop, coro: Any, **options: Any) -> Any:
                # The number of tasks peaks as one is created: count there (a sampling task that
                # spun on the loop would starve the store's writer thread of the GIL).
                nonlocal peak
                task = factory(loop, coro, **options) if factory else asyncio.Task(coro, loop=loop, **options)
                peak = max(peak, len(asyncio.all_tasks()))  # the new task is among them
                return task

            loop.set_task_factory(counting)
            count = 400
            ids = {f"d{i}" for i in range(count)}
            # deltas of messages that are not there: none coalesces with another, each costs a write
            for i in range(count):
                await client.send(
                    type="stream.delta", id=f"d{i}", conversation_id=cid, message_id=f"m{i}", text="x"
                )
            try:
                got = await answers(client, ids)
            finally:
                loop.set_task_factory(factory)
        print(f"\n{count} deltas, at most 4 in flight: tasks {baseline} before, peak {peak}")
        assert Counter(a["code"] for a in got.values()) == {"message_not_found": count}
        # Per delta in flight: the stream service's writer and at most one task of the store; then the
        # socket's send queue. Without the bound, every frame of the flood had a task.
        assert peak - baseline <= 2 * 4 + 4


async def test_a_connect_costs_a_request(tmp_path: Path) -> None:
    async with live_server(tmp_path, user_rate_per_second=0.001, user_rate_burst=3) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "mallory")
        results = [await opened(live, token) for _ in range(5)]
        kinds = [r if isinstance(r, int) else r["type"] for _, r in results]
        assert kinds == ["ready", "ready", "ready", 4429, 4429]
        for ws, _ in results:
            await ws.close()
        # another user is not affected
        async with live.socket(live.token(tenant, "bob")):
            pass


async def test_sockets_per_user_and_per_tenant_key_are_capped(tmp_path: Path) -> None:
    async with live_server(tmp_path, ws_max_sockets_per_user=3, ws_max_sockets_per_key=2) as live:
        created = await live.services.tenants.create(unique("Tenant"))
        tenant, key = created.tenant, created.api_key
        token = live.token(tenant, "mallory")
        mine = [await opened(live, token) for _ in range(5)]
        assert [r if isinstance(r, int) else r["type"] for _, r in mine] == ["ready"] * 3 + [4409, 4409]
        assert mine[3][0].close_reason == "too_many_sockets"
        # another user of the tenant, and the tenant's key, have their own allowance
        keys = [await opened(live, key) for _ in range(3)]
        assert [r if isinstance(r, int) else r["type"] for _, r in keys] == ["ready", "ready", 4409]
        async with live.socket(live.token(tenant, "bob")):
            pass
        # a socket that closes gives its place back
        await mine[0][0].close()
        for _ in range(100):
            if live.services.hub.quotas.sockets(_principal(live, mine[1][1])) < 3:
                break
            await asyncio.sleep(0.02)
        again, first = await opened(live, token)
        assert isinstance(first, dict) and first["type"] == "ready"
        for ws, _ in [*mine, *keys, (again, first)]:
            await ws.close()


def _principal(live: Live, ready: Any) -> Any:
    (member,) = [m for m in live.services.hub.members(ready["tenant"]) if m.principal.user == ready["user"]][
        :1
    ]
    return member.principal


async def test_subscriptions_per_socket_are_capped(tmp_path: Path) -> None:
    async with live_server(tmp_path, ws_max_subscriptions=3) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "mallory")
        cids = [(await live.conversation(token))["id"] for _ in range(5)]
        async with live.socket(token) as client:
            assert (await client.subscribe(conversation_id=cids[0]))["type"] == "subscribed"
            assert (await client.subscribe(conversation_id=cids[1]))["type"] == "subscribed"
            assert (await client.subscribe(workspace="w1"))["type"] == "subscribed"
            refused = await client.subscribe(conversation_id=cids[2])
            assert (refused["type"], refused["code"], refused["status"]) == (
                "error",
                "too_many_subscriptions",
                409,
            )
            refused = await client.subscribe(workspace="*")
            assert refused["code"] == "too_many_subscriptions"
            # following the same conversation again takes no new place
            assert (await client.subscribe(conversation_id=cids[0]))["type"] == "subscribed"
            await client.send(type="unsubscribe", id="u", conversation_id=cids[1])
            assert (await client.next())["type"] == "unsubscribed"
            assert (await client.subscribe(conversation_id=cids[2]))["type"] == "subscribed"
            # the refused subscription delivers nothing: a message in cids[3] is not sent here
            await live.append(token, cids[3], "hello")
            await live.append(token, cids[2], "followed")
            frame = await client.until(lambda f: f["type"] == "message.created")
            assert frame["conversation_id"] in (cids[2], cids[3])
