"""Limits: the numbers that keep one client from filling the store or flooding the service."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field

from chatkeep.config import Settings, settings_of
from chatkeep.errors import RateLimited
from chatkeep.models import LimitPolicy


@dataclass(frozen=True, slots=True)
class Limits:
    max_message_bytes: int = 64 * 1024
    max_conversations_per_tenant: int | None = 100_000
    max_conversations_per_user: int | None = 1_000
    max_messages_per_conversation: int | None = 10_000
    message_limit_policy: LimitPolicy = LimitPolicy.REJECT
    max_batch_messages: int = 100
    max_page_size: int = 200

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return settings_of(cls, settings)


@dataclass(eq=False)
class RateLimiter:
    """Token buckets per caller: `rate` requests a second sustained, `burst` at once. Rate 0 disables.

    Buckets live in this process: with N instances behind a balancer a caller gets up to N times the
    rate. The oldest idle buckets are forgotten past `max_callers`.
    """

    rate: float
    burst: int
    _: KW_ONLY
    clock: Callable[[], float] = time.monotonic
    max_callers: int = 100_000
    _buckets: OrderedDict[str, tuple[float, float]] = field(
        default_factory=OrderedDict, init=False, repr=False
    )

    def check(self, caller: str) -> None:
        """Take one token for `caller`, or raise `RateLimited` with the seconds until one is free."""
        self.guard(caller)
        self.charge(caller)

    def guard(self, caller: str) -> None:
        """Raise `RateLimited` if `caller` has no token left, without taking one."""
        if self.rate <= 0:
            return
        tokens = self._tokens(caller)
        if tokens < 1.0:
            wait = (1.0 - tokens) / self.rate
            raise RateLimited(f"too many requests; retry in {math.ceil(wait)} s", retry_after=wait)

    def charge(self, caller: str) -> None:
        """Take one token for `caller` (none left: the bucket stays empty)."""
        if self.rate <= 0:
            return
        self._buckets[caller] = (max(0.0, self._tokens(caller) - 1.0), self.clock())
        if len(self._buckets) > self.max_callers:
            self._buckets.popitem(last=False)

    def _tokens(self, caller: str) -> float:
        now = self.clock()
        tokens, updated = self._buckets.pop(caller, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - updated) * self.rate)
        self._buckets[caller] = (tokens, now)
        return tokens
