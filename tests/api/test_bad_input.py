"""Bad input gets a 4xx application/problem+json answer with a stable code, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api.conftest import Api

TEN_KB = "a" * 10_240
JSON = {"content-type": "application/json"}


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


MSG = "/v1/conversations/{id}/messages"
CONV = "/v1/conversations"
# (name, method, path, raw body, expected status, expected code or None for any)
CASES: list[tuple[str, str, str, bytes | None, int, str | None]] = [
    (
        "oversized message",
        "POST",
        MSG,
        body({"role": "user", "content": "x" * 70_000}),
        413,
        "message_too_large",
    ),
    ("content is a number", "POST", MSG, body({"role": "user", "content": 42}), 422, "invalid_request"),
    ("role is unknown", "POST", MSG, body({"role": "hacker", "content": "x"}), 422, "invalid_request"),
    ("role missing", "POST", MSG, body({"content": "x"}), 422, "invalid_request"),
    (
        "usage is a string",
        "POST",
        MSG,
        body({"role": "user", "usage": {"input_tokens": "5"}}),
        422,
        "invalid_request",
    ),
    (
        "negative usage",
        "POST",
        MSG,
        body({"role": "user", "usage": {"input_tokens": -1}}),
        422,
        "invalid_request",
    ),
    ("metadata is a list", "POST", MSG, body({"role": "user", "metadata": [1]}), 422, "invalid_request"),
    (
        "unknown field",
        "POST",
        MSG,
        body({"role": "user", "content": "x", "admin": True}),
        422,
        "invalid_request",
    ),
    ("body is an array", "POST", MSG, body([{"role": "user"}]), 422, "invalid_request"),
    ("invalid JSON", "POST", MSG, b'{"role": "user", "content": ', 400, "invalid_json"),
    ("bad UTF-8", "POST", MSG, b'{"role": "user", "content": "\xff\xfe bad"}', 400, "invalid_json"),
    ("absurd nesting", "POST", MSG, b"[" * 100_000, 400, "invalid_json"),
    ("NUL in content", "POST", MSG, body({"role": "user", "content": "a\u0000b"}), 422, "invalid_text"),
    ("lone surrogate", "POST", MSG, b'{"role": "user", "content": "\\ud800"}', 422, "invalid_text"),
    (
        "NUL in metadata key",
        "POST",
        MSG,
        body({"role": "user", "metadata": {"k\u0000": 1}}),
        422,
        "invalid_text",
    ),
    ("NaN in metadata", "POST", MSG, b'{"role": "user", "metadata": {"n": NaN}}', 422, "invalid_json"),
    (
        "deep metadata",
        "POST",
        MSG,
        body({"role": "user", "metadata": json.loads('{"a":' * 40 + "1" + "}" * 40)}),
        422,
        "invalid_json",
    ),
    ("message id ../", "POST", MSG, body({"id": "../../etc/passwd", "role": "user"}), 422, "invalid_request"),
    ("message id 10 KB", "POST", MSG, body({"id": TEN_KB, "role": "user"}), 422, "invalid_request"),
    ("message id NUL", "POST", MSG, body({"id": "a\u0000b", "role": "user"}), 422, "invalid_request"),
    ("empty batch", "POST", MSG + ":batch", body({"messages": []}), 422, "invalid_request"),
    (
        "batch not a list",
        "POST",
        MSG + ":batch",
        body({"messages": {"role": "user"}}),
        422,
        "invalid_request",
    ),
    ("conversation id ../", "POST", CONV, body({"workspace": "w1", "id": "../x"}), 422, "invalid_request"),
    ("conversation id 10 KB", "POST", CONV, body({"workspace": "w1", "id": TEN_KB}), 422, "invalid_request"),
    ("conversation id NUL", "POST", CONV, body({"workspace": "w1", "id": "x\u0000"}), 422, "invalid_request"),
    ("workspace hostile", "POST", CONV, body({"workspace": "../../"}), 422, "invalid_request"),
    ("workspace missing", "POST", CONV, body({"title": "x"}), 422, "invalid_request"),
    ("mode unknown", "POST", CONV, body({"workspace": "w1", "mode": "forever"}), 422, "invalid_request"),
    ("title NUL", "POST", CONV, body({"workspace": "w1", "title": "a\u0000"}), 422, "invalid_text"),
    ("title too long", "POST", CONV, body({"workspace": "w1", "title": "t" * 201}), 422, "invalid_request"),
    (
        "too many tags",
        "POST",
        CONV,
        body({"workspace": "w1", "tags": [str(i) for i in range(21)]}),
        422,
        "invalid_request",
    ),
    ("tag of spaces", "POST", CONV, body({"workspace": "w1", "tags": ["   "]}), 422, "invalid_request"),
    (
        "starred is a string",
        "POST",
        CONV,
        body({"workspace": "w1", "starred": "yes"}),
        422,
        "invalid_request",
    ),
    ("patch wrong type", "PATCH", "/v1/conversations/{id}", body({"pinned": 1}), 422, "invalid_request"),
    ("patch unknown field", "PATCH", "/v1/conversations/{id}", body({"owner": "me"}), 422, "invalid_request"),
    ("path id ../", "GET", "/v1/conversations/%2E%2E%2Fetc", None, 404, "not_found"),
    ("path id NUL", "GET", "/v1/conversations/a%00b", None, 422, "invalid_request"),
    ("path id 10 KB", "GET", "/v1/conversations/" + TEN_KB, None, 422, "invalid_request"),
    ("append to path id NUL", "POST", "/v1/conversations/a%00b/messages", body({"role": "user"}), 422, None),
    ("list workspace NUL", "GET", "/v1/conversations?workspace=a%00b", None, 422, "invalid_request"),
    ("list tag NUL", "GET", "/v1/conversations?tag=a%00b", None, 422, "invalid_request"),
    ("list limit zero", "GET", "/v1/conversations?limit=0", None, 422, "invalid_request"),
    ("list limit huge", "GET", "/v1/conversations?limit=100000", None, 422, "invalid_request"),
    ("page before negative", "GET", MSG + "?before=-1", None, 422, "invalid_request"),
    ("page limit text", "GET", MSG + "?limit=ten", None, 422, "invalid_request"),
    ("reload messages huge", "GET", "/v1/conversations/{id}?messages=5000", None, 422, "invalid_request"),
]


@pytest.fixture
async def target(api: Api) -> dict[str, Any]:
    headers = await api.user()
    conversation = await api.conversation(headers, title="Untouched")
    await api.append(headers, conversation["id"], "first", "second")
    return {"id": conversation["id"], "headers": headers}


async def snapshot(api: Api, target: dict[str, Any]) -> tuple[Any, Any]:
    conversation = (
        await api.client.get(f"/v1/conversations/{target['id']}", headers=target["headers"])
    ).json()
    listed = (await api.client.get("/v1/conversations", headers=target["headers"])).json()
    return conversation, listed


@pytest.mark.parametrize(
    ("name", "method", "path", "raw", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
async def test_bad_input_is_refused_with_a_problem_and_changes_nothing(
    api: Api,
    target: dict[str, Any],
    name: str,
    method: str,
    path: str,
    raw: bytes | None,
    status: int,
    code: str | None,
) -> None:
    before = await snapshot(api, target)
    headers = {**target["headers"], **JSON}
    if method == "PATCH":
        headers["If-Match"] = "*"
    response = await api.client.request(method, path.format(id=target["id"]), content=raw, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (
        problem["status"] == status
        and problem["detail"]
        and problem["type"].startswith("urn:chatkeep:problem:")
    )
    if code is not None:
        assert problem["code"] == code
    assert await snapshot(api, target) == before
