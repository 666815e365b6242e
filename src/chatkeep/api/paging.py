"""Page sizes (`limit`, `messages`): bounded by CHATKEEP_MAX_PAGE_SIZE rather than a constant, so the
bound is checked when a request comes and the OpenAPI document states it (api/openapi.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Query
from fastapi.exceptions import RequestValidationError

from chatkeep.config import Settings

# Marks a page-size parameter in the schema; the OpenAPI document replaces it with the maximum.
PAGE_SIZE_MARK = "x-chatkeep-page-size"


def page_size(*, minimum: int = 1, description: str | None = None) -> Any:
    """A page-size query parameter: at least `minimum`; its maximum is checked by `check_page_size`."""
    return Query(ge=minimum, description=description, json_schema_extra={PAGE_SIZE_MARK: True})


def cursor(pattern: str, max_length: int) -> Any:
    """A `cursor` query parameter: `next_cursor` of the previous page. Its pattern is stated in the
    schema and checked by the service (which answers `invalid_cursor`), not by the framework."""
    return Query(
        max_length=max_length,
        description="`next_cursor` of the previous page.",
        json_schema_extra={"pattern": pattern},
    )


def check_page_size(settings: Settings, name: str, value: int) -> int:
    """`value`, or the same 422 the schema's own bound would answer when it is above the maximum."""
    maximum = settings.max_page_size
    if value > maximum:
        raise RequestValidationError(
            [
                {
                    "type": "less_than_equal",
                    "loc": ("query", name),
                    "msg": f"Input should be less than or equal to {maximum}",
                    "input": value,
                    "ctx": {"le": maximum},
                }
            ]
        )
    return value
