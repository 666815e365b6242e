"""The errors the client raises. An API error answer (`application/problem+json`) becomes a
`ChatkeepHTTPError` of the class for its status, carrying the problem's `code`, `detail` and every
other field it had (such as the stored `message` of a `message_id_conflict`)."""

from __future__ import annotations

from typing import Any

import httpx


class ChatkeepClientError(Exception):
    """Every error of `chatkeep.client`."""


class ChatkeepConnectionError(ChatkeepClientError):
    """The server could not be reached (or stopped answering) within the retries allowed."""


class ChatkeepHTTPError(ChatkeepClientError):
    """An error answer. `code` is the server's stable machine-readable code, `detail` its text for
    people, `problem` the whole problem document."""

    def __init__(
        self, status: int, code: str, detail: str, problem: dict[str, Any], retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problem = problem
        self.retry_after = retry_after

    @property
    def title(self) -> str:
        return str(self.problem.get("title", ""))

    @property
    def type(self) -> str:
        return str(self.problem.get("type", ""))

    def __getitem__(self, name: str) -> Any:
        return self.problem[name]


class BadRequestError(ChatkeepHTTPError):
    """400 or 422: the request breaks the API's rules; `problem["errors"]` lists what, when known."""


class AuthenticationError(ChatkeepHTTPError):
    """401: missing, invalid or expired credentials (after asking the token provider again)."""


class ForbiddenError(ChatkeepHTTPError):
    """403: not allowed for this kind of caller."""


class NotFoundError(ChatkeepHTTPError):
    """404: no such conversation for this caller (or it expired: code `expired`)."""


class ConflictError(ChatkeepHTTPError):
    """409: conflicts with the current state or a count limit."""


class PreconditionFailedError(ChatkeepHTTPError):
    """412: the version given as If-Match is no longer the current one."""


class TooLargeError(ChatkeepHTTPError):
    """413: body, message or batch too large."""


class RateLimitedError(ChatkeepHTTPError):
    """429, once the retries are used up; `retry_after` says how long the server asked to wait."""


class UnavailableError(ChatkeepHTTPError):
    """503 (a backing store is unavailable), once the retries are used up; or 507 (memory budget)."""


CLASSES: dict[int, type[ChatkeepHTTPError]] = {
    400: BadRequestError,
    422: BadRequestError,
    401: AuthenticationError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    413: TooLargeError,
    429: RateLimitedError,
    503: UnavailableError,
    507: UnavailableError,
}


def retry_after(response: httpx.Response) -> float | None:
    """The Retry-After header in seconds (the delay form; an HTTP date is not used by chatkeep)."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def http_error(response: httpx.Response) -> ChatkeepHTTPError:
    """The error for an error answer, from its problem document (or its status, when it has none)."""
    problem: dict[str, Any]
    try:
        body = response.json()
        problem = body if isinstance(body, dict) else {"detail": str(body)}
    except ValueError:
        problem = {"detail": response.text[:500]}
    status = response.status_code
    code = str(problem.get("code") or f"http_{status}")
    detail = str(problem.get("detail") or response.reason_phrase)
    cls = CLASSES.get(status, ChatkeepHTTPError)
    return cls(status, code, detail, problem, retry_after(response))
