"""A verified token is kept until it expires: past the tenant cache's period it is accepted again
without being verified afresh only while its tenant reads back unchanged."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from chatkeep.errors import Unauthenticated
from chatkeep.models import now_ms
from chatkeep.service.auth import Authenticator, issue_token, new_token_secret
from chatkeep.stores import TenantStore
from tests.api.conftest import running_api


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_cached_token_outlives_the_cache_period_only_while_its_tenant_is_unchanged(
    tmp_path: Path,
) -> None:
    async with running_api(tmp_path) as api:
        store = api.services.router.durable
        assert isinstance(store, TenantStore)
        clock = Clock()
        auth = Authenticator(store, cache_seconds=10, clock=clock)
        tenant, _ = await api.tenant()
        token = issue_token(tenant, "alice", ["*"], ttl_seconds=600)
        first = await auth.authenticate(token)
        assert (first.tenant, first.user, first.workspaces) == (tenant, "alice", None)

        clock.now += 11  # the tenant is read again and found unchanged: the same principal
        assert await auth.authenticate(token) is first

        # A change of settings is a changed tenant: the token is verified afresh against it.
        await api.services.tenants.set_token_lifetime(tenant.id, 3_600)
        clock.now += 11
        again = await auth.authenticate(token)
        assert again is not first and again.tenant.settings.max_token_lifetime_seconds == 3_600
        await api.services.tenants.set_token_lifetime(tenant.id, 60)
        clock.now += 11
        with pytest.raises(Unauthenticated) as refused:
            await auth.authenticate(token)
        assert refused.value.code == "token_lifetime"
        await api.services.tenants.set_token_lifetime(tenant.id, 3_600)

        # A rotation without overlap counts once the cache period is over, cached token or not.
        clock.now += 11
        assert (await auth.authenticate(token)).user == "alice"
        current = await store.get_tenant(tenant.id)
        assert current is not None
        await store.update_tenant(dataclasses.replace(current, token_secret=new_token_secret()))
        assert (await auth.authenticate(token)).user == "alice"  # within the period: as documented
        clock.now += 11
        with pytest.raises(Unauthenticated) as refused:
            await auth.authenticate(token)
        assert refused.value.code == "invalid_token"


async def test_a_token_signed_with_the_previous_secret_is_dropped_when_its_overlap_ends(
    tmp_path: Path,
) -> None:
    async with running_api(tmp_path) as api:
        store = api.services.router.durable
        assert isinstance(store, TenantStore)
        clock = Clock()
        auth = Authenticator(store, cache_seconds=10, clock=clock)
        tenant, _ = await api.tenant()
        old = issue_token(tenant, "alice", ["*"], ttl_seconds=600)
        rotated = await api.services.tenants.rotate_secret(tenant.id, overlap_seconds=3_600)
        new = issue_token(rotated, "bob", ["*"], ttl_seconds=600)
        assert (await auth.authenticate(old)).user == "alice"
        assert (await auth.authenticate(new)).user == "bob"
        clock.now += 11
        assert (await auth.authenticate(old)).user == "alice"

        current = await store.get_tenant(tenant.id)
        assert current is not None
        await store.update_tenant(dataclasses.replace(current, previous_secret_expires_at=now_ms() - 1))
        clock.now += 11
        with pytest.raises(Unauthenticated) as refused:
            await auth.authenticate(old)
        assert refused.value.code == "invalid_token"
        assert (await auth.authenticate(new)).user == "bob"
