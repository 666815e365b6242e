"""Ambiguous input is refused, not guessed: a JSON object with a key twice, or a body that is not
UTF-8, answers 400 on every route that takes a body (and as an error frame on the WebSocket), and
changes nothing; /docs loads nothing from another origin."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatkeep.codec import loads
from chatkeep.errors import InvalidInput
from tests import services
from tests.api.conftest import Api, auth, running_api
from tests.realtime.conftest import live_server

JSON = {"Content-Type": "application/json"}

# Conversation ids chosen with a user token are random UUIDs.
C1 = "0b6f3a5e-2c44-4d1e-9a57-3f0e8c1d2b61"
C2 = "7d2e9c14-8b3a-4f60-b1c2-5e9a0d4f7c38"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(tmp_path) as opened:
        yield opened


def body_operations(api: Api) -> list[tuple[str, str]]:
    """(method, path) of every operation that takes a JSON body, from the OpenAPI document."""
    found = []
    for path, item in api.app.openapi()["paths"].items():
        for method, operation in item.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                found.append((method.upper(), path))
    return found


async def test_duplicate_keys_answer_400_on_every_route_with_a_body(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, _ = await api.tenant()
        alice = auth(api.token(tenant, "alice"))
        c = await api.conversation(alice, id=C1, title="kept")
        operations = body_operations(api)
        assert len(operations) >= 5, operations
        for method, template in operations:
            path = re.sub(r"\{[^}]+\}", lambda m: C1 if "conversation" in m.group() else "m1", template)
            for raw in (b'{"a": 1, "a": 2}', b'{"x": {"k": 1, "k": 1}}', b'[{"id": "m", "id": "n"}]'):
                headers = {**alice, **JSON, "If-Match": '"1"'}
                answer = await api.client.request(method, path, content=raw, headers=headers)
                assert answer.status_code == 400, (method, path, raw, answer.text)
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["code"] == "duplicate_key"
        after = (await api.client.get(f"/v1/conversations/{C1}", headers=alice)).json()
        assert (after["title"], after["version"], after["message_count"]) == ("kept", c["version"], 0)


async def test_the_value_a_parser_would_pick_is_never_used(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        tenant, _ = await api.tenant()
        alice = auth(api.token(tenant, "alice"))
        cases = [
            ("/v1/conversations", b'{"workspace": "w1", "id": "c2", "workspace": "w2"}'),
            ("/v1/conversations", b'{"workspace": "w1", "mode": "durable", "mode": "none"}'),
        ]
        for path, raw in cases:
            answer = await api.client.post(path, content=raw, headers={**alice, **JSON})
            assert (answer.status_code, answer.json()["code"]) == (400, "duplicate_key"), answer.text
        await api.conversation(alice, id=C1)
        raw = b'{"role": "user", "content": "hi", "role": "system", "id": "m1"}'
        answer = await api.client.post(
            f"/v1/conversations/{C1}/messages", content=raw, headers={**alice, **JSON}
        )
        assert answer.status_code == 400
        raw = b'{"role": "user", "content": "hi", "metadata": {"a": 1, "b": {"c": 1, "c": 2}}}'
        answer = await api.client.post(
            f"/v1/conversations/{C1}/messages", content=raw, headers={**alice, **JSON}
        )
        assert answer.status_code == 400
        listed = (await api.client.get("/v1/conversations", headers=alice)).json()["items"]
        assert [c["id"] for c in listed] == [C1]
        assert listed[0]["message_count"] == 0


@pytest.mark.parametrize(
    "raw",
    [
        '{"workspace": "w1", "title": "café"}'.encode("utf-16"),
        '{"workspace": "w1", "title": "café"}'.encode("utf-16-le"),
        '{"workspace": "w1", "title": "café"}'.encode("utf-32"),
        b"\xef\xbb\xbf" + b'{"workspace": "w1"}',  # a byte order mark
        b'{"workspace": "w1", "title": "caf\xe9"}',  # Latin-1
        b'{"workspace": "w1", "title": "\xed\xa0\x80"}',  # an encoded surrogate
    ],
    ids=["utf-16", "utf-16-le", "utf-32", "bom", "latin-1", "surrogate"],
)
async def test_bodies_that_are_not_utf8_answer_400(api: Api, raw: bytes) -> None:
    headers = await api.user()
    for content_type in ("application/json", "application/json; charset=utf-16", None):
        sent = {**headers, **({"Content-Type": content_type} if content_type else {})}
        answer = await api.client.post("/v1/conversations", content=raw, headers=sent)
        assert answer.status_code == 400, (content_type, answer.text)
        assert answer.json()["code"] == "invalid_json"
    assert (await api.client.get("/v1/conversations", headers=headers)).json()["items"] == []


async def test_ordinary_bodies_still_work(api: Api) -> None:
    headers = await api.user()
    raw = json.dumps({"workspace": "w1", "title": "caf\u00e9 \U0001f600", "tags": ["a", "b"]}).encode()
    answer = await api.client.post("/v1/conversations", content=raw, headers={**headers, **JSON})
    assert answer.status_code == 201, answer.text
    nested = {"role": "user", "content": "x", "metadata": {"a": {"a": {"a": 1}}, "b": [{"a": 1}, {"a": 2}]}}
    cid = answer.json()["id"]
    answer = await api.client.post(f"/v1/conversations/{cid}/messages", json=nested, headers=headers)
    assert answer.status_code == 201, answer.text
    assert answer.json()["metadata"] == nested["metadata"]


def test_the_strict_decoder() -> None:
    assert loads(b'{"a": {"b": [1, {"c": 2}]}, "d": "\\u00e9"}') == {"a": {"b": [1, {"c": 2}]}, "d": "é"}
    assert loads('{"a": 1}') == {"a": 1}
    for raw, code in [
        (b'{"a": 1, "a": 1}', "duplicate_key"),
        (b'[{"a": [{"b": 1, "b": 2}]}]', "duplicate_key"),
        (b'{"\\u0061": 1, "a": 2}', "duplicate_key"),  # the same key, spelt twice
        (b'{"a": 1', "invalid_json"),
        (b"\xff", "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            loads(raw)
        assert refused.value.code == code, raw[:30]


async def test_websocket_frames_with_duplicate_keys_are_refused(tmp_path: Path) -> None:
    async with live_server(tmp_path) as live:
        tenant = await live.tenant()
        token = live.token(tenant, "alice")
        c1 = (await live.conversation(token, id=C1))["id"]
        await live.conversation(token, id=C2)
        async with live.socket(token) as client:
            frame = (
                f'{{"type": "append", "id": "a1", "conversation_id": "{C1}", "conversation_id": "{C2}", '
                '"message": {"role": "user", "content": "which one?"}}'
            )
            await client.ws.send(frame)
            answer = await client.next()
            assert (answer["type"], answer["code"]) == ("error", "duplicate_key"), answer
            await client.send(type="ping", id="p")
            assert (await client.next())["type"] == "pong"  # the socket goes on
        for cid in (c1, C2):
            got = await live.http.get(
                f"/v1/conversations/{cid}", headers={"Authorization": f"Bearer {token}"}
            )
            assert got.json()["message_count"] == 0


async def test_docs_load_nothing_from_another_origin(api: Api) -> None:
    page = await api.client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page.text)
    assert urls, page.text
    assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    assert "cdn" not in page.text.lower()
    assert "validatorUrl" in page.text  # off: the validator badge would send the document away
    for url in urls:
        asset = await api.client.get(url)
        assert asset.status_code == 200 and len(asset.content) > 100, url
    assert (await api.client.get("/openapi.json")).status_code == 200


async def test_docs_render_in_a_browser_with_every_request_to_this_server(tmp_path: Path) -> None:
    chromium = Path("/usr/bin/chromium")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        services.unavailable("playwright is not installed")
    if not chromium.exists():
        services.unavailable("no Chromium at /usr/bin/chromium")
    async with live_server(tmp_path) as live:
        requested: list[str] = []
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(chromium))
            try:
                page = await browser.new_page()
                page.on("request", lambda request: requested.append(request.url))
                await page.goto(f"{live.url}/docs")
                title = page.locator(".swagger-ui .info .title")
                await title.wait_for(timeout=20_000)
                text = await title.inner_text()
                operations = await page.locator(".opblock").count()
            finally:
                await browser.close()
        print(f"\n/docs: {len(requested)} requests, {operations} operations shown")
        assert text.startswith("chatkeep")
        assert operations >= 10
        assert requested and all(url.startswith(live.url + "/") for url in requested), requested
