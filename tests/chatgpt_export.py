"""A ChatGPT data export built for the tests: edited prompts (branches), a hidden system prompt,
multimodal parts, a tool message and a weight-0 node, as ChatGPT writes them."""

from __future__ import annotations

import uuid
from typing import Any

T0 = 1_730_000_000.25  # create_time: float seconds


def node(nid: str, parent: str | None, message: dict[str, Any] | None, children: list[str]) -> dict[str, Any]:
    return {"id": nid, "parent": parent, "children": children, "message": message}


def message(
    mid: str, role: str, parts: list[Any], at: float, *, weight: float = 1.0, hidden: bool = False
) -> dict[str, Any]:
    return {
        "id": mid,
        "author": {"role": role, "name": None, "metadata": {}},
        "create_time": at,
        "update_time": None,
        "content": {
            "content_type": "multimodal_text" if any(isinstance(p, dict) for p in parts) else "text",
            "parts": parts,
        },  # fmt: skip
        "status": "finished_successfully",
        "end_turn": True,
        "weight": weight,
        "metadata": {"is_visually_hidden_from_conversation": True} if hidden else {},
        "recipient": "all",
    }


IMAGE = {
    "content_type": "image_asset_pointer",
    "asset_pointer": "file-service://file-abc",
    "width": 64,
    "height": 48,
}


def branching_conversation(cid: str | None = None) -> dict[str, Any]:
    """The current branch: u1, a1, u2b (edited, with an image), t2b (a tool's image), a2b."""
    cid = cid or str(uuid.uuid4())
    mapping = {
        "root": node("root", None, None, ["sys"]),
        "sys": node("sys", "root", message("sys", "system", [""], T0, hidden=True), ["u1"]),
        "u1": node("u1", "sys", message("u1", "user", ["What is 2+2?"], T0 + 1), ["a1"]),
        "a1": node("a1", "u1", message("a1", "assistant", ["4"], T0 + 2), ["u2a", "u2b"]),
        "u2a": node("u2a", "a1", message("u2a", "user", ["Draw a dog"], T0 + 3), ["a2a"]),
        "a2a": node("a2a", "u2a", message("a2a", "assistant", ["Here is a dog"], T0 + 4), []),
        "u2b": node(
            "u2b", "a1", message("u2b", "user", [IMAGE, "Draw a cat ", "like this"], T0 + 5), ["t2b"]
        ),
        "t2b": node("t2b", "u2b", message("t2b", "tool", [IMAGE], T0 + 6), ["w0"]),
        "w0": node("w0", "t2b", message("w0", "assistant", ["a draft"], T0 + 7, weight=0.0), ["a2b"]),
        "a2b": node("a2b", "w0", message("a2b", "assistant", ["Here is your cat"], T0 + 8), []),
    }
    return {
        "title": "Cats and sums",
        "create_time": T0,
        "update_time": T0 + 9,
        "mapping": mapping,
        "current_node": "a2b",
        "conversation_id": cid,
        "id": cid,
    }


def simple_conversation(cid: str | None = None, text: str = "Hello") -> dict[str, Any]:
    cid = cid or str(uuid.uuid4())
    mapping = {
        "r": node("r", None, None, ["q"]),
        "q": node("q", "r", message(f"{cid[:8]}-q", "user", [text], T0 + 20), ["a"]),
        "a": node("a", "q", message(f"{cid[:8]}-a", "assistant", ["Hi!"], T0 + 21), []),
    }
    return {"title": "Greeting", "create_time": T0 + 20, "update_time": T0 + 21, "mapping": mapping,
            "current_node": "a", "id": cid}  # fmt: skip


# What the current branch of `branching_conversation` imports as: (id, role, content, parts, ms).
BRANCH = [
    ("u1", "user", "What is 2+2?", None, 1_730_000_001_250),
    ("a1", "assistant", "4", None, 1_730_000_002_250),
    ("u2b", "user", "Draw a cat \nlike this", [IMAGE], 1_730_000_005_250),
    ("t2b", "tool", "", [IMAGE], 1_730_000_006_250),
    ("a2b", "assistant", "Here is your cat", None, 1_730_000_008_250),
]
