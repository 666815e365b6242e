"""The browser client in Debian's Chromium, against the real server (SQLite):

- reload of a 1,000-message conversation: time from navigation to the first message painted, from
  the IndexedDB cache and from the network with site storage cleared (`performance.mark` by the
  demo page; p50 and p90 of 10 each);
- an outbox of 100 messages written offline: time from the `online` event to all 100 stored;
- the size of chatkeep.js, as served and gzipped.

    python bench/browser.py [--runs 10]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.harness import CHROMIUM_ARGS, Api, require_chromium, start_server  # noqa: E402

FIRST_PAINT = """() => new Promise(resolve => {
    const check = () => {
        const mark = performance.getEntriesByName("chatkeep:first-message")[0];
        if (mark) resolve({ ms: mark.startTime, source: mark.detail && mark.detail.source });
        else setTimeout(check, 5);
    };
    check();
})"""

CLEAR_STORAGE = """async () => {
    localStorage.clear();
    await new Promise(resolve => {
        const r = indexedDB.deleteDatabase("chatkeep");
        r.onsuccess = r.onerror = r.onblocked = resolve;
    });
}"""

FLUSH_100 = """async () => {
    const client = window.chatkeepDemo.client;
    for (let i = 0; i < 100; i++) client.send(`queued ${i}`);
    await new Promise(resolve => {
        const stop = client.subscribe(() => {
            if (client.getSnapshot().pending === 100) { stop(); resolve(); }
        });
    });
    window.flushed = new Promise(resolve => {
        addEventListener("online", () => {
            const start = performance.now();
            const stop = client.subscribe(() => {
                const s = client.getSnapshot();
                if (s.pending === 0 && s.messages.filter(m => m.seq !== null).length >= 100) {
                    stop();
                    resolve(performance.now() - start);
                }
            });
        }, { once: true });
    });
}"""


def p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def paint(page: Page) -> tuple[float, str]:
    result = page.evaluate(FIRST_PAINT)
    return float(result["ms"]), str(result["source"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    chromium = require_chromium()
    with tempfile.TemporaryDirectory() as tmp:
        server = start_server(Path(tmp), CHATKEEP_USER_RATE_PER_SECOND="0")
        try:
            run(server.url, chromium, args.runs)
        finally:
            server.stop()


def run(url: str, chromium: str, runs: int) -> None:
    user = f"bench-{uuid.uuid4().hex[:8]}"
    api = Api(url, user)
    long = api.create(title="A thousand messages")
    api.append(long["id"], [f"message {i}: " + "some words of a chat message " * 3 for i in range(1, 1001)])

    cache: list[float] = []
    network: list[float] = []
    flush: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{url}/?user={user}")
        paint(page)
        page.wait_for_timeout(1000)  # the cache write is debounced
        for _ in range(runs):
            page.reload()
            ms, source = paint(page)
            assert source == "cache", source
            cache.append(ms)
            page.wait_for_timeout(300)
        for _ in range(runs):
            page.evaluate(CLEAR_STORAGE)
            page.reload()
            ms, source = paint(page)
            assert source == "network", source
            network.append(ms)
            page.wait_for_timeout(300)
        context.close()

        for _ in range(max(3, runs // 2)):
            flush_user = f"bench-{uuid.uuid4().hex[:8]}"
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{url}/?user={flush_user}")
            page.wait_for_function(
                "() => { const s = window.chatkeepDemo.client.getSnapshot();"
                " return s.ready && s.stored && s.pending === 0; }"
            )
            context.set_offline(True)
            page.evaluate(FLUSH_100)
            context.set_offline(False)
            flush.append(float(page.evaluate("window.flushed")))
            cid = page.evaluate("window.chatkeepDemo.client.getSnapshot().conversationId")
            stored = Api(url, flush_user).messages(cid)
            assert [m["content"] for m in stored] == [f"queued {i}" for i in range(100)]
            context.close()
        browser.close()

    source = httpx.get(f"{url}/static/chatkeep.js").content
    print("| measure | p50 | p90 | runs |")
    print("|---|---|---|---|")
    print(
        f"| reload, 1,000 messages: first message painted from the IndexedDB cache | {p(cache, 50):.0f} ms "
        f"| {p(cache, 90):.0f} ms | {len(cache)} |"
    )
    print(
        f"| reload, 1,000 messages: first message painted from the network, storage cleared | "
        f"{p(network, 50):.0f} ms | {p(network, 90):.0f} ms | {len(network)} |"
    )
    print(
        f"| `online` to an outbox of 100 messages stored | {p(flush, 50):.0f} ms | {p(flush, 90):.0f} ms "
        f"| {len(flush)} |"
    )
    print(f"\nchatkeep.js: {len(source) / 1024:.1f} KiB, {len(gzip.compress(source)) / 1024:.1f} KiB gzipped")
    print(f"(cache samples: {', '.join(f'{x:.0f}' for x in cache)}; mean {statistics.mean(cache):.0f} ms)")


if __name__ == "__main__":
    main()
