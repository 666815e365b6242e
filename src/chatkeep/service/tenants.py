"""Tenants: creation (with their API key and token secret), settings, and the demo tenant."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

from chatkeep.domain import errors
from chatkeep.errors import ConfigError, Conflict, InvalidInput
from chatkeep.models import Tenant, TenantSettings, now_ms
from chatkeep.service.auth import (
    DEMO_TENANT,
    Authenticator,
    hash_key,
    issue_token,
    new_api_key,
    new_token_secret,
)
from chatkeep.service.validation import check_id, check_text
from chatkeep.stores.base import Store, TenantStore

DEFAULT_SECRET_OVERLAP_SECONDS = 86_400
__all__ = ["DEMO_TENANT", "NewTenant", "TenantService", "slug", "tenant_store_of"]


@dataclass(frozen=True, slots=True)
class NewTenant:
    """A tenant just created, with the two secrets that are shown only this once."""

    tenant: Tenant
    api_key: str


def slug(name: str) -> str:
    """A tenant id from a display name: `Acme Corp.` -> `acme-corp`."""
    return re.sub(r"[^a-z0-9_.@+-]+", "-", name.strip().lower()).strip("-.")[:64]


def tenant_store_of(durable: Store) -> TenantStore:
    """The durable store, which keeps the tenants too. A backend that keeps none (Redis holds
    ephemeral conversations only) raises `ConfigError` here, when the service is built, rather than
    at the first request that authenticates."""
    if isinstance(durable, TenantStore):
        return durable
    raise ConfigError(
        f"the durable store {durable.url.redacted} keeps no tenants: set CHATKEEP_DURABLE_URL to "
        "sqlite:///path/to/chatkeep.db, postgresql://user:pass@host/db or memory:// "
        "(a Redis URL belongs in CHATKEEP_EPHEMERAL_URL)"
    )


class TenantService:
    def __init__(self, store: TenantStore, authenticator: Authenticator) -> None:
        self._store = store
        self._auth = authenticator

    async def create(self, name: str, tenant_id: str | None = None) -> NewTenant:
        """Create a tenant. Raises `Conflict` (code `tenant_exists`) if the id is taken."""
        check_text(name, "tenant name", max_chars=200)
        if not name.strip():
            raise InvalidInput("the tenant name is empty", code="invalid_input")
        tid = check_id(tenant_id if tenant_id is not None else slug(name), "tenant id")
        api_key = new_api_key()
        tenant = Tenant(
            id=tid,
            name=name.strip(),
            api_key_hash=hash_key(api_key),
            token_secret=new_token_secret(),
            created_at=now_ms(),
        )
        await self._store.create_tenant(tenant)
        return NewTenant(tenant, api_key)

    async def list_tenants(self) -> list[Tenant]:
        return await self._store.list_tenants()

    async def get(self, tenant_id: str) -> Tenant:
        tenant = await self._store.get_tenant(tenant_id)
        if tenant is None:
            raise errors.tenant_not_found(tenant_id)
        return tenant

    async def rotate_key(self, tenant_id: str) -> NewTenant:
        """Replace the tenant's API key; the old key stops working."""
        tenant = await self.get(tenant_id)
        api_key = new_api_key()
        rotated = replace(tenant, api_key_hash=hash_key(api_key))
        await self._store.update_tenant(rotated)
        self._auth.forget()
        return NewTenant(rotated, api_key)

    async def rotate_secret(
        self, tenant_id: str, overlap_seconds: int = DEFAULT_SECRET_OVERLAP_SECONDS
    ) -> Tenant:
        """Give the tenant a new token secret. Tokens signed with the old one keep working for
        `overlap_seconds` (0: they stop now), so the tenant's backend can switch without logging
        anyone out; the secret before that is forgotten."""
        if overlap_seconds < 0:
            raise InvalidInput("the overlap is a number of seconds >= 0", code="invalid_input")
        tenant = await self.get(tenant_id)
        rotated = replace(
            tenant,
            token_secret=new_token_secret(),
            previous_token_secret=tenant.token_secret if overlap_seconds else None,
            previous_secret_expires_at=now_ms() + overlap_seconds * 1000 if overlap_seconds else None,
        )
        await self._store.update_tenant(rotated)
        self._auth.forget()
        return rotated

    async def set_token_lifetime(self, tenant_id: str, seconds: int | None) -> Tenant:
        """Set the longest lifetime of the tenant's user tokens (None: the server's setting)."""
        if seconds is not None and seconds < 60:
            raise InvalidInput("a token lifetime is at least 60 seconds", code="invalid_input")
        tenant = await self.get(tenant_id)
        return await self.update_settings(
            tenant, replace(tenant.settings, max_token_lifetime_seconds=seconds)
        )

    async def merge_settings(self, tenant: Tenant, changes: Mapping[str, object]) -> Tenant:
        """Change the named persistence settings and keep the others. Nothing named is refused
        (`InvalidInput`, code `empty_patch`): an empty change is a mistake, not a reset."""
        known = {"default_mode", "ephemeral_ttl_seconds", "pinned_never_expire"}
        if not changes:
            raise InvalidInput("the body changes nothing: send at least one setting", code="empty_patch")
        unknown = set(changes) - known
        if unknown:
            raise InvalidInput(f"unknown setting(s): {', '.join(sorted(unknown))}", code="invalid_input")
        if "default_mode" in changes and changes["default_mode"] is None:
            raise InvalidInput("'default_mode' cannot be null", code="invalid_input")
        current = await self.get(tenant.id)  # not a cached copy: keep what others changed meanwhile
        merged = replace(current.settings, **changes)  # type: ignore[arg-type]
        return await self.update_settings(current, merged)

    async def update_settings(self, tenant: Tenant, settings: TenantSettings) -> Tenant:
        updated = replace(tenant, settings=settings)
        await self._store.update_tenant(updated)
        self._auth.forget()
        return updated

    async def ensure_demo(self) -> Tenant:
        """The demo tenant of dev mode, created on first use."""
        tenant = await self._store.get_tenant(DEMO_TENANT)
        if tenant is None:
            with contextlib.suppress(Conflict):  # another instance created it first
                await self.create("Demo", DEMO_TENANT)
            tenant = await self.get(DEMO_TENANT)
        return tenant

    async def dev_token(self, user: str, workspaces: list[str], ttl_seconds: int) -> str:
        """A user token of the demo tenant (dev mode only; the API refuses it otherwise)."""
        check_id(user, "user")
        for workspace in workspaces:
            if workspace != "*":
                check_id(workspace, "workspace")
        tenant = await self.ensure_demo()
        return issue_token(tenant, user, workspaces or ["*"], ttl_seconds=ttl_seconds)
