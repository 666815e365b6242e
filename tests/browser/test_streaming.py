"""The echo assistant's streamed replies: live, across a reload in the middle of one, and the
README's screenshot of the demo page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from tests.browser.harness import Api, Demo, current_id, send, start_server, unique_user, wait_shown
from tests.server import ServerProcess

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "demo.png"
WORDS = " ".join(f"word{i}" for i in range(1, 41))


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(
        tmp_path_factory.mktemp("browser-echo"),
        CHATKEEP_DEMO_ASSISTANT="echo",
        CHATKEEP_DEMO_ASSISTANT_SECONDS="4",
    )
    yield process
    process.stop()


@pytest.fixture
def echo(browser: Browser, echo_server: ServerProcess) -> Iterator[tuple[Demo, Api]]:
    user = unique_user()
    demo, api = Demo(browser, echo_server.url, user), Api(echo_server.url, user)
    yield demo, api
    demo.close()
    api.client.close()


def test_reload_mid_stream_shows_the_partial_reply_then_the_rest(echo: tuple[Demo, Api]) -> None:
    demo, api = echo
    page = demo.open()
    cid = current_id(page)
    send(page, WORDS)
    expected = f"You said: {WORDS}"
    wait_shown(page, lambda ms: len(ms) == 2 and ms[1]["status"] == "streaming" and len(ms[1]["content"]) > 0)

    page.reload()
    partial = wait_shown(
        page, lambda ms: len(ms) == 2 and ms[1]["status"] == "streaming" and ms[1]["content"] != ""
    )
    assert expected.startswith(partial[1]["content"]) and partial[1]["content"] != expected
    growing = [partial[1]["content"]]

    def complete(ms: list[dict[str, str]]) -> bool:
        if len(ms) == 2 and ms[1]["content"] != growing[-1]:
            assert expected.startswith(ms[1]["content"]), ms[1]["content"]  # never a gap or a repeat
            assert len(ms[1]["content"]) > len(growing[-1])
            growing.append(ms[1]["content"])
        return len(ms) == 2 and ms[1]["status"] == "complete"

    final = wait_shown(page, complete)
    assert [(m["role"], m["seq"], m["content"]) for m in final] == [
        ("user", "1", WORDS),
        ("assistant", "2", expected),
    ]
    assert len(growing) > 2  # it was seen growing after the reload, not only finished
    stored = api.messages(cid)
    assert [(m["role"], m["status"], m["content"]) for m in stored] == [
        ("user", "complete", WORDS),
        ("assistant", "complete", expected),
    ]
    assert demo.errors == []


def test_demo_screenshot(echo: tuple[Demo, Api]) -> None:
    demo, api = echo
    page = demo.open()
    cid = current_id(page)
    other = api.create(title="Release checklist", starred=True)
    api.append(other["id"], ["Ship the browser client"])
    page.click('[data-testid="rename"]')
    page.fill('[data-testid="rename-input"]', "Weekend in Lisbon")
    page.press('[data-testid="rename-input"]', "Enter")
    page.click('[data-testid="pin"]')
    for text in ("Which neighbourhood should we stay in?", "Somewhere near the river, with trams nearby."):
        send(page, text)
        page.wait_for_timeout(300)
    wait_shown(
        page, lambda ms: len(ms) == 4 and all(m["status"] in ("sent", "complete") for m in ms), timeout=30
    )
    page.click('[data-testid="page-link"][data-route="/billing"]')
    wait_shown(page, lambda ms: len(ms) == 5 and ms[4]["status"] == "sent")
    page.wait_for_selector(f'[data-testid="conversation-item"][data-id="{cid}"][data-pinned="true"]')
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 10_000
    assert demo.errors == []
