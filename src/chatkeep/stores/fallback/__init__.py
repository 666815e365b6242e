"""The Redis-outage fallback: see `store.FallbackStore` and the README's outage contract."""

from chatkeep.stores.fallback.store import FallbackStore

__all__ = ["FallbackStore"]
