"""Tokens can be retired: a maximum lifetime (server-wide and per tenant), secret rotation with an
overlap window, and demo-tenant tokens refused whenever dev mode is off."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import jwt
from click.testing import CliRunner

from chatkeep.cli.main import main
from chatkeep.models import Tenant, now_ms
from chatkeep.stores import TenantStore
from tests.api.conftest import Api, auth, running_api
from tests.conftest import unique

YEAR = 365 * 86_400


def signed(tenant: Tenant, secret: str | None = None, **claims: object) -> str:
    body = {"tenant": tenant.id, "sub": "alice", "workspaces": ["*"], **claims}
    return jwt.encode(body, secret or tenant.token_secret, algorithm="HS256")


async def answer(api: Api, token: str) -> tuple[int, str]:
    response = await api.client.get("/v1/conversations", headers=auth(token))
    return response.status_code, "" if response.status_code == 200 else response.json()["code"]


async def test_tokens_valid_for_too_long_are_refused(tmp_path: Path) -> None:
    async with running_api(tmp_path, max_token_lifetime_seconds=3_600) as api:
        tenant, _ = await api.tenant()
        now = int(time.time())
        assert await answer(api, signed(tenant, iat=now, exp=now + 100 * YEAR)) == (401, "token_lifetime")
        assert await answer(api, signed(tenant, exp=now + 100 * YEAR)) == (401, "token_lifetime")
        # An iat in the future does not stretch the window (the token is refused as not yet valid).
        future = await answer(api, signed(tenant, iat=now + 50 * YEAR, exp=now + 50 * YEAR + 60))
        assert future[0] == 401
        assert await answer(api, signed(tenant, iat=now, exp=now + 3_601)) == (401, "token_lifetime")
        assert await answer(api, signed(tenant, iat=now, exp=now + 3_600)) == (200, "")
        assert await answer(api, signed(tenant, exp=now + 600)) == (200, "")

        # A tenant may set its own, shorter or longer, maximum.
        await api.services.tenants.set_token_lifetime(tenant.id, 600)
        assert await answer(api, signed(tenant, iat=now, exp=now + 900)) == (401, "token_lifetime")
        assert await answer(api, signed(tenant, iat=now, exp=now + 600)) == (200, "")
        await api.services.tenants.set_token_lifetime(tenant.id, 2 * 86_400)
        assert await answer(api, signed(tenant, iat=now, exp=now + 86_400)) == (200, "")


async def test_the_default_maximum_refuses_a_century(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, _ = await api.tenant()
        now = int(time.time())
        assert await answer(api, signed(tenant, iat=now, exp=now + 100 * YEAR)) == (401, "token_lifetime")
        assert await answer(api, signed(tenant, iat=now, exp=now + 86_400)) == (200, "")


async def test_a_rotated_secret_verifies_during_its_overlap_only(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, _ = await api.tenant()
        exp = int(time.time()) + 600
        old = signed(tenant, exp=exp)
        assert await answer(api, old) == (200, "")

        rotated = await api.services.tenants.rotate_secret(tenant.id, overlap_seconds=3_600)
        assert rotated.token_secret != tenant.token_secret
        new = signed(rotated, exp=exp, sub="bob")
        assert await answer(api, new) == (200, "")
        assert await answer(api, signed(tenant, exp=exp, sub="carol")) == (200, "")  # old secret, overlap
        assert await answer(api, signed(tenant, "another-secret-" + "x" * 40, exp=exp)) == (
            401,
            "invalid_token",
        )

        # The overlap ends: tokens signed with the old secret stop working, cached or not.
        store = api.services.router.durable  # the durable store keeps the tenants
        assert isinstance(store, TenantStore)
        current = await store.get_tenant(tenant.id)
        assert current is not None
        await store.update_tenant(dataclasses.replace(current, previous_secret_expires_at=now_ms() - 1))
        api.services.auth.forget()
        assert await answer(api, old) == (401, "invalid_token")
        assert await answer(api, new) == (200, "")

        # A second rotation without overlap retires the secret at once.
        again = await api.services.tenants.rotate_secret(tenant.id, overlap_seconds=0)
        assert await answer(api, new) == (401, "invalid_token")
        assert await answer(api, signed(again, exp=exp)) == (200, "")


def test_rotate_secret_from_the_command_line(tmp_path: Path) -> None:
    env = {"CHATKEEP_DURABLE_URL": f"sqlite:///{tmp_path}/cli.db"}
    runner = CliRunner()
    tid = unique("acme")
    created = runner.invoke(main, ["tenants", "create", "Acme", "--id", tid], env=env)
    assert created.exit_code == 0, created.stderr
    old_secret = created.stdout.split("token secret:")[1].split()[0]
    rotated = runner.invoke(main, ["tenants", "rotate-secret", tid, "--overlap", "120"], env=env)
    assert rotated.exit_code == 0, rotated.stderr
    new_secret = rotated.stdout.split("token secret:")[1].split()[0]
    assert new_secret != old_secret and old_secret not in rotated.stdout
    assert "120" in rotated.stderr
    refused = runner.invoke(main, ["tenants", "rotate-secret", tid, "--overlap", "-5"], env=env)
    assert refused.exit_code != 0
    lifetime = runner.invoke(main, ["tenants", "token-lifetime", tid, "900"], env=env)
    assert lifetime.exit_code == 0 and "900" in lifetime.stdout


async def test_demo_tokens_stop_working_when_dev_mode_is_off(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path}/shared.db"
    async with running_api(tmp_path, durable_url=db, dev_mode=True) as dev:
        loopback = {"Host": "127.0.0.1:8000"}  # dev tokens answer a loopback Host only
        minted = await dev.client.get("/v1/dev/token", params={"user": "visitor"}, headers=loopback)
        token = minted.json()["token"]
        assert (await dev.client.get("/v1/conversations", headers=auth(token))).status_code == 200
    # The same database, served with dev mode off (as on a public address).
    async with running_api(tmp_path, durable_url=db, dev_mode=False) as public:
        assert await answer(public, token) == (401, "dev_mode_off")
        assert (await public.client.get("/v1/dev/token", params={"user": "visitor"})).status_code in {
            403,
            404,
        }
