"""A real uvicorn server in the test's event loop, and a small WebSocket client over `websockets`."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import uvicorn
from websockets.asyncio.client import ClientConnection, connect

from chatkeep.api.app import create_app
from chatkeep.api.server import uvicorn_config
from chatkeep.bootstrap import build_services
from chatkeep.config import Settings
from chatkeep.models import Tenant
from chatkeep.service import Services
from chatkeep.service.auth import issue_token
from tests.conftest import unique
from tests.services import free_port


@dataclass
class Live:
    url: str
    services: Services
    http: httpx.AsyncClient

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/v1/ws"

    async def tenant(self) -> Tenant:
        return (await self.services.tenants.create(unique("Tenant"))).tenant

    def token(self, tenant: Tenant, user: str, workspaces: list[str] | None = None) -> str:
        return issue_token(tenant, user, workspaces or ["*"], ttl_seconds=600)

    async def conversation(self, token: str, **fields: Any) -> dict[str, Any]:
        answer = await self.http.post(
            "/v1/conversations", json={"workspace": "w1", **fields}, headers=bearer(token)
        )
        assert answer.status_code == 201, answer.text
        return answer.json()  # type: ignore[no-any-return]

    async def append(self, token: str, cid: str, content: str, **fields: Any) -> dict[str, Any]:
        body = {"role": "user", "content": content, **fields}
        answer = await self.http.post(f"/v1/conversations/{cid}/messages", json=body, headers=bearer(token))
        assert answer.status_code in (200, 201), answer.text
        return answer.json()  # type: ignore[no-any-return]

    @contextlib.asynccontextmanager
    async def socket(
        self, token: str | None = None, *, receive_buffer: int | None = None, **options: Any
    ) -> AsyncIterator[Client]:
        """A connected client, authenticated with a first frame when a token is given. A small
        `receive_buffer` (bytes) keeps the kernel from absorbing what the client does not read."""
        if receive_buffer is not None:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.connect(("127.0.0.1", int(self.url.rsplit(":", 1)[1])))
            options["sock"] = sock
        async with connect(self.ws_url, **options) as ws:
            client = Client(ws)
            if token is not None:
                await client.send(type="auth", token=token)
                assert (await client.next())["type"] == "ready"
            yield client


@contextlib.asynccontextmanager
async def socket_to(http_url: str, token: str) -> AsyncIterator[Client]:
    """An authenticated client of the server at `http_url`."""
    async with connect(http_url.replace("http://", "ws://") + "/v1/ws") as ws:
        client = Client(ws)
        await client.send(type="auth", token=token)
        assert (await client.next())["type"] == "ready"
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Client:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self._early: list[dict[str, Any]] = []  # frames that came before a reply waited for

    async def send(self, **frame: Any) -> None:
        await self.ws.send(orjson.dumps(frame).decode())

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        if self._early:
            return self._early.pop(0)
        frame: dict[str, Any] = orjson.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def until(self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 5.0) -> dict[str, Any]:
        """The first frame `wanted` accepts, passing over others."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.next(timeout)
                if wanted(frame):
                    return frame

    async def subscribe(self, **fields: Any) -> dict[str, Any]:
        """Subscribe and return the reply; the frames sent before it (a resume's backlog) stay to be
        read next."""
        await self.send(type="subscribe", id="sub", **fields)
        early = []
        while (frame := await self.next()).get("id") != "sub":
            early.append(frame)
        self._early = early + self._early
        return frame


class QuietServer(uvicorn.Server):
    """A server that leaves signal handling to the test runner (so a stuck run can be stopped)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@contextlib.asynccontextmanager
async def live_server(tmp_path: Path, **overrides: Any) -> AsyncIterator[Live]:
    port = free_port()
    values: dict[str, Any] = {
        "durable_url": f"sqlite:///{tmp_path}/{unique('live')}.db",
        "dev_mode": True,
        "user_rate_per_second": 0,
        "key_rate_per_second": 0,
        "port": port,
    }
    settings = Settings(**{**values, **overrides})
    services = build_services(settings)
    app = create_app(settings, services=services)
    config = uvicorn_config(app, settings, log_level="warning")
    server = QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            yield Live(url, services, http)
    finally:
        server.should_exit = True
        await task
