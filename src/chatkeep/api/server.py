"""Serving chatkeep with uvicorn: one configuration for `chatkeep serve`, the tests and the benchmarks.

WebSockets run chatkeep's protocol (api/wsprotocol.py): uvicorn's `websockets-sansio` one with direct
frame writes for fan-out and less memory per idle socket; the README's benchmark compares it with
uvicorn's stock implementations. HTTP runs uvicorn's httptools protocol with a deadline for a
request to arrive (api/httpprotocol.py). Per-message compression is off: chat frames are small, and
compressing per socket would make every follower's bytes its own (and cost ~40 KiB of zlib state per
socket).
"""

from __future__ import annotations

import gc
from typing import Any

import uvicorn

from chatkeep.api.httpprotocol import http_protocol
from chatkeep.api.wsprotocol import WebSocketProtocol
from chatkeep.config import Settings


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """How chatkeep is served. Frames over CHATKEEP_MAX_BODY_BYTES are refused by the protocol before
    they are buffered (close 1009)."""
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "ws": WebSocketProtocol,
        "ws_max_size": settings.max_body_bytes,
        "ws_per_message_deflate": False,
        "http": http_protocol(settings.request_read_timeout_seconds),
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "limit_concurrency": settings.max_connections or None,
    }
    return uvicorn.Config(app, **{**options, **overrides})


# Young objects a collection of the youngest generation waits for. A request allocates hundreds of
# container objects, nearly all freed by reference counting when it ends; the default (700) traces
# those still alive (the requests in flight) again and again.
YOUNG_THRESHOLD = 20_000


def serve(app: Any, settings: Settings) -> None:
    """Serve `app` until stopped. What exists before serving (modules, routes, schemas) lives as long
    as the process, so it is frozen out of the cyclic collector, which would otherwise trace all of
    it again at every full collection under load."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    uvicorn.Server(uvicorn_config(app, settings)).run()
