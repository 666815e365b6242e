"""API fixtures: the real app (real lifespan, real SQLite file) driven in-process through httpx."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from chatkeep.api.app import create_app
from chatkeep.bootstrap import build_services
from chatkeep.config import Settings
from chatkeep.models import Tenant
from chatkeep.service import Services
from chatkeep.service.auth import issue_token
from tests import services
from tests.conftest import drop_keys, unique


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    services: Services

    async def tenant(self) -> tuple[Tenant, str]:
        """A new tenant and its API key."""
        created = await self.services.tenants.create(unique("Tenant"))
        return created.tenant, created.api_key

    def token(self, tenant: Tenant, user: str, workspaces: list[str] | None = None, ttl: int = 600) -> str:
        return issue_token(tenant, user, workspaces or ["*"], ttl_seconds=ttl)

    async def user(self, workspaces: list[str] | None = None) -> dict[str, str]:
        """Headers of a fresh user in a fresh tenant."""
        tenant, _ = await self.tenant()
        return auth(self.token(tenant, unique("user"), workspaces))

    async def conversation(self, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
        body = {"workspace": "w1", **fields}
        response = await self.client.post("/v1/conversations", json=body, headers=headers)
        assert response.status_code == 201, response.text
        conversation: dict[str, Any] = response.json()
        return conversation

    async def append(self, headers: dict[str, str], cid: str, *contents: str) -> list[dict[str, Any]]:
        bodies = [{"role": "user", "content": c, "id": unique("m")} for c in contents]
        response = await self.client.post(
            f"/v1/conversations/{cid}/messages:batch", json={"messages": bodies}, headers=headers
        )
        assert response.status_code == 201, response.text
        return [r["message"] for r in response.json()["results"]]


def auth(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}


@contextlib.asynccontextmanager
async def running_api(tmp_path: Path, **overrides: Any) -> AsyncIterator[Api]:
    """An app on its own SQLite file with the given settings, lifespan started."""
    values: dict[str, Any] = {
        "durable_url": f"sqlite:///{tmp_path}/{unique('api')}.db",
        "dev_mode": True,
        "user_rate_per_second": 0,
        "key_rate_per_second": 0,
        "auth_failure_rate_per_second": 0,
    }
    settings = Settings(**{**values, **overrides})
    services = build_services(settings)
    app = create_app(settings, services=services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chatkeep.test") as client:
            yield Api(app, client, services)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    """The test Redis, with a key prefix of this test's own (its keys are deleted afterwards)."""
    prefix = unique("ck-api")
    yield f"{services.require_redis()}?prefix={prefix}"
    await drop_keys(services.REDIS_URL, prefix)


@pytest.fixture(scope="session")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Api]:
    """One app for the session; tests isolate themselves with fresh tenants and users."""
    async with running_api(tmp_path_factory.mktemp("api")) as shared:
        yield shared
