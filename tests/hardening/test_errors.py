"""Errors say what to do, not where things are: a 5xx body carries a generic detail and a code (the
store's URL goes to the log only), and failed authentications are rate limited per client address."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import jwt
import pytest

from tests.api.conftest import Api, auth, running_api
from tests.services import free_port

SECRET_BITS = ("opsuser", "hunter2", "127.0.0.1", "redis")


async def test_a_503_names_no_host_port_or_user(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()  # nothing listens there: the ephemeral store is down
    url = f"redis://opsuser:hunter2@127.0.0.1:{port}/0"
    async with running_api(tmp_path, ephemeral_url=url, ephemeral_outage="refuse") as api:
        headers = await api.user()
        with caplog.at_level(logging.WARNING, logger="chatkeep.api"):
            response = await api.client.post(
                "/v1/conversations", json={"workspace": "w1", "mode": "ephemeral"}, headers=headers
            )
        assert response.status_code == 503
        body = response.json()
        assert body["code"] == "store_unavailable"
        assert body["detail"] == "a backing store is unavailable right now; retry shortly"
        for bit in (*SECRET_BITS, str(port)):
            assert bit not in response.text
        # Operators still learn where: the log names the store, password hidden.
        logged = "\n".join(r.getMessage() for r in caplog.records)
        assert f"127.0.0.1:{port}" in logged and "hunter2" not in logged


async def test_a_closed_durable_store_does_not_leak_its_path(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, key = await api.tenant()
        await api.services.router.durable.close()
        try:
            response = await api.client.get("/v1/conversations", headers=auth("ck_" + "z" * 43))
            assert (response.status_code, response.json()["code"]) == (503, "store_unavailable")
            assert str(tmp_path) not in response.text and "sqlite" not in response.text
        finally:
            await api.services.router.durable.connect()


def client(api: Api, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=api.app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://chatkeep.test")


async def test_failed_authentications_are_rate_limited_per_address(tmp_path: Path) -> None:
    overrides = {"auth_failure_rate_per_second": 0.001, "auth_failure_burst": 5}
    async with running_api(tmp_path, **overrides) as api:
        tenant, key = await api.tenant()
        good = auth(api.token(tenant, "alice"))
        async with client(api, "203.0.113.7") as guesser, client(api, "198.51.100.2") as other:
            answers = []
            for i in range(12):
                forged = jwt.encode(
                    {"tenant": f"guess-{i}", "sub": "u", "workspaces": ["*"], "exp": 2_000_000_000},
                    "x" * 48,
                    algorithm="HS256",
                )
                response = await guesser.get("/v1/conversations", headers=auth(forged))
                answers.append(response.status_code)
                if response.status_code == 429:
                    assert response.json()["code"] == "rate_limited"
                    assert int(response.headers["retry-after"]) >= 1
            assert answers == [401] * 5 + [429] * 7
            # Unknown API keys are guesses too, and the limit holds whatever the credential.
            assert (await guesser.get("/v1/conversations", headers=auth("ck_" + "q" * 43))).status_code == 429
            assert (await guesser.get("/v1/conversations", headers=good)).status_code == 429
            # Another address is not affected, and requests without credentials are not charged.
            assert (await other.get("/v1/conversations", headers=good)).status_code == 200
            # A token just verified is accepted from the guesser's address too (nothing is read).
            assert (await guesser.get("/v1/conversations", headers=good)).status_code == 200
            assert (await guesser.get("/v1/conversations", headers=auth("ck_" + "q" * 43))).status_code == 429
            assert (await other.get("/v1/conversations", headers=auth(key))).status_code == 200
            for _ in range(10):
                assert (await other.get("/v1/conversations")).status_code == 401
            assert (await other.get("/v1/conversations", headers=good)).status_code == 200
