"""Offline: sends are shown pending, kept across a reload, and stored exactly once, in order, when
the network is back, even with two tabs flushing; also for an ephemeral conversation in Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from playwright.sync_api import Browser, Page

from tests import services
from tests.browser.harness import (
    Api,
    Demo,
    current_id,
    send,
    start_server,
    unique_user,
    wait_ready,
    wait_shown,
)
from tests.server import ServerProcess


def pending(count: int):  # type: ignore[no-untyped-def]
    return lambda ms: len(ms) == count and all(m["status"] == "pending" and m["seq"] == "" for m in ms)


def sent(count: int):  # type: ignore[no-untyped-def]
    return lambda ms: len(ms) == count and all(m["status"] == "sent" and m["seq"] != "" for m in ms)


def sync_state(page: Page) -> tuple[str | None, str | None]:
    hook = '[data-testid="sync-state"]'
    return page.get_attribute(hook, "data-state"), page.get_attribute(hook, "data-pending")


def offline_flow(demo: Demo, api: Api, tabs: int, prefs: dict[str, str] | None = None) -> str:
    context = demo.context(prefs=prefs)
    page = demo.open(context)
    cid = current_id(page)
    page.evaluate("navigator.serviceWorker.ready")  # the page itself is kept for offline reloads
    assert api.conversation(cid).status_code == 200

    context.set_offline(True)
    texts = [f"offline {i} {uuid.uuid4().hex[:6]}" for i in range(3)]
    for text in texts:
        send(page, text)
    shown_offline = wait_shown(page, pending(3))
    assert [m["content"] for m in shown_offline] == texts
    page.wait_for_function("() => document.querySelector('[data-testid=sync-state]').dataset.pending === '3'")
    assert sync_state(page) == ("offline", "3")

    page.reload()  # still offline: the page, the conversation and the 3 pending sends come back
    after_reload = wait_shown(page, pending(3))
    assert [(m["id"], m["content"]) for m in after_reload] == [(m["id"], m["content"]) for m in shown_offline]
    assert api.messages(cid) == []

    pages = [page] + [demo.open(context, ready=False) for _ in range(tabs - 1)]
    for other in pages[1:]:
        wait_shown(other, pending(3))
    context.set_offline(False)
    for each in pages:
        final = wait_shown(each, sent(3))
        assert [m["content"] for m in final] == texts
        assert [m["seq"] for m in final] == ["1", "2", "3"]
    stored = api.messages(cid)
    assert [(m["id"], m["seq"], m["content"]) for m in stored] == [
        (m["id"], i + 1, m["content"]) for i, m in enumerate(shown_offline)
    ]
    page.wait_for_function("() => document.querySelector('[data-testid=sync-state]').dataset.pending === '0'")
    assert sync_state(page) == ("online", "0")
    return cid


def test_offline_sends_survive_reload_and_are_stored_once(demo: Demo, api: Api) -> None:
    offline_flow(demo, api, tabs=1)


def test_two_tabs_flushing_store_each_send_once(demo: Demo, api: Api) -> None:
    offline_flow(demo, api, tabs=2)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    url = services.require_redis()
    prefix = f"ck-browser-{uuid.uuid4().hex[:8]}"
    process = start_server(
        tmp_path_factory.mktemp("browser-redis"), CHATKEEP_EPHEMERAL_URL=f"{url}?prefix={prefix}"
    )
    yield process
    process.stop()
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


def test_offline_flow_with_an_ephemeral_conversation_in_redis(
    browser: Browser, redis_server: ServerProcess
) -> None:
    user = unique_user()
    demo = Demo(browser, redis_server.url, user)
    api = Api(redis_server.url, user)
    try:
        cid = offline_flow(demo, api, tabs=2, prefs={"mode": "ephemeral"})
        conversation = api.conversation(cid).json()
        assert conversation["mode"] == "ephemeral" and conversation["message_count"] == 3
    finally:
        demo.close()
        api.client.close()


def test_a_conversation_started_offline_is_created_by_the_flush(demo: Demo, api: Api) -> None:
    context = demo.context()
    page = demo.open(context)
    first = current_id(page)
    page.evaluate("navigator.serviceWorker.ready")
    context.set_offline(True)
    page.click('[data-testid="new-chat"]')
    page.wait_for_function(f"() => window.chatkeepDemo.client.getSnapshot().conversationId !== {first!r}")
    cid = current_id(page)
    send(page, "written before the conversation existed on the server")
    wait_shown(page, pending(1))
    assert api.conversation(cid).status_code == 404
    context.set_offline(False)
    wait_shown(page, sent(1))
    assert [m["content"] for m in api.messages(cid)] == [
        "written before the conversation existed on the server"
    ]
    assert wait_ready(page) == cid
    assert {c["id"] for c in api.conversations()} == {first, cid}
