"""Browser fixtures: one real server per session (SQLite, dev mode), Debian's Chromium driven by
Playwright, and a fresh user (so fresh conversations) for every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.harness import CHROMIUM_ARGS, Api, Demo, require_chromium, start_server, unique_user
from tests.server import ServerProcess


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Per module: Playwright's sync API runs an event loop while it is started, which the asyncio
    tests of other modules must not find running."""
    path = require_chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    process = start_server(tmp_path_factory.mktemp("browser-server"))
    yield process
    process.stop()


@pytest.fixture
def user() -> str:
    return unique_user()


@pytest.fixture
def api(server: ServerProcess, user: str) -> Iterator[Api]:
    client = Api(server.url, user)
    yield client
    client.client.close()


@pytest.fixture
def demo(browser: Browser, server: ServerProcess, user: str) -> Iterator[Demo]:
    opened = Demo(browser, server.url, user)
    yield opened
    opened.close()
