"""ASGI middleware: request body limit, strict JSON bodies and request metrics."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatkeep import codec
from chatkeep.api.metrics import Metrics
from chatkeep.api.problems import problem, problem_for
from chatkeep.errors import ChatkeepError, InvalidInput, TooLarge


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not they declare a length."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                declared = value
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            response = problem(
                413,
                "body_too_large",
                f"the request body exceeds {self.max_bytes} bytes",
                limit=self.max_bytes,
            )
            await response(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise TooLarge(
                        f"the request body exceeds {self.max_bytes} bytes",
                        code="body_too_large",
                        limit=self.max_bytes,
                    )
            return message

        await self.app(scope, limited, send)


# Where StrictJson leaves the body it decoded, for the routes to read (api/route.StrictRoute)
# instead of decoding it again.
PARSED_JSON = "chatkeep.json"


class StrictJson:
    """Refuse a JSON body that is ambiguous (a key twice, bytes not UTF-8) with 400, before any route
    reads it: the framework's parser would keep the last of two keys and guess other encodings.
    Bodies the framework reads as JSON are checked: those sent as `application/json`, `+json`, or
    with no content type. The decoded body is kept in the scope under PARSED_JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _json_body(scope):
            await self.app(scope, receive, send)
            return
        messages: list[Message] = []
        body = bytearray()
        try:
            while True:
                message = await receive()
                messages.append(message)
                if message["type"] != "http.request":
                    break
                body += message.get("body", b"")
                if not message.get("more_body", False):
                    break
            if body:
                scope[PARSED_JSON] = codec.loads(bytes(body))
        except InvalidInput as exc:  # the body cannot be read one way only
            await problem(400, exc.code, exc.detail)(scope, receive, send)
            return
        except ChatkeepError as exc:  # the body limit tripped
            await problem_for(exc)(scope, receive, send)
            return

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)


def _json_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            media: bytes = value.split(b";", 1)[0].strip().lower()
            return media == b"application/json" or media.endswith(b"+json")
    return True


class RequestMetrics:
    """Count and time every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        # The labelled series by (method, route, status): looking a label set up costs more than
        # counting, and the routes, methods and statuses are few.
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            key = (scope["method"], route, status)
            series = self._series.get(key)
            if series is None:
                method = key[0]
                series = (
                    self.metrics.requests.labels(method, route, str(status)),
                    self.metrics.latency.labels(method, route),
                )
                if len(self._series) < 4096:  # unmatched paths share one route label: few keys
                    self._series[key] = series
            series[0].inc()
            series[1].observe(time.perf_counter() - started)
