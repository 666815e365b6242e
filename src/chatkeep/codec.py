"""The JSON shapes chatkeep speaks on the wire (REST answers, WebSocket events, exports).

`api/schemas.py` documents these shapes for OpenAPI; a test checks that every shape built here
validates against its schema, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import time
from typing import Any

import orjson

from chatkeep.errors import InvalidInput
from chatkeep.models import Conversation, Event, Message, Usage

_seconds: dict[int, str] = {}


def iso(ms: int | None) -> str | None:
    """Epoch milliseconds as an ISO 8601 UTC timestamp (`2026-11-22T03:25:00.123Z`).

    A page of messages shares a few distinct seconds, so the formatted second is cached."""
    if ms is None:
        return None
    seconds, millis = divmod(ms, 1000)
    prefix = _seconds.get(seconds)
    if prefix is None:
        if len(_seconds) >= 4096:
            _seconds.clear()
        prefix = _seconds[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{prefix}.{millis:03d}Z"


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise InvalidInput(
                    f"the JSON object has the key {key[:64]!r} more than once",
                    code="duplicate_key",
                    field=key[:64],
                )
            seen.add(key)
    return obj


_strict = json.JSONDecoder(object_pairs_hook=_object)


def loads(data: bytes | str) -> Any:
    """Decode JSON from a client, refusing what other parsers would read differently: bytes that are
    not UTF-8 (no other encoding is guessed, no byte order mark skipped) and an object with a key
    twice (which value counts depends on the parser). Raises InvalidInput (`invalid_json`,
    `duplicate_key`). NaN and Infinity are read, and refused where free-form JSON is checked."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput("the JSON is not valid UTF-8", code="invalid_json") from None
    try:
        return _strict.decode(data)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"not valid JSON: {exc.msg} at {exc.pos}", code="invalid_json") from None
    except RecursionError:
        raise InvalidInput("the JSON is nested too deeply", code="invalid_json") from None


def usage_json(usage: Usage) -> dict[str, int]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def conversation_json(c: Conversation) -> dict[str, Any]:
    return {
        "id": c.id,
        "workspace": c.workspace,
        "user": c.user,
        "title": c.title,
        "mode": c.mode.value,
        "created_at": iso(c.created_at),
        "last_activity_at": iso(c.last_activity_at),
        "expires_at": iso(c.expires_at),
        "starred": c.starred,
        "pinned": c.pinned,
        "archived": c.archived,
        "tags": list(c.tags),
        "message_count": c.message_count,
        "last_seq": c.last_seq,
        "last_message_preview": c.preview,
        "usage": usage_json(c.usage),
        "version": c.version,
    }


def message_json(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "conversation_id": m.conversation_id,
        "seq": m.seq,
        "role": m.role.value,
        "content": m.content,
        "parts": m.parts,
        "metadata": m.metadata,
        "usage": usage_json(m.usage),
        "status": m.status.value,
        "created_at": iso(m.created_at),
    }


def event_json(event: Event) -> dict[str, Any]:
    """The frame of an event on the WebSocket: its type, conversation and seq (and version and
    workspace when it has them), then its data (`message`, `conversation`, or a delta's fields)."""
    frame: dict[str, Any] = {
        "type": event.type.value,
        "conversation_id": event.conversation_id,
        "seq": event.seq,
    }
    if event.version is not None:
        frame["version"] = event.version
    if event.workspace:
        frame["workspace"] = event.workspace
    frame.update(event.data)
    return frame


class Frame:
    """An outgoing WebSocket message, encoded once however many connections it goes to.

    `payload` is the UTF-8 JSON text. A transport may keep its own encoding of the whole frame in
    `wire` (set by the first connection that needs it), so the next connections reuse it as is."""

    __slots__ = ("payload", "wire", "_text")

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.wire: bytes | None = None
        self._text: str | None = None

    @classmethod
    def of(cls, value: Any) -> Frame:
        return cls(orjson.dumps(value))

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = self.payload.decode()
        return self._text
