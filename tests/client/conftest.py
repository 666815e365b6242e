"""One real `chatkeep serve` (SQLite, dev mode on loopback) for the client tests, a tenant with an API
key made by the CLI, and a fresh demo user per test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from chatkeep.client import AsyncClient, Client, RetryPolicy
from tests.conftest import unique
from tests.server import ServerProcess

# Retries in tests: quick, so that a test of them takes milliseconds rather than seconds.
FAST = RetryPolicy(attempts=5, base_delay=0.01, max_delay=0.05)


@dataclass(frozen=True)
class Server:
    url: str
    api_key: str

    def token(self, user: str | None = None) -> str:
        answer = httpx.get(f"{self.url}/v1/dev/token", params={"user": user or unique("u")})
        answer.raise_for_status()
        return str(answer.json()["token"])


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("client")
    env = {
        "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp}/client.db",
        "CHATKEEP_USER_RATE_PER_SECOND": "0",
        "CHATKEEP_KEY_RATE_PER_SECOND": "0",
        "CHATKEEP_AUTH_FAILURE_RATE_PER_SECOND": "0",
        "CHATKEEP_DEMO_ASSISTANT": "off",
    }
    created = subprocess.run(
        [sys.executable, "-m", "chatkeep", "tenants", "create", "Client Tests"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    fields = {
        k.strip(): v.strip() for k, _, v in (line.partition(":") for line in created.stdout.splitlines())
    }
    with ServerProcess(env, tmp / "server.log") as process:
        yield Server(process.url, fields["api key"])


@pytest.fixture
def token(server: Server) -> str:
    return server.token()


@pytest.fixture
async def client(server: Server, token: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.url, token, retry=FAST) as c:
        yield c


@pytest.fixture
def sync_client(server: Server, token: str) -> Iterator[Client]:
    with Client(server.url, token, retry=FAST) as c:
        yield c
