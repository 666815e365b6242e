"""Compressed answers, through a real `chatkeep serve` over HTTP: the bytes on the wire are read raw
and decoded here, so what is checked is what a client receives."""

from __future__ import annotations

import gzip
import uuid
from collections.abc import Iterator

import brotli
import httpx
import pytest
import zstandard
from starlette.applications import Starlette
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from chatkeep.api import client_module
from chatkeep.api.compression import Compression, choose
from tests.server import ServerProcess

DECODE = {
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("compression")
    env = {
        "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp}/chatkeep.db",
        "CHATKEEP_DEV_MODE": "1",
        "CHATKEEP_DEMO_ASSISTANT": "off",
        "CHATKEEP_LOG_LEVEL": "warning",
        "CHATKEEP_USER_RATE_PER_SECOND": "0",
    }
    process = ServerProcess(env, tmp / "server.log").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def reload(server: ServerProcess) -> tuple[str, dict[str, str]]:
    """The path of a reload of a 50-message conversation, and the headers to read it with."""
    user = f"u{uuid.uuid4().hex[:12]}"
    token = httpx.get(f"{server.url}/v1/dev/token", params={"user": user}).json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    cid = str(uuid.uuid4())
    created = httpx.post(
        f"{server.url}/v1/conversations", json={"workspace": "w", "id": cid}, headers=headers
    )
    assert created.status_code == 201
    messages = [{"id": f"m{i}", "role": "user", "content": f"message {i} " * 20} for i in range(50)]
    appended = httpx.post(
        f"{server.url}/v1/conversations/{cid}/messages:batch", json={"messages": messages}, headers=headers
    )
    assert appended.status_code == 201
    return f"/v1/conversations/{cid}?messages=50", headers


def raw(url: str, accept: str | None, headers: dict[str, str] | None = None) -> tuple[httpx.Response, bytes]:
    """The answer and its body as sent (not decoded). `accept` None sends no Accept-Encoding."""
    sent = dict(headers or {})
    with httpx.Client() as client:
        request = client.build_request("GET", url, headers=sent)
        if accept is None:
            del request.headers["accept-encoding"]
        else:
            request.headers["accept-encoding"] = accept
        response = client.send(request, stream=True)
        body = b"".join(response.iter_raw())
        response.close()
    return response, body


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_a_reload_is_sent_in_the_coding_asked_and_decodes_to_the_same_bytes(
    server: ServerProcess, reload: tuple[str, dict[str, str]], coding: str
) -> None:
    path, headers = reload
    plain, plain_body = raw(server.url + path, None, headers)
    assert "content-encoding" not in plain.headers
    assert plain.headers["vary"] == "Accept-Encoding"
    assert plain.headers["etag"] == '"1"'
    assert int(plain.headers["content-length"]) == len(plain_body) > 10_000

    packed, packed_body = raw(server.url + path, coding, headers)
    assert packed.status_code == 200
    assert packed.headers["content-encoding"] == coding
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.headers["etag"] == '"1"'  # the version, which If-Match takes
    assert packed.headers["content-type"] == "application/json"
    assert int(packed.headers["content-length"]) == len(packed_body) < len(plain_body) // 3
    assert DECODE[coding](packed_body) == plain_body


@pytest.mark.parametrize(
    ("accept", "coding"),
    [
        ("gzip, deflate, br, zstd", "zstd"),
        ("gzip;q=1, zstd;q=0.5", "gzip"),
        ("br;q=0.2, gzip;q=0.9", "gzip"),
        ("zstd;q=0, br;q=0, gzip", "gzip"),
        ("*;q=0.1, zstd;q=0", "br"),
        ("*", "zstd"),
        ("gzip;q=0, zstd;q=0, br;q=0", None),
        ("*;q=0", None),
        ("identity", None),
        ("deflate", None),
        ("gzip;q=bad", None),
    ],
)
def test_the_coding_follows_the_q_values(
    server: ServerProcess, reload: tuple[str, dict[str, str]], accept: str, coding: str | None
) -> None:
    assert choose(accept) == coding
    path, headers = reload
    response, body = raw(server.url + path, accept, headers)
    assert response.headers.get("content-encoding") == coding
    assert response.headers["vary"] == "Accept-Encoding"


def test_small_answers_and_errors_are_sent_as_they_are(server: ServerProcess) -> None:
    health, body = raw(f"{server.url}/healthz", "zstd")
    assert "content-encoding" not in health.headers
    assert health.headers["vary"] == "Accept-Encoding"
    assert body == b'{"status":"ok","stores":{}}'
    missing, body = raw(f"{server.url}/v1/conversations/nope", "gzip")
    assert missing.status_code == 401 and "content-encoding" not in missing.headers
    assert missing.headers["content-type"] == "application/problem+json"


def test_a_streamed_export_is_compressed_as_it_goes(
    server: ServerProcess, reload: tuple[str, dict[str, str]]
) -> None:
    path, headers = reload
    cid = path.split("/")[3].split("?")[0]
    export = f"{server.url}/v1/export?format=jsonl&conversation={cid}"
    plain, plain_body = raw(export, None, headers)
    assert plain_body.count(b"\n") == 51
    for coding in ("gzip", "br", "zstd"):
        packed, packed_body = raw(export, coding, headers)
        assert packed.headers["content-encoding"] == coding
        assert "content-length" not in packed.headers
        assert packed.headers["content-disposition"] == 'attachment; filename="chatkeep-export.jsonl"'
        assert DECODE[coding](packed_body) == plain_body


def test_static_files_are_compressed_once_with_a_tag_per_coding(server: ServerProcess) -> None:
    url = f"{server.url}/static/chatkeep.js"
    plain, plain_body = raw(url, None)
    assert plain_body == client_module.load()
    assert "content-encoding" not in plain.headers and plain.headers["vary"] == "Accept-Encoding"
    tag = plain.headers["etag"]
    tags = {tag}
    for coding in ("gzip", "br", "zstd"):
        packed, packed_body = raw(url, coding)
        assert packed.headers["content-encoding"] == coding
        assert packed.headers["etag"] == f'{tag[:-1]}-{coding}"'
        assert packed.headers["vary"] == "Accept-Encoding"
        assert int(packed.headers["content-length"]) == len(packed_body) < len(plain_body) // 3
        assert DECODE[coding](packed_body) == plain_body
        assert raw(url, coding)[1] == packed_body  # the same bytes each time
        tags.add(packed.headers["etag"])
    assert len(tags) == 4
    # Whichever coding a cache holds the file in, its tag revalidates it, and the 304 names that tag.
    for held in tags:
        for accept in (None, "zstd", "br;q=0.5, gzip"):
            again, body = raw(url, accept, {"If-None-Match": f'"stale", {held}'})
            assert again.status_code == 304 and body == b""
            assert again.headers["etag"] == held
    stale, body = raw(url, "zstd", {"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and DECODE["zstd"](body) == plain_body


def _app() -> Compression:
    text = b"data: " + b"x" * 4000 + b"\n\n"

    async def events(_: object) -> StreamingResponse:
        async def stream() -> object:
            yield text
            yield text

        return StreamingResponse(stream(), media_type="text/event-stream")  # type: ignore[arg-type]

    async def encoded(_: object) -> Response:
        return Response(
            gzip.compress(b"y" * 4000, mtime=0), headers={"Content-Encoding": "gzip"}, media_type="text/plain"
        )

    async def image(_: object) -> Response:
        return Response(b"z" * 4000, media_type="image/png")

    routes = [Route("/events", events), Route("/encoded", encoded), Route("/image", image)]
    return Compression(Starlette(routes=routes))


async def test_event_streams_encoded_bodies_and_images_pass_through() -> None:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for path, body in (
            ("/events", (b"data: " + b"x" * 4000 + b"\n\n") * 2),
            ("/encoded", gzip.compress(b"y" * 4000, mtime=0)),
            ("/image", b"z" * 4000),
        ):
            async with client.stream("GET", path, headers={"Accept-Encoding": "zstd, gzip"}) as response:
                sent = b"".join([chunk async for chunk in response.aiter_raw()])
            assert sent == body, path
            assert response.headers.get("content-encoding") == ("gzip" if path == "/encoded" else None)
            assert "vary" not in response.headers
