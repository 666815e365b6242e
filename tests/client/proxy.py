"""A real HTTP server in a thread that stands in front of chatkeep and fails on purpose: each request
takes the next step of a plan (`503`, `429`, `drop` after forwarding, or `pass`), and every request
that reached it is recorded."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

RELAYED = ("content-type", "retry-after", "etag", "location", "www-authenticate")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    body: bytes
    step: str

    def json(self) -> Any:
        return json.loads(self.body)


class FlakyProxy:
    def __init__(self, target: str, plan: list[str]) -> None:
        self.target = target
        self.plan = list(plan)
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=target, timeout=10)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with proxy._lock:
                    step = proxy.plan.pop(0) if proxy.plan else "pass"
                    proxy.seen.append(Seen(self.command, self.path, body, step))
                if step in ("503", "429"):
                    status = int(step)
                    problem = {
                        "type": "urn:chatkeep:problem:x",
                        "title": "t",
                        "status": status,
                        "detail": f"planned {step}",
                        "code": "planned",
                    }
                    payload = json.dumps(problem).encode()
                    self.send_response(status)
                    self.send_header("content-type", "application/problem+json")
                    self.send_header("content-length", str(len(payload)))
                    if status == 429:
                        self.send_header("retry-after", "1")
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                answer = proxy._http.request(self.command, self.path, content=body, headers=headers)
                if step == "drop":  # stored by chatkeep, but the answer never reaches the client
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                for name in RELAYED:
                    if name in answer.headers:
                        self.send_header(name, answer.headers[name])
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def bodies(self) -> list[Any]:
        return [s.json() for s in self.seen]


@contextmanager
def flaky_proxy(target: str, plan: list[str]) -> Iterator[FlakyProxy]:
    proxy = FlakyProxy(target, plan)
    thread = threading.Thread(target=proxy._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy._server.shutdown()
        proxy._server.server_close()
        proxy._http.close()
        thread.join(5)
