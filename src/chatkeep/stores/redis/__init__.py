"""The Redis store (standalone or Cluster): ephemeral conversations with a sliding expiry."""

from chatkeep.stores.redis.store import RedisStore

__all__ = ["RedisStore"]
