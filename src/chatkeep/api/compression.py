"""Compressed answers: zstd, br or gzip, whichever the client accepts (by its q-values, the server's
order breaking ties), for text and JSON answers of at least `min_bytes`.

A reload of 50 messages is about 15 KiB of JSON, mostly field names and text that repeat; answers
smaller than a packet are sent as they are. Never compressed: WebSocket traffic (not HTTP answers),
`text/event-stream` (each event must reach the client when it is sent, not when a compressor's block
fills), answers that already carry a Content-Encoding, and media that is compressed already. A
streamed answer (an export's JSONL) is compressed as it goes, each piece flushed as it is sent, so
a reader sees every line as soon as it would have uncompressed.

Every answer whose media could be compressed says `Vary: Accept-Encoding`, compressed or not.
ETags pass unchanged: those of the API name a conversation's version (`"3"`), which `If-Match`
compares and which compression does not change, and no API answer is served conditionally on
`If-None-Match`. The static files, which are served conditionally (`api/routes/pages.py`), are
compressed once by their route, each coding with its own ETag, and pass here as already encoded.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import brotli  # type: ignore[import-untyped]
import zstandard
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COMPRESSIBLE = (
    b"text/",
    b"application/json",
    b"application/x-ndjson",
    b"application/javascript",
    b"image/svg+xml",
)
NEVER = (b"text/event-stream",)


class Encoder:
    """One answer's compressor: `chunk` compresses and flushes what it is given, `finish` ends it."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zstd: Any = None
        self._zlib: Any = None
        self._brotli: Any = None
        if coding == "zstd":
            self._zstd = zstandard.ZstdCompressor(level=3).compressobj()
        elif coding == "br":
            self._brotli = brotli.Compressor(quality=4)
        else:
            self._zlib = zlib.compressobj(5, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing

    def chunk(self, data: bytes) -> bytes:
        if self._zstd is not None:
            out: bytes = self._zstd.compress(data) + self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        elif self._brotli is not None:
            out = self._brotli.process(data) + self._brotli.flush()
        else:
            out = self._zlib.compress(data) + self._zlib.flush(zlib.Z_SYNC_FLUSH)
        return out

    def finish(self) -> bytes:
        if self._zstd is not None:
            out: bytes = self._zstd.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        elif self._brotli is not None:
            out = self._brotli.finish()
        else:
            out = self._zlib.flush(zlib.Z_FINISH)
        return out


def _whole(coding: str) -> Callable[[bytes], bytes]:
    """A one-shot compressor for an answer whose body arrives in one piece."""
    if coding == "zstd":
        return zstandard.ZstdCompressor(level=3).compress
    if coding == "br":
        return lambda data: bytes(brotli.compress(data, quality=4))
    return lambda data: zlib.compress(data, 5, wbits=16 + zlib.MAX_WBITS)


OFFERED = ("zstd", "br", "gzip")
WHOLE = {coding: _whole(coding) for coding in OFFERED}


def choose(accept_encoding: str) -> str | None:
    """The coding to answer in: of those offered, the one the client weighs highest (q > 0),
    ties going to the server's order (zstd, br, gzip); None for an uncompressed answer. `*` stands
    for every coding the header does not name."""
    weights: dict[str, float] = {}
    for item in accept_encoding.split(","):
        name, _, params = item.partition(";")
        name = name.strip().lower()
        if not name:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        weights[name] = q
    wildcard = weights.get("*")
    best: str | None = None
    best_q = 0.0
    for coding in OFFERED:
        q = weights.get(coding, wildcard if wildcard is not None else 0.0)
        if q > best_q:
            best, best_q = coding, q
    return best


MIN_BYTES = 1024


class Compression:
    """Pure ASGI middleware compressing HTTP answers (see the module's docstring)."""

    def __init__(self, app: ASGIApp, min_bytes: int = MIN_BYTES) -> None:
        self.app = app
        self.min_bytes = min_bytes
        self._choices: dict[bytes, str | None] = {}  # Accept-Encoding values repeat: parse each once

    def _coding(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                coding = self._choices.get(value, "")
                if coding == "":
                    coding = choose(value.decode("latin-1"))
                    if len(self._choices) >= 256:
                        self._choices.clear()
                    self._choices[value] = coding
                return coding
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        coding = self._coding(scope)
        min_bytes = self.min_bytes
        start: Message | None = None
        encoder: Encoder | None = None
        passing = False

        async def compressing(message: Message) -> None:
            nonlocal start, encoder, passing
            kind = message["type"]
            if kind == "http.response.start":
                headers = MutableHeaders(raw=message["headers"])
                status = message["status"]
                if status == 304:  # no body and no media type: it stands for an answer that varies
                    passing = True
                    _vary(headers)
                    await send(message)
                    return
                if not _compressible(headers):
                    passing = True
                    await send(message)
                    return
                _vary(headers)
                if coding is None or status < 200 or status in (204, 206):
                    passing = True
                    await send(message)
                    return
                start = message
                return
            if kind != "http.response.body" or passing:
                await send(message)
                return
            assert start is not None and coding is not None
            body: bytes = message.get("body", b"")
            more = message.get("more_body", False)
            if encoder is None:
                headers = MutableHeaders(raw=start["headers"])
                if not more:
                    passing = True
                    if len(body) >= min_bytes:
                        body = WHOLE[coding](body)
                        _encoded(headers, coding)
                        headers["content-length"] = str(len(body))
                        message = {"type": kind, "body": body, "more_body": False}
                    await send(start)
                    await send(message)
                    return
                encoder = Encoder(coding)
                _encoded(headers, coding)
                del headers["content-length"]
                await send(start)
            out = encoder.chunk(body) if body else b""
            if not more:
                out += encoder.finish()
            await send({"type": kind, "body": out, "more_body": more})

        await self.app(scope, receive, compressing)


def compressible(media_type: str) -> bool:
    """Whether answers of this media type are compressed (text and JSON; not event streams)."""
    media = media_type.encode("latin-1").lower()
    if not media or media.startswith(NEVER):
        return False
    return media.startswith(COMPRESSIBLE) or media.split(b";", 1)[0].endswith(b"+json")


def compress_once(coding: str, data: bytes) -> bytes:
    """`data` compressed tighter than an answer is: for a body compressed once and sent often (the
    levels keep the first request of a 64 KiB file under about 20 ms a coding)."""
    if coding == "zstd":
        return zstandard.ZstdCompressor(level=15).compress(data)
    if coding == "br":
        return bytes(brotli.compress(data, quality=9))
    return zlib.compress(data, 9, wbits=16 + zlib.MAX_WBITS)


def _compressible(headers: MutableHeaders) -> bool:
    return "content-encoding" not in headers and compressible(headers.get("content-type", ""))


def _vary(headers: MutableHeaders) -> None:
    vary = headers.get("vary")
    if vary is None:
        headers["vary"] = "Accept-Encoding"
    elif vary.strip() != "*" and "accept-encoding" not in vary.lower():
        headers["vary"] = f"{vary}, Accept-Encoding"


def _encoded(headers: MutableHeaders, coding: str) -> None:
    headers["content-encoding"] = coding
