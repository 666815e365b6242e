"""The TenantStore conformance suite: every promise of `chatkeep.stores.base.TenantStore`, run on every
backend that keeps tenants (the durable ones).

Tests take `tenant_store: TenantStore` and never branch on the backend type.
"""

from __future__ import annotations

import dataclasses

import pytest

from chatkeep.errors import Conflict, NotFound
from chatkeep.models import Mode, Tenant, TenantSettings
from chatkeep.stores import TenantStore
from tests.conftest import unique


def new_tenant(name: str = "Acme", *, previous_secret: str | None = None, until: int | None = None) -> Tenant:
    return Tenant(
        id=unique("t"),
        name=name,
        api_key_hash=unique("h"),
        token_secret="s3cret",
        created_at=1,
        previous_token_secret=previous_secret,
        previous_secret_expires_at=until,
    )


async def test_tenant_create_get_by_id_and_key_list_update(tenant_store: TenantStore) -> None:
    tenant = new_tenant()
    await tenant_store.create_tenant(tenant)
    assert await tenant_store.get_tenant(tenant.id) == tenant
    assert await tenant_store.get_tenant_by_key_hash(tenant.api_key_hash) == tenant
    assert await tenant_store.get_tenant(unique("t")) is None
    assert await tenant_store.get_tenant_by_key_hash("no-such-hash") is None
    assert tenant.id in [t.id for t in await tenant_store.list_tenants()]

    changed = dataclasses.replace(
        tenant, settings=TenantSettings(default_mode=Mode.EPHEMERAL), api_key_hash=unique("h")
    )
    await tenant_store.update_tenant(changed)
    assert await tenant_store.get_tenant(tenant.id) == changed
    assert await tenant_store.get_tenant_by_key_hash(changed.api_key_hash) == changed
    assert await tenant_store.get_tenant_by_key_hash(tenant.api_key_hash) is None


async def test_a_rotated_tenant_keeps_its_previous_secret_and_token_lifetime(
    tenant_store: TenantStore,
) -> None:
    tenant = dataclasses.replace(new_tenant("R"), token_secret="new")
    await tenant_store.create_tenant(tenant)
    assert (await tenant_store.get_tenant(tenant.id)) == tenant
    rotated = dataclasses.replace(
        tenant,
        token_secret="newer",
        previous_token_secret="new",
        previous_secret_expires_at=1_700_000_000_123,
        settings=TenantSettings(max_token_lifetime_seconds=3_600),
    )
    await tenant_store.update_tenant(rotated)
    assert await tenant_store.get_tenant(tenant.id) == rotated
    assert await tenant_store.get_tenant_by_key_hash(tenant.api_key_hash) == rotated
    assert [t for t in await tenant_store.list_tenants() if t.id == tenant.id] == [rotated]


async def test_a_rotation_without_overlap_forgets_the_previous_secret(tenant_store: TenantStore) -> None:
    tenant = new_tenant("R", previous_secret="old", until=1_700_000_000_000)
    await tenant_store.create_tenant(tenant)
    assert await tenant_store.get_tenant(tenant.id) == tenant
    retired = dataclasses.replace(
        tenant, token_secret="newest", previous_token_secret=None, previous_secret_expires_at=None
    )
    await tenant_store.update_tenant(retired)
    assert await tenant_store.get_tenant(tenant.id) == retired
    assert await tenant_store.get_tenant_by_key_hash(tenant.api_key_hash) == retired


async def test_tenant_id_is_unique_and_update_needs_existing(tenant_store: TenantStore) -> None:
    tenant = new_tenant("A")
    await tenant_store.create_tenant(tenant)
    with pytest.raises(Conflict) as err:
        await tenant_store.create_tenant(dataclasses.replace(tenant, api_key_hash=unique("h")))
    assert err.value.code == "tenant_exists"
    assert await tenant_store.get_tenant(tenant.id) == tenant  # the refused create changed nothing
    with pytest.raises(NotFound):
        await tenant_store.update_tenant(dataclasses.replace(tenant, id=unique("t")))


async def test_tenants_are_listed_in_id_order(tenant_store: TenantStore) -> None:
    ids = [unique("order") for _ in range(3)]
    for tid in reversed(ids):
        await tenant_store.create_tenant(
            Tenant(id=tid, name=tid, api_key_hash=unique("h"), token_secret="s", created_at=1)
        )
    listed = [t.id for t in await tenant_store.list_tenants()]
    assert listed == sorted(listed)
    assert set(ids) <= set(listed)
