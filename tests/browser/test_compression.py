"""The demo page in Chromium with compressed answers: its files and the API's larger answers arrive
compressed in a coding Chromium asked for, and the page works on them."""

from __future__ import annotations

from playwright.sync_api import Response

from tests.browser.harness import Api, Demo, current_id, send, wait_ready, wait_shown


def test_the_demo_page_runs_on_compressed_answers(demo: Demo, api: Api) -> None:
    responses: list[Response] = []
    context = demo.context()
    context.on("response", lambda response: responses.append(response))
    page = demo.open(context)
    cid = current_id(page)
    texts = [f"message {i} " + " ".join(["lorem ipsum"] * 20) for i in range(8)]
    for text in texts:
        send(page, text)
    wait_shown(page, lambda ms: len(ms) == 8 and all(m["status"] == "sent" for m in ms))

    page.reload()
    assert wait_ready(page) == cid
    shown = wait_shown(page, lambda ms: len(ms) == 8 and all(m["status"] == "sent" for m in ms))
    assert [m["content"] for m in shown] == texts
    assert demo.errors == []

    # Chromium asks for zstd and br: the client module comes in one of them (the service worker's
    # cache hits may show other headers), and the reload's conversation read in zstd.
    client = [r for r in responses if r.url.split("?")[0].endswith("/static/chatkeep.js")]
    assert any(r.status == 200 and r.headers.get("content-encoding") in ("zstd", "br") for r in client)
    reloads = [r for r in responses if r.url.split("?")[0].endswith(f"/v1/conversations/{cid}")]
    assert any(r.status == 200 and r.headers.get("content-encoding") == "zstd" for r in reloads)
