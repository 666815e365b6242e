"""When a request is sent again, and after how long.

Sending again is safe for what the client sends: appends carry a message id (a retry is stored
once), deltas an offset, creates a conversation id, and reads, heartbeats, finishes and settings are
idempotent. An edit with If-Match is sent again only when it never reached the server (the
connection was refused), since a second edit answers 412 once the first was applied."""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from chatkeep.client.errors import retry_after

RETRY_STATUSES = frozenset({429, 503})
# Errors raised before any byte of the request could reach the server.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`attempts` in all (1: never retry). The n-th retry waits a random time up to
    `base_delay * 2**n`, capped at `max_delay` ("full jitter"), or what Retry-After asks, when the
    server sends it and it is no more than `max_retry_after` (longer: the error is raised)."""

    attempts: int = 5
    base_delay: float = 0.2
    max_delay: float = 10.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("attempts must be at least 1 and delays not negative")

    def backoff(self, retry: int) -> float:
        return random.uniform(0.0, min(self.max_delay, self.base_delay * 2**retry))


class Attempts:
    """The retry decisions for one request."""

    def __init__(self, policy: RetryPolicy, idempotent: bool) -> None:
        self.policy = policy
        self.idempotent = idempotent
        self.made = 0

    def after_response(self, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again, or None to take this answer."""
        self.made += 1
        status = response.status_code
        if status not in RETRY_STATUSES or self.made >= self.policy.attempts:
            return None
        # A 429 is refused before anything is done; a 503 may come from a write that failed halfway.
        if status == 503 and not self.idempotent:
            return None
        asked = retry_after(response)
        if asked is not None:
            return asked if asked <= self.policy.max_retry_after else None
        return self.policy.backoff(self.made - 1)

    def after_error(self, exc: httpx.TransportError) -> float | None:
        """Seconds to wait before sending again, or None to raise."""
        self.made += 1
        if self.made >= self.policy.attempts:
            return None
        if not (self.idempotent or isinstance(exc, NOT_SENT)):
            return None
        return self.policy.backoff(self.made - 1)
