"""Slow clients and rebinding: a request that does not arrive whole in time is answered 408 and its
connection closed, however slowly it trickles; connections past the limit answer 503; dev tokens go
to a loopback Host only."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from chatkeep.api.app import create_app
from chatkeep.api.routes.dev import is_loopback_host
from chatkeep.api.server import uvicorn_config
from chatkeep.config import Settings
from tests.api.conftest import running_api
from tests.realtime.conftest import Live, live_server

GIVE_UP = 15.0  # bounds each read of the test; the server's deadline in these tests is 0.5 s


@contextlib.asynccontextmanager
async def raw(
    live: Live, count: int = 1
) -> AsyncIterator[list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
    """Plain TCP connections to the server, dropped on the way out whatever happened."""
    host, port = live.url.removeprefix("http://").split(":")
    connections = [await asyncio.open_connection(host, int(port)) for _ in range(count)]
    try:
        yield connections
    finally:
        for _, writer in connections:
            writer.transport.abort()


async def trickle(writer: asyncio.StreamWriter, data: bytes, pause: float = 0.05) -> bool:
    """Send `data` a byte at a time; False once the server has closed the connection."""
    for byte in data:
        if writer.is_closing():
            return False
        try:
            writer.write(bytes([byte]))
            await writer.drain()
        except (ConnectionError, OSError):
            return False
        await asyncio.sleep(pause)
    return True


async def answer_of(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), GIVE_UP)


async def test_headers_that_trickle_in_are_cut_off_with_408(tmp_path: Path) -> None:
    async with live_server(tmp_path, request_read_timeout_seconds=0.5) as live:
        async with raw(live) as [(reader, writer)]:
            endless = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 400
            sender = asyncio.create_task(trickle(writer, endless))
            try:
                answer = await answer_of(reader)
            finally:
                sender.cancel()
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b'"code":"request_timeout"' in answer


async def test_a_body_that_stalls_is_cut_off_with_408(tmp_path: Path) -> None:
    async with live_server(tmp_path, request_read_timeout_seconds=0.5) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "ann")
        async with raw(live) as [(reader, writer)]:
            writer.write(
                b"POST /v1/conversations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n".encode()
                + b'{"workspace": '
            )
            await writer.drain()
            answer = await answer_of(reader)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        listed = await live.http.get("/v1/conversations", headers={"Authorization": f"Bearer {token}"})
        assert listed.json()["items"] == []  # nothing was created


async def test_a_connection_that_sends_nothing_is_closed(tmp_path: Path) -> None:
    async with live_server(tmp_path, request_read_timeout_seconds=0.5) as live:
        async with raw(live) as [(reader, _)]:
            answer = await answer_of(reader)
            assert answer.startswith(b"HTTP/1.1 408 ")


async def test_slow_clients_do_not_stop_others_being_served(tmp_path: Path) -> None:
    async with live_server(tmp_path, request_read_timeout_seconds=0.5) as live:
        slow = b"GET /healthz HTTP/1.1\r\n" + b"X: y\r\n" * 100
        async with raw(live, 30) as connections:
            senders = [asyncio.create_task(trickle(w, slow)) for _, w in connections]
            try:
                for _ in range(5):
                    assert (await live.http.get("/healthz")).status_code == 200
                answers = await asyncio.gather(*(answer_of(r) for r, _ in connections))
            finally:
                for sender in senders:
                    sender.cancel()
            assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers)
        # a request that arrives in time, even in pieces, is answered as usual
        async with raw(live) as [(reader, writer)]:
            assert await trickle(writer, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", pause=0.001)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n"), GIVE_UP)
            assert head.startswith(b"HTTP/1.1 200 ")


async def test_connections_past_the_limit_answer_503(tmp_path: Path) -> None:
    async with live_server(tmp_path, max_connections=4, request_read_timeout_seconds=30) as live:
        async with httpx.AsyncClient(base_url=live.url) as fresh:
            async with raw(live, 4):
                await asyncio.sleep(0.1)  # let the server take them
                assert (await fresh.get("/healthz")).status_code == 503
            for _ in range(50):  # the server sees them go
                if (await fresh.get("/healthz")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            assert (await fresh.get("/healthz")).status_code == 200


def test_the_server_config_carries_the_settings() -> None:
    settings = Settings(
        durable_url="memory://",
        request_read_timeout_seconds=7,
        keep_alive_timeout_seconds=3,
        max_connections=9,
    )
    config = uvicorn_config(create_app(settings), settings)
    config.load()
    assert config.timeout_keep_alive == 3
    assert config.limit_concurrency == 9
    assert getattr(config.http_protocol_class, "read_timeout", None) == 7


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.0.0.1:8000", "localhost", "LocalHost:1", "[::1]", "[::1]:8000", "127.0.0.2:80"]
)
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "",
        "evil.example",
        "evil.example:8000",
        "127.0.0.1.evil.example",
        "localhost.evil.example",
        "evil.localhost",
        "0.0.0.0:8000",
        "10.0.0.1",
        "[::1]evil",
        "[::1",
        "127.0.0.1:80x",
        "127.0.0.1:８０",
        "::1",
        "[::ffff:8.8.8.8]",
    ],
)
def test_other_hosts(host: str) -> None:
    assert not is_loopback_host(host)


async def test_dev_tokens_go_to_a_loopback_host_only(tmp_path: Path) -> None:
    async with running_api(tmp_path, dev_mode=True) as api:
        for host in ["rebound.example", "rebound.example:8000", "127.0.0.1.rebound.example"]:
            answer = await api.client.get("/v1/dev/token", headers={"Host": host})
            assert answer.status_code == 403, (host, answer.text)
            assert answer.headers["content-type"] == "application/problem+json"
            assert answer.json()["code"] == "dev_host_not_loopback"
        for host in ["127.0.0.1:8000", "localhost:8000", "[::1]:8000"]:
            answer = await api.client.get("/v1/dev/token", headers={"Host": host})
            assert answer.status_code == 200, (host, answer.text)
