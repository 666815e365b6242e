"""Heartbeat only while visible, paging a long conversation, a conversation deleted elsewhere or
expired, and the page-context rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.harness import (
    Api,
    Demo,
    current_id,
    eventually,
    send,
    shown,
    start_server,
    unique_user,
    wait_ready,
    wait_shown,
)
from tests.server import ServerProcess

SET_VISIBILITY = """state => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => state });
    Object.defineProperty(document, "hidden", { configurable: true, get: () => state === "hidden" });
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def test_heartbeat_pauses_while_hidden_and_resumes_when_shown(demo: Demo) -> None:
    page = demo.open(demo.context(prefs={"heartbeat-ms": "250"}))
    cid = current_id(page)
    beats: list[str] = []
    page.on("request", lambda r: r.url.endswith(f"/v1/conversations/{cid}/heartbeat") and beats.append(r.url))
    page.wait_for_timeout(1000)
    assert len(beats) >= 2

    page.evaluate(SET_VISIBILITY, "hidden")
    page.wait_for_timeout(100)
    while_hidden = len(beats)
    page.wait_for_timeout(1200)
    assert len(beats) == while_hidden  # not one request while hidden

    page.evaluate(SET_VISIBILITY, "visible")
    page.wait_for_timeout(100)  # one at once, well before the interval (more only if the machine stalls)
    assert len(beats) >= while_hidden + 1
    page.wait_for_timeout(800)
    assert len(beats) >= while_hidden + 3
    assert demo.errors == []


def test_a_long_conversation_opens_on_its_latest_50_and_pages_older_on_scroll_up(
    demo: Demo, api: Api
) -> None:
    conversation = api.create(title="Long one")
    api.append(conversation["id"], [f"message {i}" for i in range(1, 1001)])
    requests: list[str] = []
    context = demo.context()
    context.on("request", lambda r: "/messages" in r.url and requests.append(r.url.split("/messages", 1)[1]))
    page = demo.open(context)  # empty storage: resumes the user's most recent conversation
    assert current_id(page) == conversation["id"]
    first = wait_shown(page, lambda ms: len(ms) == 50)
    assert [int(m["seq"]) for m in first] == list(range(951, 1001))
    assert [m["content"] for m in first] == [f"message {i}" for i in range(951, 1001)]

    anchor = '[data-testid="message"][data-seq="951"]'
    page.eval_on_selector('[data-testid="message-list"]', "el => { el.scrollTop = 0; }")
    older = wait_shown(page, lambda ms: len(ms) == 100)
    assert [int(m["seq"]) for m in older] == list(range(901, 1001))
    # the message that was at the top stays in view where it was, rather than jumping away
    offset = page.eval_on_selector(
        anchor,
        "el => el.getBoundingClientRect().top - el.parentElement.getBoundingClientRect().top",
    )
    assert 0 <= offset < 200
    page.eval_on_selector('[data-testid="message-list"]', "el => { el.scrollTop = 0; }")
    wait_shown(page, lambda ms: len(ms) == 150 and ms[0]["seq"] == "851")
    assert requests == ["?before=951&limit=50", "?before=901&limit=50"]
    assert demo.errors == []


def notice(page: Page) -> str:
    page.wait_for_function("() => document.querySelector('[data-testid=notice]').textContent !== ''")
    return page.text_content('[data-testid="notice"]') or ""


def test_deleted_in_another_tab_starts_fresh_with_a_notice(demo: Demo, api: Api) -> None:
    context = demo.context()
    page = demo.open(context)
    cid = current_id(page)
    send(page, "soon gone")
    wait_shown(page, lambda ms: len(ms) == 1 and ms[0]["status"] == "sent")
    other = demo.open(context)
    api.delete(cid)  # on another device: the server tells every page
    for each in (page, other):
        assert "deleted" in notice(each)
        each.wait_for_function(f"() => window.chatkeepDemo.client.getSnapshot().conversationId !== {cid!r}")
        wait_ready(each)
    assert current_id(page) == current_id(other)
    assert shown(page) == []
    assert api.conversation(cid).status_code == 404
    assert [c["id"] for c in api.conversations()] == [current_id(page)]
    send(page, "works again")
    wait_shown(page, lambda ms: len(ms) == 1 and ms[0]["status"] == "sent")


