"""The calls of export and import: the caller's conversations as a file, and files in."""

from __future__ import annotations

from typing import Any, Literal, TypedDict, Unpack

from chatkeep.client.calls import Call

MEDIA_TYPES = {"json": "application/json", "jsonl": "application/x-ndjson"}


class Selection(TypedDict, total=False):
    """What `export` narrows to (`user`: with a tenant API key)."""

    conversation: str | None
    workspace: str | None
    user: str | None


class Owner(TypedDict, total=False):
    """Where `import_file` puts what it imports, and the file's name in its errors."""

    workspace: str | None
    user: str | None  # tenant API key only
    filename: str | None


def export(
    format: Literal["json", "jsonl", "markdown"] = "jsonl", **selection: Unpack[Selection]
) -> Call[bytes]:
    """The caller's conversations with their messages: one, a workspace's, a user's, or all."""
    params = {"format": format, **{k: v for k, v in selection.items() if v is not None}}
    return Call("GET", "/v1/export", lambda r: r.content, params=params)


def import_file(
    data: bytes, format: Literal["json", "jsonl"] = "json", **owner: Unpack[Owner]
) -> Call[dict[str, Any]]:
    """Import a file (see the README); answers how many were imported, skipped and failed.
    Importing the same file again changes nothing, so a retry is safe."""
    return Call(
        "POST",
        "/v1/import",
        lambda r: r.json(),
        params={k: v for k, v in owner.items() if v is not None},
        content=data,
        headers={"Content-Type": MEDIA_TYPES[format]},
    )
