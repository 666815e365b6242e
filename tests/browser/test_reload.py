"""Reloads, a new browser session with the same storage, and wiped storage: the conversation stays."""

from __future__ import annotations

import httpx

from tests.browser.harness import Api, Demo, current_id, send, shown, wait_ready, wait_shown
from tests.server import ServerProcess


def sent(count: int):  # type: ignore[no-untyped-def]
    return lambda ms: len(ms) == count and all(m["status"] == "sent" for m in ms)


def test_send_reload_same_order(demo: Demo, api: Api) -> None:
    page = demo.open()
    cid = current_id(page)
    for text in ("one", "two", "three"):
        send(page, text)
    before = wait_shown(page, sent(3))
    assert [m["content"] for m in before] == ["one", "two", "three"]
    stored = api.messages(cid)
    assert [(m["id"], m["seq"], m["content"]) for m in stored] == [
        (m["id"], int(m["seq"]), m["content"]) for m in before
    ]
    assert [m["seq"] for m in stored] == [1, 2, 3]

    page.reload()
    assert wait_ready(page) == cid
    after = wait_shown(page, sent(3))
    assert after == before
    assert demo.errors == []


def test_new_context_same_storage_resumes(demo: Demo, api: Api) -> None:
    context = demo.context()
    page = demo.open(context)
    cid = current_id(page)
    send(page, "kept across browser sessions")
    wait_shown(page, sent(1))
    page.wait_for_timeout(400)  # the cache write is debounced
    state = context.storage_state()
    context.close()

    again = demo.open(demo.context(storage_state=state))
    assert wait_ready(again) == cid
    assert [m["content"] for m in wait_shown(again, sent(1))] == ["kept across browser sessions"]
    assert [m["content"] for m in api.messages(cid)] == ["kept across browser sessions"]
    assert len(api.conversations()) == 1
    assert demo.errors == []


def test_wiped_storage_comes_back_from_the_server(demo: Demo, api: Api) -> None:
    page = demo.open()
    cid = current_id(page)
    for text in ("alpha", "beta"):
        send(page, text)
    wait_shown(page, sent(2))

    page.evaluate(
        """async () => {
            localStorage.clear();
            sessionStorage.clear();
            await new Promise((resolve, reject) => {
                const r = indexedDB.deleteDatabase("chatkeep");
                r.onsuccess = resolve; r.onerror = reject; r.onblocked = resolve;
            });
        }"""
    )
    page.reload()
    assert wait_ready(page) == cid  # the most recent conversation, found on the server
    assert [m["content"] for m in wait_shown(page, sent(2))] == ["alpha", "beta"]
    assert page.evaluate("window.chatkeepDemo.client.getSnapshot().source") == "network"
    assert len(api.conversations()) == 1
    assert demo.errors == []


def test_static_client_served(server: ServerProcess) -> None:
    response = httpx.get(f"{server.url}/static/chatkeep.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert "\nfunction createClient(" in response.text  # one module, joined from static/client/
    assert "\nexport { createClient, ChatkeepClient };\n" in response.text
    etag = response.headers["etag"]
    again = httpx.get(f"{server.url}/static/chatkeep.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    page = httpx.get(f"{server.url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    assert "<script>" not in page.text and "onclick" not in page.text
    assert httpx.get(f"{server.url}/static/nope.js").status_code == 404
    assert httpx.get(f"{server.url}/static/..%2Fconfig.py").status_code in (404, 422)


def test_page_loads_without_console_errors(demo: Demo) -> None:
    page = demo.open()
    page.wait_for_timeout(500)
    assert shown(page) == []
    assert page.get_attribute('[data-testid="sync-state"]', "data-state") == "online"
    assert page.get_attribute('[data-testid="mode-badge"]', "data-mode") == "durable"
    assert demo.errors == []
