"""Sessions: per workspace and per tab, clear history, recents, and `local` conversations moved to
the server on request."""

from __future__ import annotations

from tests.browser.harness import Api, Demo, current_id, eventually, send, shown, wait_ready, wait_shown


def sent(count: int):  # type: ignore[no-untyped-def]
    return lambda ms: len(ms) == count and all(m["status"] == "sent" for m in ms)


def test_each_workspace_keeps_its_own_conversation(demo: Demo, api: Api) -> None:
    page = demo.open()
    general = current_id(page)
    send(page, "in general")
    wait_shown(page, sent(1))
    page.select_option('[data-testid="workspace"]', "docs")
    page.wait_for_function(f"() => window.chatkeepDemo.client.getSnapshot().conversationId !== {general!r}")
    docs = wait_ready(page)
    assert shown(page) == []
    send(page, "in docs")
    wait_shown(page, sent(1))
    assert [c["id"] for c in api.conversations("docs")] == [docs]

    page.select_option('[data-testid="workspace"]', "general")
    assert wait_ready(page) == general
    assert [m["content"] for m in wait_shown(page, sent(1))] == ["in general"]
    page.reload()  # the demo remembers the workspace; each workspace its conversation
    assert wait_ready(page) == general
    assert [c["id"] for c in api.conversations("general")] == [general]


def test_tabs_mode_gives_each_tab_its_conversation(demo: Demo, api: Api) -> None:
    context = demo.context()
    first = demo.open(context, query="&tabs=1")
    second = demo.open(context, query="&tabs=1")
    second.click('[data-testid="new-chat"]')
    one = current_id(first)
    second.wait_for_function(f"() => window.chatkeepDemo.client.getSnapshot().conversationId !== {one!r}")
    two = wait_ready(second)
    send(first, "tab one")
    send(second, "tab two")
    wait_shown(first, sent(1))
    wait_shown(second, sent(1))
    first.reload()
    second.reload()
    assert (wait_ready(first), wait_ready(second)) == (one, two)
    assert [m["content"] for m in wait_shown(first, sent(1))] == ["tab one"]
    assert [m["content"] for m in wait_shown(second, sent(1))] == ["tab two"]
    assert [m["content"] for m in api.messages(one)] == ["tab one"]


def test_clear_history_starts_fresh_at_once_and_deletes_the_old_one(demo: Demo, api: Api) -> None:
    page = demo.open()
    old = current_id(page)
    send(page, "forget me")
    wait_shown(page, sent(1))
    page.click('[data-testid="clear-history"]')
    page.wait_for_function(f"() => window.chatkeepDemo.client.getSnapshot().conversationId !== {old!r}")
    fresh = wait_ready(page)
    assert shown(page) == []
    eventually(lambda: api.conversation(old).status_code == 404, what="the old conversation deleted")
    assert [c["id"] for c in api.conversations()] == [fresh]
    assert page.query_selector(f'[data-testid="conversation-item"][data-id="{old}"]') is None


def test_recent_list_shows_the_last_ten_by_activity(demo: Demo, api: Api) -> None:
    made = [api.create(title=f"chat {i}")["id"] for i in range(12)]
    for cid in made:
        api.append(cid, ["hi"])
    page = demo.open()
    page.wait_for_function("() => window.chatkeepDemo.client.getSnapshot().recent.length === 10")
    recent = page.evaluate(
        "window.chatkeepDemo.client.getSnapshot().recent.map(r => [r.id, r.title, r.message_count])"
    )
    assert recent == [[cid, f"chat {i}", 1] for i, cid in reversed(list(enumerate(made)))][:10]
    assert current_id(page) == made[-1]  # storage empty: the most recent is resumed


def test_local_conversations_stay_in_the_browser_until_moved(demo: Demo, api: Api) -> None:
    context = demo.context(prefs={"mode": "local"})
    page = demo.open(context)
    cid = current_id(page)
    assert page.get_attribute('[data-testid="mode-badge"]', "data-mode") == "local"
    for text in ("only here", "and here"):
        send(page, text)
    wait_shown(page, lambda ms: [m["content"] for m in ms] == ["only here", "and here"])
    record = api.conversation(cid).json()
    assert (record["mode"], record["message_count"]) == ("local", 0)
    held = api.client.get(f"/v1/conversations/{cid}/messages")  # the server holds the record only
    assert (held.status_code, held.json()["code"]) == (409, "local_only")
    page.reload()
    assert wait_ready(page) == cid
    assert [m["content"] for m in wait_shown(page, lambda ms: len(ms) == 2)] == ["only here", "and here"]

    moved = page.evaluate("window.chatkeepDemo.client.migrateLocalToServer()")
    assert len(moved) == 1 and moved[0]["from"] == cid
    to = moved[0]["to"]
    assert wait_ready(page) == to
    assert [m["content"] for m in api.messages(to)] == ["only here", "and here"]
    assert api.conversation(to).json()["mode"] == "durable"
    assert api.conversation(cid).status_code == 404
    assert [m["content"] for m in wait_shown(page, sent(2))] == ["only here", "and here"]
