"""The routes that answer valid requests directly (api/route.py) answer every request, valid or
hostile, as the framework's own handling of the same route does: the same statuses, problems and
bodies, with authentication before validation."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import fastapi.routing
import pytest

from chatkeep.api import route
from tests.api.conftest import Api, auth, running_api

# Fields whose values differ between two runs of the same request.
VOLATILE = {"created_at", "updated_at", "last_activity_at", "expires_at"}
JSON = {"content-type": "application/json"}


@contextmanager
def counting_solves() -> Iterator[list[int]]:
    """How many times the framework solved a route's dependencies meanwhile."""
    calls = [0]
    original = fastapi.routing.solve_dependencies

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return await original(*args, **kwargs)

    fastapi.routing.solve_dependencies = counted
    try:
        yield calls
    finally:
        fastapi.routing.solve_dependencies = original


@asynccontextmanager
async def framework_only(tmp_path: Path) -> AsyncIterator[Api]:
    """The app with every route left to the framework."""
    original = route._direct
    route._direct = lambda _route: None
    try:
        async with running_api(tmp_path) as api:
            await api.client.get("/healthz")  # the routes are built
            yield api
    finally:
        route._direct = original


async def _user(api: Api) -> dict[str, str]:
    tenant, _ = await api.tenant()
    return auth(api.token(tenant, "alice"))


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _answer(response: Any) -> tuple[int, str, Any]:
    kind = response.headers.get("content-type", "")
    body = _stable(response.json()) if "json" in kind else response.text
    return response.status_code, kind, body


def _requests(cid: str, other: str) -> list[tuple[str, str, dict[str, str] | None, bytes | None]]:
    """(method, path, headers beyond the caller's, body): valid, retried, malformed and hostile."""
    messages = f"/v1/conversations/{cid}/messages"
    valid = {"id": "m1", "role": "user", "content": "hello"}
    streaming = {"id": "r1", "role": "assistant", "content": "", "status": "streaming"}

    def body(value: Any) -> bytes:
        return json.dumps(value).encode()

    return [
        ("POST", messages, JSON, body(valid)),
        ("POST", messages, JSON, body(valid)),  # a retry: 200 and the stored message
        ("POST", messages, JSON, body({**valid, "content": "changed"})),  # same id, other content
        ("POST", messages, JSON, body({"id": "m2", "content": "no role"})),
        ("POST", messages, JSON, body({"id": "m2", "role": "wizard", "content": "x"})),
        ("POST", messages, JSON, body({"id": "m2", "role": "user", "content": "x", "surprise": 1})),
        ("POST", messages, JSON, body({"id": "bad id!", "role": "user", "content": "x"})),
        ("POST", messages, JSON, body([valid])),
        ("POST", messages, JSON, b"null"),
        ("POST", messages, JSON, b'"text"'),
        ("POST", messages, JSON, b""),
        ("POST", messages, {"content-type": "text/plain"}, body({**valid, "id": "m3"})),
        ("POST", messages, {}, body({**valid, "id": "m4"})),
        ("POST", messages, {"content-type": "application/vnd.chat+json"}, body({**valid, "id": "m5"})),
        ("POST", messages + "?befor=1", JSON, body({**valid, "id": "m6"})),
        ("POST", f"/v1/conversations/{'x' * 300}/messages", JSON, body(valid)),
        ("POST", "/v1/conversations/bad%20id/messages", JSON, body(valid)),
        ("POST", f"/v1/conversations/{other}/messages", JSON, body({**valid, "id": "m7"})),
        ("POST", messages + ":batch", JSON, body({"messages": []})),
        ("POST", messages + ":batch", JSON, body({"messages": [valid, {**valid, "id": "m8"}]})),
        (
            "POST",
            messages + ":batch",
            JSON,
            body({"messages": [{**valid, "id": "m9"}, {"role": "user", "content": 7}]}),
        ),
        ("POST", messages, JSON, body(streaming)),
        ("POST", messages + "/r1/deltas", JSON, body({"text": "Hel", "offset": 0})),
        ("POST", messages + "/r1/deltas", JSON, body({"text": "lo", "offset": 7})),
        ("POST", messages + "/r1/deltas", JSON, body({"text": 5})),
        ("POST", messages + "/nope/deltas", JSON, body({"text": "x"})),
        ("POST", messages + "/r1/finish", JSON, body({"status": "maybe"})),
        ("POST", messages + "/r1/finish", JSON, body({"status": "complete"})),
        ("POST", messages + "/r1/deltas", JSON, body({"text": "late"})),
        ("POST", f"/v1/conversations/{cid}/heartbeat", {}, None),
        ("DELETE", f"/v1/conversations/{other}", {}, None),
    ]


async def _answers(api: Api, cid: str, other: str, headers: dict[str, str]) -> list[tuple[int, str, Any]]:
    answers = []
    for method, path, extra, body in _requests(cid, other):
        response = await api.client.request(method, path, headers={**headers, **(extra or {})}, content=body)
        answers.append(_answer(response))
    return answers


CALLERS = {
    "no credentials": {},
    "a forged token": auth("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"),
    "basic auth": {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
    "an unknown API key": auth("ck_" + "0" * 40),
}


@pytest.mark.parametrize("caller", ["the owner", *CALLERS])
async def test_direct_answers_are_the_frameworks(tmp_path: Path, caller: str) -> None:
    cid, other = str(uuid.uuid4()), str(uuid.uuid4())
    runs = []
    for build in (running_api, framework_only):
        async with build(tmp_path / build.__name__) as api:
            owner = await _user(api)
            created = await api.client.post(
                "/v1/conversations", json={"workspace": "w1", "id": cid}, headers=owner
            )
            assert created.status_code == 201, created.text
            with counting_solves() as solves:
                answers = await _answers(api, cid, other, CALLERS.get(caller, owner))
            with counting_solves() as valid_solves:
                valid = await api.client.post(
                    f"/v1/conversations/{cid}/messages", json={"role": "user", "content": "hi"}, headers=owner
                )
            assert valid.status_code == 201
            runs.append((answers, solves[0], valid_solves[0]))
    (direct, direct_solves, direct_valid), (framework, framework_solves, framework_valid) = runs
    assert direct == framework
    statuses = [status for status, _, _ in direct]
    if caller == "the owner":
        assert statuses[:3] == [201, 200, 409]
        assert {404, 409, 422} <= set(statuses), statuses
    else:  # the unknown query parameter (422) is refused before authentication
        assert set(statuses) == {401, 422} and statuses.count(422) == 1, statuses
    # The framework solved every request that reached a route (all but the unknown parameter's);
    # the direct routes only those they passed on.
    assert framework_solves == len(statuses) - 1
    assert 0 < direct_solves < framework_solves
    assert (direct_valid, framework_valid) == (0, 1)
