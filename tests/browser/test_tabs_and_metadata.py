"""Two tabs agree without reloading; star, pin, archive and rename persist; a concurrent edit (412)
is resolved, and a real conflict keeps the other change and says so."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.harness import Api, Demo, current_id, eventually, send, wait_ready, wait_shown


def pressed(page: Page, hook: str) -> str | None:
    return page.get_attribute(f'[data-testid="{hook}"]', "aria-pressed")


def item(page: Page, cid: str, attribute: str) -> str | None:
    return page.get_attribute(f'[data-testid="conversation-item"][data-id="{cid}"]', attribute)


def test_two_tabs_see_each_others_messages_and_stars(demo: Demo, api: Api) -> None:
    context = demo.context()
    first = demo.open(context)
    cid = current_id(first)
    second = demo.open(context)
    assert current_id(second) == cid

    send(first, "from the first tab")
    seen = wait_shown(second, lambda ms: len(ms) == 1 and ms[0]["status"] == "sent")
    assert seen[0]["content"] == "from the first tab" and seen[0]["seq"] == "1"
    send(second, "and from the second")
    for page in (first, second):
        wait_shown(
            page,
            lambda ms: (
                [m["content"] for m in ms] == ["from the first tab", "and from the second"]
                and all(m["status"] == "sent" for m in ms)
            ),
        )

    second.click('[data-testid="star"]')
    first.wait_for_function(
        "() => document.querySelector('[data-testid=star]').getAttribute('aria-pressed') === 'true'"
    )
    first.wait_for_selector(f'[data-testid="conversation-item"][data-id="{cid}"][data-starred="true"]')
    eventually(lambda: api.conversation(cid).json()["starred"] is True, what="the star on the server")
    assert [m["content"] for m in api.messages(cid)] == ["from the first tab", "and from the second"]
    assert demo.errors == []


def test_star_pin_archive_rename_persist_across_reload(demo: Demo, api: Api) -> None:
    page = demo.open()
    cid = current_id(page)
    for hook in ("star", "pin", "archive"):
        page.click(f'[data-testid="{hook}"]')
    page.click('[data-testid="rename"]')
    page.fill('[data-testid="rename-input"]', "Trip to Lisbon")
    page.press('[data-testid="rename-input"]', "Enter")
    eventually(
        lambda: (
            {k: api.conversation(cid).json()[k] for k in ("starred", "pinned", "archived", "title")}
            == {"starred": True, "pinned": True, "archived": True, "title": "Trip to Lisbon"}
        ),
        what="the four changes on the server",
    )
    page.reload()
    assert wait_ready(page) == cid
    page.wait_for_selector(f'[data-testid="conversation-item"][data-id="{cid}"][data-pinned="true"]')
    for hook in ("star", "pin", "archive"):
        assert pressed(page, hook) == "true"
    assert page.text_content("#title") == "Trip to Lisbon"
    assert (
        item(page, cid, "data-starred"),
        item(page, cid, "data-pinned"),
        item(page, cid, "data-archived"),
    ) == ("true", "true", "true")
    page.click('[data-testid="star"]')  # and back
    eventually(lambda: api.conversation(cid).json()["starred"] is False, what="the unstar on the server")
    assert demo.errors == []


def test_a_concurrent_edit_answered_412_is_resolved(demo: Demo, api: Api) -> None:
    context = demo.context()
    page = demo.open(context)
    cid = current_id(page)
    statuses: list[int] = []
    page.on("response", lambda r: r.request.method == "PATCH" and statuses.append(r.status))
    context.set_offline(True)
    page.click('[data-testid="star"]')
    assert pressed(page, "star") == "true"  # optimistic
    api.patch(cid, title="Renamed on another device")  # the version the star was based on is gone
    context.set_offline(False)
    eventually(lambda: api.conversation(cid).json()["starred"] is True, what="the star on the server")
    final = api.conversation(cid).json()
    assert final["title"] == "Renamed on another device" and final["starred"] is True
    page.wait_for_function(
        "() => document.querySelector('#title').textContent === 'Renamed on another device'"
    )
    assert pressed(page, "star") == "true"
    assert statuses == [412, 200]  # stale, then re-read and re-applied once


def test_a_real_conflict_keeps_the_other_change_and_says_so(demo: Demo, api: Api) -> None:
    context = demo.context()
    page = demo.open(context)
    cid = current_id(page)
    context.set_offline(True)
    page.click('[data-testid="rename"]')
    page.fill('[data-testid="rename-input"]', "Mine")
    page.press('[data-testid="rename-input"]', "Enter")
    assert page.text_content("#title") == "Mine"
    api.patch(cid, title="Theirs")
    context.set_offline(False)
    page.wait_for_function("() => document.querySelector('[data-testid=notice]').textContent !== ''")
    notice = page.text_content('[data-testid="notice"]') or ""
    assert page.text_content("#title") == "Theirs"
    assert "title" in notice and "elsewhere" in notice
    page.wait_for_function(
        "() => document.querySelector('[data-testid=sync-state]').dataset.state === 'online'"
    )
    assert api.conversation(cid).json()["title"] == "Theirs"


def test_an_edit_made_offline_is_shown_across_a_reload_until_stored(demo: Demo, api: Api) -> None:
    context = demo.context()
    page = demo.open(context)
    cid = current_id(page)
    page.evaluate("navigator.serviceWorker.ready")
    context.set_offline(True)
    page.click('[data-testid="pin"]')
    page.wait_for_function(f"() => window.chatkeepDemo.client.optimistic.has({cid!r})")  # in the outbox
    page.reload()
    page.wait_for_selector(f'[data-testid="conversation-item"][data-id="{cid}"][data-pinned="true"]')
    assert pressed(page, "pin") == "true"
    assert api.conversation(cid).json()["pinned"] is False
    context.set_offline(False)
    eventually(lambda: api.conversation(cid).json()["pinned"] is True, what="the pin on the server")
    page.wait_for_function(
        "() => document.querySelector('[data-testid=sync-state]').dataset.state === 'online'"
    )
    assert pressed(page, "pin") == "true"