def test_deleted_while_closed_starts_fresh_on_open(demo: Demo, api: Api) -> None:
    context = demo.context()
    page = demo.open(context)
    cid = current_id(page)
    page.close()
    api.delete(cid)
    again = demo.open(context, ready=False)
    assert "deleted" in notice(again)
    again.wait_for_function(f"() => window.chatkeepDemo.client.getSnapshot().conversationId !== {cid!r}")
    wait_ready(again)


@pytest.fixture(scope="module")
def expiring_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(
        tmp_path_factory.mktemp("browser-expiry"),
        CHATKEEP_EPHEMERAL_TTL_SECONDS="2",
        CHATKEEP_SWEEP_INTERVAL_SECONDS="0.3",
    )
    yield process
    process.stop()


def test_an_expired_conversation_starts_fresh_with_a_notice(
    browser: Browser, expiring_server: ServerProcess
) -> None:
    user = unique_user()
    demo = Demo(browser, expiring_server.url, user)
    api = Api(expiring_server.url, user)
    try:
        context = demo.context(prefs={"mode": "ephemeral"})
        page = demo.open(context)
        cid = current_id(page)
        assert page.get_attribute('[data-testid="mode-badge"]', "data-mode") == "ephemeral"
        send(page, "short-lived")
        assert "expired" in notice(page)  # the sweeper's event, while the page is open
        page.wait_for_function(f"() => window.chatkeepDemo.client.getSnapshot().conversationId !== {cid!r}")
        assert api.conversation(cid).json()["code"] == "expired"

        page.close()  # and on opening a page whose conversation expired meanwhile
        eventually(lambda: len(api.conversations()) == 0, timeout=20, what="the new one to expire too")
        again = demo.open(context, ready=False)
        assert "expired" in notice(again)
        page_id = again.evaluate("window.chatkeepDemo.client.getSnapshot().conversationId")
        assert page_id not in (cid, None)
    finally:
        demo.close()
        api.client.close()


def test_page_context_rules(demo: Demo, api: Api) -> None:
    page = demo.open()
    cid = current_id(page)
    greeting = "#greeting"
    assert "Home" in (page.text_content(greeting) or "")
    page.click('[data-testid="page-link"][data-route="/billing"]')
    page.wait_for_function("() => document.querySelector('#greeting').textContent.includes('Billing')")
    page.click('[data-testid="page-link"][data-route="/reports"]')
    page.wait_for_function(
        "() => document.querySelector('#greeting').textContent.includes('Unknown page (/reports)')"
    )
    assert shown(page) == [] and api.messages(cid) == []  # before the user writes: the greeting only
    assert page.evaluate(
        "window.chatkeepDemo.client.uncoveredRoutes(['/', '/billing', '/settings', '/reports', '/help'])"
    ) == ["/reports", "/help"]
    assert "/reports" in (page.text_content("#page-context") or "")

    send(page, "hello")
    wait_shown(page, lambda ms: len(ms) == 1 and ms[0]["status"] == "sent")
    assert page.is_hidden(greeting)
    page.click('[data-testid="page-link"][data-route="/settings"]')
    page.click('[data-testid="page-link"][data-route="/settings"]')  # the same route: no second note
    page.click('[data-testid="page-link"][data-route="/reports"]')
    final = wait_shown(page, lambda ms: len(ms) == 3 and all(m["status"] == "sent" for m in ms))
    assert [(m["role"], m["content"]) for m in final] == [
        ("user", "hello"),
        ("system", "The user moved to Settings (/settings)."),
        ("system", "The user moved to Unknown page (/reports) (/reports)."),
    ]
    stored = api.messages(cid)
    assert [(m["role"], (m["metadata"] or {}).get("route")) for m in stored] == [
        ("user", None),
        ("system", "/settings"),
        ("system", "/reports"),
    ]
    assert stored[2]["metadata"]["known"] is False
    assert demo.errors == []
