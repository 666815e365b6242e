"""Event buses, chosen by URL. This is the only module that names concrete buses."""

from __future__ import annotations

from chatkeep.errors import ConfigError
from chatkeep.events.base import EventBus, SubscriberLagged
from chatkeep.stores.url import StoreURL


def open_bus(url: str | None) -> EventBus:
    """An event bus for `url` (None or `local://`: in-process), constructed but not connected."""
    if url is None or url in ("", "local://", "memory://"):
        from chatkeep.events.local import LocalEventBus

        return LocalEventBus()
    parsed = StoreURL.parse(url)
    if parsed.scheme in ("redis", "rediss"):
        from chatkeep.events.redis import RedisEventBus

        return RedisEventBus(parsed)
    raise ConfigError(f"unknown event bus URL {parsed.redacted}; use local:// or redis://host:6379/0")


__all__ = ["EventBus", "SubscriberLagged", "open_bus"]
