"""Authentication: tenant API keys, signed user tokens, dev tokens, and per-caller rate limits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt
import pytest

from chatkeep.service.auth import issue_token
from tests.api.conftest import Api, auth, running_api


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Bearer "}],
    ids=["none", "empty bearer", "basic", "blank"],
)
async def test_missing_credentials_answer_401(api: Api, headers: dict[str, str]) -> None:
    response = await api.client.get("/v1/conversations", headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_bad_tokens_answer_401_with_a_reason(api: Api) -> None:
    tenant, _ = await api.tenant()
    now = time.time()
    cases = {
        "not a jwt": ("invalid_token", "garbage.token"),
        "unknown key": ("invalid_credentials", "ck_" + "x" * 43),
        "wrong secret": (
            "invalid_token",
            jwt.encode(
                {"tenant": tenant.id, "sub": "u", "workspaces": ["*"], "exp": now + 60},
                "wrong-secret-" + "x" * 40,
                algorithm="HS256",
            ),
        ),
        "expired": ("token_expired", issue_token(tenant, "u", ["*"], ttl_seconds=60, now=now - 3600)),
        "no exp": (
            "invalid_token",
            jwt.encode(
                {"tenant": tenant.id, "sub": "u", "workspaces": ["*"]}, tenant.token_secret, algorithm="HS256"
            ),
        ),
        "no workspaces": (
            "invalid_token",
            jwt.encode(
                {"tenant": tenant.id, "sub": "u", "exp": now + 60}, tenant.token_secret, algorithm="HS256"
            ),
        ),
        "unknown tenant": (
            "invalid_token",
            jwt.encode(
                {"tenant": "nobody", "sub": "u", "workspaces": ["*"], "exp": now + 60},
                "y" * 48,
                algorithm="HS256",
            ),
        ),
        "hostile sub": ("invalid_token", issue_token(tenant, "../admin", ["*"], ttl_seconds=60)),
        "none algorithm": (
            "invalid_token",
            jwt.encode(
                {"tenant": tenant.id, "sub": "u", "workspaces": ["*"], "exp": now + 60},
                None,
                algorithm="none",
            ),
        ),
    }
    for name, (code, credential) in cases.items():
        response = await api.client.get("/v1/conversations", headers=auth(credential))
        assert response.status_code == 401, name
        assert response.json()["code"] == code, name


async def test_a_rotated_key_stops_working(api: Api) -> None:
    tenant, key = await api.tenant()
    assert (await api.client.get("/v1/conversations", headers=auth(key))).status_code == 200
    rotated = await api.services.tenants.rotate_key(tenant.id)
    assert (await api.client.get("/v1/conversations", headers=auth(key))).status_code == 401
    assert (await api.client.get("/v1/conversations", headers=auth(rotated.api_key))).status_code == 200


DEV_TOKEN = "http://127.0.0.1/v1/dev/token"  # handed out to a loopback Host only


async def test_dev_token_works_for_the_demo_tenant(api: Api) -> None:
    response = await api.client.get(DEV_TOKEN, params={"user": "zoe", "workspace": "docs"})
    assert response.status_code == 200
    token = response.json()
    assert (token["tenant"], token["user"], token["workspaces"]) == ("demo", "zoe", ["docs"])
    headers = auth(token["token"])
    assert (
        await api.client.post("/v1/conversations", json={"workspace": "docs"}, headers=headers)
    ).status_code == 201
    denied = await api.client.post("/v1/conversations", json={"workspace": "other"}, headers=headers)
    assert denied.status_code == 403
    bad = await api.client.get("/v1/dev/token", params={"user": "../root"})
    assert bad.status_code == 422


async def test_dev_token_is_refused_when_dev_mode_is_off(tmp_path: Path) -> None:
    async with running_api(tmp_path / "off", host="0.0.0.0", dev_mode=None) as api:
        response = await api.client.get("/v1/dev/token")
        assert (response.status_code, response.json()["code"]) == (403, "dev_mode_off")
        assert await api.services.tenants.list_tenants() == []  # no demo tenant either
    async with running_api(tmp_path / "forced", host="0.0.0.0", dev_mode=True) as api:
        assert (await api.client.get(DEV_TOKEN)).status_code == 200


async def test_rate_limit_answers_429_with_retry_after_per_caller(tmp_path: Path) -> None:
    async with running_api(tmp_path, user_rate_per_second=1, user_rate_burst=3) as api:
        tenant, key = await api.tenant()
        alice, bob = auth(api.token(tenant, "alice")), auth(api.token(tenant, "bob"))
        codes = [(await api.client.get("/v1/conversations", headers=alice)).status_code for _ in range(5)]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        limited = await api.client.get("/v1/conversations", headers=alice)
        assert limited.json()["code"] == "rate_limited"
        assert int(limited.headers["retry-after"]) >= 1
        assert (await api.client.get("/v1/conversations", headers=bob)).status_code == 200
        assert (await api.client.get("/v1/conversations", headers=auth(key))).status_code == 200


async def test_a_token_stops_working_when_it_expires_even_after_use(api: Api) -> None:
    tenant, _ = await api.tenant()
    # `exp` is a whole second: a 2 s lifetime leaves at least one second for the first request.
    headers = auth(issue_token(tenant, "brief", ["*"], ttl_seconds=2))
    assert (await api.client.get("/v1/conversations", headers=headers)).status_code == 200
    await asyncio.sleep(3.1)
    late = await api.client.get("/v1/conversations", headers=headers)
    assert (late.status_code, late.json()["code"]) == (401, "token_expired")
