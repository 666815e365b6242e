"""The demo page and the browser client's files, served from the package; and the demo tenant's echo
assistant, which answers over the streaming path."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from chatkeep.api import client_module
from chatkeep.service.assistant import pieces, reply_id, reply_text
from tests.api.conftest import Api, auth, running_api

STATIC = Path(__file__).resolve().parents[2] / "src" / "chatkeep" / "static"


async def test_every_static_file_is_served_with_its_type_and_etag(api: Api) -> None:
    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
    files = {p.name: p.read_bytes() for p in STATIC.iterdir() if p.suffix in types}
    files["chatkeep.js"] = client_module.load()  # joined from static/client/
    assert set(files) >= {"chatkeep.js", "demo.js", "demo.css", "index.html", "sw.js"}
    for name, body in files.items():
        answer = await api.client.get(f"/static/{name}")
        assert answer.status_code == 200, name
        assert answer.content == body
        assert answer.headers["content-type"].startswith(types[Path(name).suffix])
        assert answer.headers["x-content-type-options"] == "nosniff"
        again = await api.client.get(f"/static/{name}", headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        other = await api.client.get(f"/static/{name}", headers={"If-None-Match": '"stale"'})
        assert other.status_code == 200


async def test_the_demo_page_runs_only_its_own_files(api: Api) -> None:
    page = await api.client.get("/", params={"user": "ann", "workspace": "docs", "tabs": "1"})
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "<script>" not in page.text and " on" + "click=" not in page.text
    assert '<script type="module" src="/static/demo.js"></script>' in page.text
    worker = await api.client.get("/sw.js")
    assert worker.headers["service-worker-allowed"] == "/"
    assert worker.headers["content-type"].startswith("text/javascript")


async def test_unknown_or_hostile_static_names_are_refused(api: Api) -> None:
    for name in ("nope.js", ".hidden", "..%2Fconfig.py", "%2e%2e", "a" * 100):
        answer = await api.client.get(f"/static/{name}")
        assert answer.status_code in (404, 422), name
        assert answer.headers["content-type"] == "application/problem+json"
    assert (await api.client.get("/static/../config.py")).status_code == 404
    assert (await api.client.get("/", params={"user": "../x"})).status_code == 422


def test_replies_are_cut_into_a_few_words_that_join_back_exactly() -> None:
    text = reply_text("  hello   there, how\nare you today my friend  ")
    assert text == "You said: hello there, how are you today my friend"
    parts = pieces(text)
    assert "".join(parts) == text and len(parts) == 4  # 10 words, 3 a piece
    assert reply_text("") == "You sent an empty message."
    assert reply_id("c", "m") == reply_id("c", "m") != reply_id("c", "n")


async def test_the_echo_assistant_streams_a_reply_to_each_user_message(tmp_path: Path) -> None:
    async with running_api(tmp_path, demo_assistant="echo", demo_assistant_seconds=0.2) as api:
        token = (await api.client.get("http://127.0.0.1/v1/dev/token", params={"user": "ann"})).json()[
            "token"
        ]
        headers = auth(token)
        cid = str(uuid.uuid4())
        created = await api.client.post(
            "/v1/conversations", json={"workspace": "w", "id": cid}, headers=headers
        )
        assert created.status_code == 201
        batch = {"messages": [{"role": "user", "content": "one two"}, {"role": "system", "content": "note"}]}
        assert (
            await api.client.post(f"/v1/conversations/{cid}/messages:batch", json=batch, headers=headers)
        ).status_code == 201
        for _ in range(100):
            messages = (await api.client.get(f"/v1/conversations/{cid}/messages", headers=headers)).json()[
                "messages"
            ]
            if len(messages) == 3 and messages[2]["status"] == "complete":
                break
            await asyncio.sleep(0.05)
        assert [(m["seq"], m["role"], m["content"], m["status"]) for m in messages] == [
            (1, "user", "one two", "complete"),
            (2, "system", "note", "complete"),
            (3, "assistant", "You said: one two", "complete"),
        ]
        await asyncio.sleep(0.3)  # only user messages are answered, each once
        assert (
            len(
                (await api.client.get(f"/v1/conversations/{cid}/messages", headers=headers)).json()[
                    "messages"
                ]
            )
            == 3
        )


async def test_the_echo_assistant_is_off_outside_dev_mode(tmp_path: Path) -> None:
    async with running_api(tmp_path, dev_mode=False, demo_assistant="echo") as api:
        assert api.services.assistant is None
    async with running_api(tmp_path, demo_assistant="off") as api:
        assert api.services.assistant is None
