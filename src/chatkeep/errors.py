"""The error tree. Every error carries a stable machine-readable `code`; `api/problems.py` alone maps
errors to HTTP statuses and WebSocket close codes."""

from __future__ import annotations

from typing import Any


class ChatkeepError(Exception):
    """Base of every error chatkeep raises on purpose."""

    code = "error"

    def __init__(
        self, detail: str, *, code: str | None = None, public: str | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # What a client may be told when `detail` is for the log only (server errors: it may name
        # a store's host or a driver); None means the generic message of the status.
        self.public = public
        if code is not None:
            self.code = code
        self.extra = extra


class InvalidInput(ChatkeepError):
    """The request is well-formed but a value breaks a rule (id charset, cursor, text)."""

    code = "invalid_input"


class UnsupportedMediaType(InvalidInput):
    code = "unsupported_media_type"


class Unauthenticated(ChatkeepError):
    code = "unauthenticated"


class Forbidden(ChatkeepError):
    """Authenticated, but this kind of caller may not do this (e.g. a user token on a tenant setting)."""

    code = "forbidden"


class NotFound(ChatkeepError):
    """No such resource for this caller. Other tenants' and users' data also answers this."""

    code = "not_found"


class Expired(NotFound):
    """The conversation existed but its sliding expiry window passed (told only to those in its scope)."""

    code = "expired"


class Conflict(ChatkeepError):
    code = "conflict"


class PreconditionRequired(ChatkeepError):
    code = "precondition_required"


class VersionMismatch(ChatkeepError):
    """An If-Match version did not match the stored one."""

    code = "version_mismatch"

    def __init__(self, detail: str, *, current_version: int) -> None:
        super().__init__(detail, current_version=current_version)
        self.current_version = current_version


class TooLarge(ChatkeepError):
    """A body, message or batch exceeds its size limit."""

    code = "too_large"


class QuotaExceeded(ChatkeepError):
    """A count limit is reached (conversations per tenant or user, messages per conversation)."""

    code = "quota_exceeded"


class StorageFull(ChatkeepError):
    """A byte budget of data held in memory is used up: the write is refused and changes nothing."""

    code = "storage_full"


class RateLimited(ChatkeepError):
    code = "rate_limited"

    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.retry_after = retry_after


class StoreUnavailable(ChatkeepError):
    """A backing server cannot be reached. Carries the store's redacted URL, never a password."""

    code = "store_unavailable"


class ConfigError(ChatkeepError):
    """Settings or a store URL that cannot work (unknown scheme, missing driver, bad option)."""

    code = "config_error"
