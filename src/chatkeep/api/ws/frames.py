"""The frames of WS /v1/ws: what a client may send (validated by the models in api/schemas.py), the
server's own frames, and the close codes.

Client frames are JSON text: `auth`, `subscribe`, `unsubscribe`, `append`, `heartbeat`, `stream.delta`,
`stream.finish`, `ping`. A frame with an `id` is answered with that id. The server sends `ready`,
`subscribed`, events (see codec.event_json), `ack`, `error` and `pong`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from chatkeep import codec
from chatkeep.api.problems import public_detail, status_for
from chatkeep.api.schemas import (
    AppendFrame,
    AuthFrame,
    DeltaFrame,
    FinishFrame,
    HeartbeatFrame,
    PingFrame,
    SubscribeFrame,
)
from chatkeep.errors import ChatkeepError, InvalidInput, RateLimited

# Close codes, besides the standard 1000 (normal), 1003 (binary frame), 1009 (frame too large) and
# 1011 (a server error). The README's table explains each to client authors.
UNAUTHENTICATED = 4401  # no valid credentials in time
IDLE = 4408  # nothing received for CHATKEEP_WS_IDLE_TIMEOUT_SECONDS
TOO_SLOW = 4008  # live events arrived faster than the client read them: reconnect and resume
RESUME = 4012  # the server may have missed events meanwhile: reconnect and resume

FRAMES: dict[str, type[BaseModel]] = {
    "subscribe": SubscribeFrame,
    "unsubscribe": SubscribeFrame,
    "append": AppendFrame,
    "heartbeat": HeartbeatFrame,
    "stream.delta": DeltaFrame,
    "stream.finish": FinishFrame,
    "ping": PingFrame,
}


def too_large(text: str, limit: int) -> bool:
    """Whether a text frame exceeds `limit` bytes of UTF-8, without encoding it when its length in
    characters already decides (a character is one to four bytes)."""
    return len(text) > limit or (len(text) * 4 > limit and len(text.encode("utf-8", "surrogatepass")) > limit)


class BadFrame(Exception):
    """A frame that cannot be taken, with its id when it had one (so the error answers it)."""

    def __init__(self, frame_id: str | None, error: InvalidInput) -> None:
        super().__init__(error.detail)
        self.frame_id = frame_id
        self.error = error


def parse(text: str) -> BaseModel:
    """The validated frame. Raises BadFrame (`invalid_json`, `unknown_type`, `invalid_frame`)."""
    try:
        raw = codec.loads(text)  # strict: a key twice is refused (`duplicate_key`)
    except InvalidInput as exc:
        raise BadFrame(None, exc) from None
    frame_id = raw["id"][:64] if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
    kind = raw.get("type") if isinstance(raw, dict) else None
    model = FRAMES.get(kind) if isinstance(kind, str) else None
    if model is None:
        known = ", ".join(sorted(FRAMES))
        raise BadFrame(
            frame_id, InvalidInput(f"unknown frame type {kind!r}; known: {known}", code="unknown_type")
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise BadFrame(frame_id, InvalidInput("; ".join(errors)[:500], code="invalid_frame")) from None


def parse_auth(text: str) -> str:
    """The token of an `auth` frame; raises ValueError for anything else."""
    try:
        return AuthFrame.model_validate(codec.loads(text)).token
    except (ValidationError, InvalidInput):
        raise ValueError("send an auth frame first") from None


def error_frame(frame_id: str | None, exc: ChatkeepError, **context: Any) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "error",
        "id": frame_id,
        "code": exc.code,
        "status": status_for(exc),
        "detail": public_detail(exc),
        **context,
    }
    if isinstance(exc, RateLimited):
        frame["retry_after"] = exc.retry_after
    return frame
