"""Caps on what one caller holds open on this instance: WebSockets per user token and per tenant API
key, and subscriptions per WebSocket. A cap of 0 means none. Like the request rates, the counts are
per instance: behind a balancer with N instances a caller may hold up to N times as many."""

from __future__ import annotations

from collections import Counter

from chatkeep.errors import QuotaExceeded
from chatkeep.service.auth import Principal


class SocketQuotas:
    def __init__(self, *, per_user: int = 0, per_key: int = 0, subscriptions: int = 0) -> None:
        self.per_user = per_user
        self.per_key = per_key
        self.subscriptions = subscriptions
        self._open: Counter[str] = Counter()

    def open(self, p: Principal) -> None:
        """Count a new socket of this caller, or raise QuotaExceeded (`too_many_sockets`), counting
        nothing. Every successful `open` is paired with a `close`."""
        cap = self.per_key if p.is_tenant_key else self.per_user
        key = p.rate_key
        if cap and self._open[key] >= cap:
            who = "tenant API key" if p.is_tenant_key else "user"
            raise QuotaExceeded(
                f"this {who} already has {cap} WebSockets open here; close one first",
                code="too_many_sockets",
                limit=cap,
            )
        self._open[key] += 1

    def close(self, p: Principal) -> None:
        key = p.rate_key
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]

    def sockets(self, p: Principal) -> int:
        return self._open.get(p.rate_key, 0)

    def check_subscription(self, held: int) -> None:
        """Raise QuotaExceeded (`too_many_subscriptions`) when a socket holding `held` subscriptions
        may not add another."""
        if self.subscriptions and held >= self.subscriptions:
            raise QuotaExceeded(
                f"a WebSocket may follow at most {self.subscriptions} conversations and workspaces; "
                "unsubscribe from one first, or open another socket",
                code="too_many_subscriptions",
                limit=self.subscriptions,
            )
