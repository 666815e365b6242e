"""What the browser tests share: the real server, Debian's Chromium, the REST API as the judge, and
reading the demo page through its test hooks (`data-testid`)."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page

from tests import services
from tests.server import ServerProcess

CHROMIUM = os.environ.get("CHATKEEP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000


def require_chromium() -> str:
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        services.unavailable(
            f"Chromium is not installed at {CHROMIUM} (`make chromium` installs Debian's package; "
            "or set CHATKEEP_TEST_CHROMIUM)"
        )
    return CHROMIUM


def start_server(tmp: Path, **env: str) -> ServerProcess:
    """A real `chatkeep serve` in dev mode on SQLite (plus `env`), ready to answer."""
    settings = {
        "CHATKEEP_DURABLE_URL": f"sqlite:///{tmp}/chatkeep.db",
        "CHATKEEP_DEV_MODE": "1",
        "CHATKEEP_DEMO_ASSISTANT": "off",
        "CHATKEEP_LOG_LEVEL": "warning",
        **env,
    }
    return ServerProcess(settings, tmp / "server.log").start()


@dataclass
class Api:
    """The server's REST API as one user of the demo tenant: what tests check the page against."""

    url: str
    user: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        token = httpx.get(f"{self.url}/v1/dev/token", params={"user": self.user}).json()["token"]
        self.client = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"})

    def conversation(self, cid: str) -> httpx.Response:
        return self.client.get(f"/v1/conversations/{cid}", params={"messages": 0})

    def messages(self, cid: str) -> list[dict[str, Any]]:
        """Every message of the conversation, oldest first."""
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            response = self.client.get(
                f"/v1/conversations/{cid}/messages", params={"after": after, "limit": 200}
            )
            assert response.status_code == 200, response.text
            page = response.json()["messages"]
            found += page
            if len(page) < 200:
                return found
            after = page[-1]["seq"]

    def conversations(self, workspace: str = "general") -> list[dict[str, Any]]:
        response = self.client.get("/v1/conversations", params={"workspace": workspace, "limit": 200})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def create(self, workspace: str = "general", **fields: Any) -> dict[str, Any]:
        body = {"workspace": workspace, "id": str(uuid.uuid4()), **fields}
        response = self.client.post("/v1/conversations", json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    def append(self, cid: str, contents: list[str], role: str = "user") -> None:
        for start in range(0, len(contents), 100):
            batch = [{"role": role, "content": c} for c in contents[start : start + 100]]
            response = self.client.post(f"/v1/conversations/{cid}/messages:batch", json={"messages": batch})
            assert response.status_code == 201, response.text

    def patch(self, cid: str, **fields: Any) -> dict[str, Any]:
        version = self.conversation(cid).json()["version"]
        response = self.client.patch(
            f"/v1/conversations/{cid}", json=fields, headers={"If-Match": f'"{version}"'}
        )
        assert response.status_code == 200, response.text
        patched: dict[str, Any] = response.json()
        return patched

    def delete(self, cid: str) -> None:
        assert self.client.delete(f"/v1/conversations/{cid}").status_code == 204


@dataclass
class Demo:
    """Opens demo pages of one server for one user, and records console errors."""

    browser: Browser
    url: str
    user: str
    errors: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)

    def context(self, storage_state: Any = None, prefs: dict[str, str] | None = None) -> BrowserContext:
        context = self.browser.new_context(
            storage_state=storage_state, viewport={"width": 1280, "height": 720}
        )
        if prefs:
            script = "".join(f"localStorage.setItem('chatkeep-demo:{k}', {v!r});" for k, v in prefs.items())
            context.add_init_script(f"try {{ {script} }} catch (e) {{}}")
        self.contexts.append(context)
        return context

    def open(self, context: BrowserContext | None = None, query: str = "", ready: bool = True) -> Page:
        page = (context or self.context()).new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        page.on(
            "response",
            lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status} {r.request.method} {r.url}"),
        )
        page.goto(f"{self.url}/?user={self.user}{query}")
        if ready:
            wait_ready(page)
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def close(self) -> None:
        for context in self.contexts:
            context.close()


def wait_ready(page: Page) -> str:
    """Wait until the page shows a conversation the server has; returns its id."""
    page.wait_for_function(
        "() => { const d = window.chatkeepDemo; if (!d) return false; const s = d.client.getSnapshot();"
        " return s.ready && s.stored && s.conversation && s.conversation.mode && s.pending === 0; }",
        timeout=WAIT_MS,
    )
    return current_id(page)


def current_id(page: Page) -> str:
    cid: str = page.evaluate("window.chatkeepDemo.client.getSnapshot().conversationId")
    return cid


def shown(page: Page) -> list[dict[str, str]]:
    """The messages on the page, in order, as their test hooks say."""
    result: list[dict[str, str]] = page.eval_on_selector_all(
        '[data-testid="message"]',
        "els => els.map(e => ({id: e.dataset.id, role: e.dataset.role, seq: e.dataset.seq,"
        " status: e.dataset.status, content: e.textContent}))",
    )
    return result


def send(page: Page, text: str) -> None:
    page.fill('[data-testid="composer"]', text)
    page.press('[data-testid="composer"]', "Enter")


def wait_shown(
    page: Page, check: Callable[[list[dict[str, str]]], bool], timeout: float = 15.0
) -> list[dict[str, str]]:
    """Poll the page's messages until `check` holds; fails with what was shown last."""
    deadline = time.monotonic() + timeout
    while True:
        messages = shown(page)
        if check(messages):
            return messages
        if time.monotonic() > deadline:
            last = [(m["seq"], m["status"], m["role"], m["content"][:40]) for m in messages[-6:]]
            raise AssertionError(
                f"the page never showed what was expected; it shows {len(messages)}, last: {last}"
            )
        page.wait_for_timeout(50)


def eventually(check: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def unique_user() -> str:
    return f"u-{uuid.uuid4().hex[:10]}"
