"""When the WebSocket cannot connect the client polls; a closing page sends its cleanup beacon; the
IndexedDB cache stays within its byte budget; the composer's keys."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, WebSocketRoute

from tests.browser.harness import Api, Demo, current_id, eventually, send, wait_ready, wait_shown
from tests.server import ServerProcess

CACHED_IDS = """() => new Promise((resolve, reject) => {
    const open = indexedDB.open("chatkeep");
    open.onsuccess = () => {
        const tx = open.result.transaction("cache", "readonly");
        const all = tx.objectStore("cache").getAll();
        tx.oncomplete = () => {
            resolve(all.result.filter(r => !r.list).map(r => r.id));
            open.result.close();
        };
        tx.onerror = reject;
    };
    open.onerror = reject;
})"""


def test_polls_when_the_socket_cannot_connect(demo: Demo, api: Api) -> None:
    context = demo.context()
    sockets: list[str] = []

    def refuse(ws: WebSocketRoute) -> None:
        sockets.append(ws.url)
        ws.close(code=1011)

    context.route_web_socket("**/v1/ws", refuse)
    page = demo.open(context)
    cid = current_id(page)
    send(page, "sent over REST")
    wait_shown(page, lambda ms: len(ms) == 1 and ms[0]["status"] == "sent")
    api.append(cid, ["from another device"])
    final = wait_shown(page, lambda ms: len(ms) == 2, timeout=20)  # by polling, every 3 s
    assert [(m["seq"], m["content"]) for m in final] == [
        ("1", "sent over REST"),
        ("2", "from another device"),
    ]
    assert len(sockets) >= 2  # it kept trying the socket meanwhile, with backoff


def cleanups(url: str) -> float:
    """Cleanup requests the server answered 200, from its metrics (the browser does not report a
    beacon sent by a page that is going away)."""
    metrics = httpx.get(f"{url}/metrics").text
    pattern = r'chatkeep_http_requests_total\{method="POST",route="/v1/sessions/cleanup",status="200"\} (\S+)'
    found = re.search(pattern, metrics)
    return float(found.group(1)) if found else 0.0


def test_a_closing_page_sends_its_cleanup_beacon(demo: Demo, server: ServerProcess) -> None:
    page = demo.open()
    before = cleanups(server.url)
    page.goto("about:blank")
    eventually(lambda: cleanups(server.url) > before, what="the cleanup beacon")


def open_item(page: Page, cid: str) -> None:
    page.click(f'[data-testid="conversation-item"][data-id="{cid}"] button')
    page.wait_for_function(f"() => window.chatkeepDemo.client.getSnapshot().conversationId === {cid!r}")
    wait_shown(page, lambda ms: len(ms) == 50)


def test_the_cache_keeps_within_its_byte_budget(demo: Demo, api: Api) -> None:
    made = [api.create(title=f"big {i}")["id"] for i in range(3)]
    for cid in made:
        api.append(cid, [f"{i} " + "x" * 300 for i in range(50)])
    # each cached page is about 50 KB: a 120 KB budget holds two
    page = demo.open(demo.context(prefs={"cache-bytes": "120000"}))
    assert current_id(page) == made[2]
    wait_shown(page, lambda ms: len(ms) == 50)
    for cid in (made[1], made[0]):
        page.wait_for_timeout(300)
        open_item(page, cid)
    page.wait_for_timeout(2800)  # eviction runs a moment after the last write
    cached = page.evaluate(CACHED_IDS)
    assert sorted(cached) == sorted([made[0], made[1]])  # the least recently used went first
    page.reload()
    assert wait_ready(page) == made[0]
    assert page.evaluate("window.chatkeepDemo.firstPaint.source") == "cache"


def test_enter_sends_and_shift_enter_is_a_newline(demo: Demo, api: Api) -> None:
    page = demo.open()
    cid = current_id(page)
    composer = '[data-testid="composer"]'
    page.click(composer)
    page.keyboard.type("first line")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("second line")
    assert api.messages(cid) == [] and page.input_value(composer) == "first line\nsecond line"
    page.keyboard.press("Enter")
    wait_shown(page, lambda ms: len(ms) == 1 and ms[0]["status"] == "sent")
    assert [m["content"] for m in api.messages(cid)] == ["first line\nsecond line"]
    assert page.input_value(composer) == ""
    page.fill(composer, "by the button")
    page.click('[data-testid="send"]')
    wait_shown(page, lambda ms: len(ms) == 2 and ms[1]["status"] == "sent")
    assert demo.errors == []
