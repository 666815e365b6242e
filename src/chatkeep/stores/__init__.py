"""Stores, chosen by URL through a lazy registry: a backend's module (and its driver) is imported only
when a URL asks for it. This is the only module that names concrete backends."""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from chatkeep.errors import ConfigError
from chatkeep.stores.base import Store, TenantStore
from chatkeep.stores.budget import ByteBudget
from chatkeep.stores.url import StoreURL

# scheme -> (class path, driver module, extra that installs the driver)
BACKENDS: dict[str, tuple[str, str | None, str | None]] = {
    "memory": ("chatkeep.stores.memory:MemoryStore", None, None),
    "sqlite": ("chatkeep.stores.sql:SqlStore", "aiosqlite", None),
    "sqlite+aiosqlite": ("chatkeep.stores.sql:SqlStore", "aiosqlite", None),
    "postgresql": ("chatkeep.stores.sql:SqlStore", "asyncpg", "postgres"),
    "postgres": ("chatkeep.stores.sql:SqlStore", "asyncpg", "postgres"),
    "postgresql+asyncpg": ("chatkeep.stores.sql:SqlStore", "asyncpg", "postgres"),
    "redis": ("chatkeep.stores.redis:RedisStore", "redis", "redis"),
    "rediss": ("chatkeep.stores.redis:RedisStore", "redis", "redis"),
    "redis+cluster": ("chatkeep.stores.redis:RedisStore", "redis", "redis"),
}


def open_store(url: str | StoreURL, **kwargs: Any) -> Store:
    """A store for `url`, constructed but not yet connected (call `await store.connect()`)."""
    parsed = url if isinstance(url, StoreURL) else StoreURL.parse(url)
    try:
        target, driver, extra = BACKENDS[parsed.scheme]
    except KeyError:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(
            f"unknown store scheme {parsed.scheme!r} in {parsed.redacted}; known: {known}"
        ) from None
    if driver is not None and importlib.util.find_spec(driver) is None:
        hint = f"pip install 'chatkeep[{extra}]'" if extra else f"pip install {driver}"
        raise ConfigError(f"{parsed.redacted} needs the {driver} driver: {hint}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    store: Store = cls(parsed, **kwargs)
    return store


def open_ephemeral(
    url: str | None,
    *,
    refuse_on_outage: bool = False,
    journal_max_bytes: int = 128 * 1024 * 1024,
    journal_tenant_share: float = 0.25,
    shared: bool = False,
    budget: ByteBudget | None = None,
) -> Store:
    """The store for ephemeral conversations: memory when no URL is given (bounded by `budget`); a
    Redis store behind a FallbackStore (so an outage loses no acknowledged write, or refuses writes)
    for redis URLs.
    `shared`: other instances use the same Redis (their seqs given during an outage are provisional)."""
    if not url:
        return open_store("memory://", budget=budget)
    store = open_store(url)
    if StoreURL.parse(url).scheme.startswith("redis"):
        from chatkeep.stores.fallback import FallbackStore

        return FallbackStore(
            store,
            refuse=refuse_on_outage,
            journal_max_bytes=journal_max_bytes,
            tenant_share=journal_tenant_share,
            shared=shared,
        )
    return store


__all__ = ["BACKENDS", "ByteBudget", "Store", "StoreURL", "TenantStore", "open_ephemeral", "open_store"]
