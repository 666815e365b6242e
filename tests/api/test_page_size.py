"""Page sizes are bounded by CHATKEEP_MAX_PAGE_SIZE: checked per request and stated in the document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.conftest import running_api

PAGE_SIZES = [
    ("/v1/conversations", "get", "limit"),
    ("/v1/conversations/{conversation_id}", "get", "messages"),
    ("/v1/conversations/{conversation_id}/messages", "get", "limit"),
]


def maxima(document: dict[str, Any]) -> list[int]:
    found = []
    for path, method, name in PAGE_SIZES:
        operation = document["paths"][path][method]
        (parameter,) = [p for p in operation["parameters"] if p["name"] == name]
        found.append(parameter["schema"]["maximum"])
    return found


async def test_the_page_size_bound_comes_from_the_settings(tmp_path: Path) -> None:
    async with running_api(tmp_path, max_page_size=500) as api:
        headers = await api.user()
        c = await api.conversation(headers)
        for first in range(0, 301, 100):  # batches of at most 100
            await api.append(headers, c["id"], *(f"m{i}" for i in range(first, min(first + 100, 301))))
        urls = [
            ("/v1/conversations", "limit"),
            (f"/v1/conversations/{c['id']}", "messages"),
            (f"/v1/conversations/{c['id']}/messages", "limit"),
        ]
        for url, name in urls:
            accepted = await api.client.get(url, params={name: 300}, headers=headers)
            assert accepted.status_code == 200, (url, accepted.text)
            refused = await api.client.get(url, params={name: 501}, headers=headers)
            assert refused.status_code == 422, (url, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json() == {
                "type": "urn:chatkeep:problem:invalid_request",
                "title": "Unprocessable Entity",
                "status": 422,
                "detail": "the request does not match the API schema",
                "code": "invalid_request",
                "errors": [
                    {
                        "loc": ["query", name],
                        "msg": "Input should be less than or equal to 500",
                        "type": "less_than_equal",
                    }
                ],
            }
        page = (await api.client.get(urls[2][0], params={"limit": 300}, headers=headers)).json()
        assert [m["seq"] for m in page["messages"]] == list(range(2, 302)) and page["has_more"] is True
        reload = (await api.client.get(urls[1][0], params={"messages": 300}, headers=headers)).json()
        assert len(reload["messages"]) == 300 and reload["has_more_messages"] is True
        assert maxima((await api.client.get("/openapi.json")).json()) == [500, 500, 500]


async def test_the_default_bound_is_200(tmp_path: Path) -> None:
    async with running_api(tmp_path) as api:
        headers = await api.user()
        assert (
            await api.client.get("/v1/conversations", params={"limit": 200}, headers=headers)
        ).status_code == 200
        refused = await api.client.get("/v1/conversations", params={"limit": 201}, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_request")
        assert maxima(api.app.openapi()) == [200, 200, 200]
