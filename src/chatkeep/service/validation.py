"""Rules for values a client sends: identifiers, text, tags, free-form JSON and message size.

Text must be storable everywhere: PostgreSQL refuses NUL characters and every store refuses
unpaired surrogates, so both are rejected here with a clear error instead of failing in a store.
"""

from __future__ import annotations

import json
import math
from typing import Any

from chatkeep.errors import InvalidInput, TooLarge
from chatkeep.models import ID_MAX_LENGTH, NewMessage, is_id

MAX_TITLE_CHARS = 200
MAX_TAGS = 20
MAX_TAG_CHARS = 64
MAX_JSON_DEPTH = 32


def check_id(value: str, what: str) -> str:
    if not is_id(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidInput(
            f"{what} {shown!r} is not a valid id: use 1-{ID_MAX_LENGTH} letters, digits or _ . @ + -, "
            "starting with a letter, digit or _",
            code="invalid_id",
            field=what,
        )
    return value


def check_text(value: str, what: str, *, max_chars: int | None = None) -> str:
    if "\x00" in value:
        raise InvalidInput(f"{what} contains a NUL character", code="invalid_text", field=what)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{what} is not valid Unicode (unpaired surrogate)", code="invalid_text", field=what
        ) from None
    if max_chars is not None and len(value) > max_chars:
        raise InvalidInput(f"{what} is longer than {max_chars} characters", code="invalid_text", field=what)
    return value


def check_tags(tags: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Tags, with duplicates dropped (first kept) and each one checked."""
    unique = tuple(dict.fromkeys(tags))
    if len(unique) > MAX_TAGS:
        raise InvalidInput(f"at most {MAX_TAGS} tags", code="invalid_tags", field="tags")
    for tag in unique:
        check_text(tag, "tag", max_chars=MAX_TAG_CHARS)
        if not tag.strip() or any(ch < " " for ch in tag):
            raise InvalidInput(
                f"tag {tag!r} is blank or holds control characters", code="invalid_tags", field="tags"
            )
    return unique


def check_json(value: Any, what: str) -> Any:
    """Walk free-form JSON (metadata, parts): bounded depth, storable strings, finite numbers."""

    def walk(node: Any, depth: int) -> None:
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput(
                f"{what} is nested deeper than {MAX_JSON_DEPTH} levels", code="invalid_json", field=what
            )
        if isinstance(node, str):
            check_text(node, what)
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise InvalidInput(f"{what} holds a non-finite number", code="invalid_json", field=what)
        elif isinstance(node, int) and not isinstance(node, bool):
            if not -(2**63) <= node < 2**63:
                raise InvalidInput(f"{what} holds an integer beyond 64 bits", code="invalid_json", field=what)
        elif isinstance(node, dict):
            for key, item in node.items():
                check_text(key, what)
                walk(item, depth + 1)
        elif isinstance(node, list):
            for item in node:
                walk(item, depth + 1)

    walk(value, 0)
    return value


def message_bytes(message: NewMessage) -> int:
    """Size of a message as the limit counts it: content, parts and metadata, UTF-8 encoded."""
    size = len(message.content.encode("utf-8"))
    for extra in (message.parts, message.metadata):
        if extra is not None:
            size += len(json.dumps(extra, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    return size


def check_message(message: NewMessage, max_bytes: int) -> NewMessage:
    check_id(message.id, "message id")
    check_text(message.content, "content")
    if message.parts is not None:
        check_json(message.parts, "parts")
    if message.metadata is not None:
        check_json(message.metadata, "metadata")
    size = message_bytes(message)
    if size > max_bytes:
        raise TooLarge(
            f"message {message.id!r} is {size} bytes; the limit is {max_bytes}",
            code="message_too_large",
            limit=max_bytes,
        )
    return message
